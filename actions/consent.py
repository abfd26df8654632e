"""Giving consent in conversation.

The steps: show the offers that can be consented to → explain the chosen one (the notice's first
screen: recipient, purpose in plain words, items and levels, where the data comes from, benefit,
duration, operator and contact point, all labelled as an example of the demonstration) → if it
includes level-2 data, recommend consulting a family doctor and ask whether the resident has (on
"not yet": recommend consulting first and offer to stop; continue only on the button that says
so — a typed "はい" to "どうしますか？" is asked again) → read back exactly what will be recorded,
with the terms version and what withdrawal does (the second screen; "もっと詳しく" shows the rest
and the terms, action_show_terms) → an explicit yes ("同意します" typed at the read-back is one) →
only then the call to the consent service. "Recorded" is said only on the service's success.

What is read back is what is submitted: the read-back keeps the offer's version and item ids in
slots, and the yes sends exactly those (never the offer as it is at the yes). If the offer changed
in between, the service refuses `offer_changed`; the resident is told so, nothing is recorded, and
the notice is shown again with the new content.

The state lives in slots that only these actions set (never from entities), and every step checks
it, so a typed `/affirm` or `/give_consent{...}` cannot skip one. A stopped or failed consent keeps
its state: "同意の続き" (give_consent) resumes it days later, with the same Idempotency-Key so a
submission that reached the service before a failure is never recorded twice.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import (
    ConsentClient,
    ConsentRefused,
    ConsentServiceUnavailable,
    Refusal,
    get_client,
)
from actions.consent_states import (
    Event,
    Pending,
    Stage,
    State,
    Step,
    Transition,
    event_of,
    state_of,
    transition,
)
from actions.notice import retention_days
from actions.offer_facts import offer_facts
from actions.worker import ServiceAction

Events = List[Dict[str, Any]]
MAX_OFFER_BUTTONS = 13
ANSWERS = {
    Step.ANSWER_CONSULTED: "consulted",
    Step.ANSWER_NOT_YET: "not_yet",
    Step.ANSWER_WILL_NOT: "will_not",
}


class ActionConsentFlow(ServiceAction):
    """Every step of giving consent: `give_consent`, the family-doctor answer, yes and no."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_consent_flow"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Take the step the conversation's own state allows."""
        return consent_step(dispatcher, tracker, domain)


def consent_step(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    domain: Dict[str, Any],
    row: Transition | None = None,
) -> Events:
    """Take the next step of giving consent for the latest message (also a yes or a no).

    The step is the one the transition table (actions/consent_states.py) gives for the
    conversation's state and the latest message.

    Args:
        dispatcher: Where the answers go.
        tracker: The conversation, whose slots hold the consent's state.
        domain: The domain (for the wording fragments).
        row: The row already looked up by the yes/no dispatcher, if any.

    Returns:
        The slot events of the step.
    """
    event = event_of(tracker)
    if row is None:
        if event is None:  # an intent the consent flow does not take
            dispatcher.utter_message(response="utter_consent_nothing_pending")
            pending = tracker.get_slot(c.PENDING) == Pending.CONSENT.value
            return [SlotSet(c.PENDING, None)] if pending else []
        row = transition(state_of(tracker), event)
    if row.step is Step.ASK_SAME_PERSON:
        # A web chat session resumed on a shared screen: whoever sits here now must not give
        # consent under the previous resident's pseudonym without saying who they are.
        dispatcher.utter_message(response="utter_ask_same_person")
        return []
    flow = _Flow(dispatcher, tracker, domain, get_client())
    try:
        if event in (Event.GIVE_CONSENT, Event.TYPED_CONSENT_YES, Event.CHOOSE_OFFER):
            flow.refuse_level3_items()
        return flow.take(row.step)
    except ConsentServiceUnavailable:
        dispatcher.utter_message(response="utter_consent_service_down_generic")
        return []
    except _OfferGone:  # the open consent's offer was removed or closed meanwhile
        dispatcher.utter_message(response="utter_consent_offer_unavailable")
        return c.clear_flow()


class _Flow:
    def __init__(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
        client: ConsentClient,
    ) -> None:
        self.dispatcher = dispatcher
        self.tracker = tracker
        self.domain = domain
        self.client = client
        self.stage = Stage.of(tracker.get_slot(c.STAGE))
        self.pending = tracker.get_slot(c.PENDING) == Pending.CONSENT.value

    def utter(self, response: str, **values: Any) -> None:
        self.dispatcher.utter_message(response=response, **values)

    def take(self, step: Step) -> Events:
        """Take one step of the transition table (the consent flow's steps only)."""
        if step is Step.LIST_OFFERS:
            return self.list_offers()
        if step is Step.CHOOSE:
            return self.choose(str(c.latest_entity(self.tracker, "offer_id")))
        if step is Step.RESUME:
            return self.resume()
        if step is Step.RESUME_OR_LIST:
            if self.stage and self.tracker.get_slot(c.OFFER):
                return self.resume()
            return self.list_offers()
        if step in ANSWERS:
            return self.doctor_answer(ANSWERS[step])
        if step is Step.ASK_DOCTOR_AGAIN:
            # Not clear which answer was meant: never guess, ask again with buttons.
            self.utter("utter_ask_family_doctor")
            return [SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
        if step is Step.ASK_CONTINUE_OR_PAUSE:
            # A bare "はい" does not say which of the two buttons was meant: asked again.
            self.utter("utter_consent_choose_continue_or_pause")
            return []
        if step is Step.READ_BACK:  # the 「このまま進める」 button
            return self.read_back(self.current_offer())
        if step is Step.PAUSE:
            return self.pause()
        if step is Step.SUBMIT:
            return self.submit()
        if step is Step.CANCEL:
            return self.cancel()
        # NOTHING_PENDING, and the steps of the other dispatcher (yes/no) if called directly.
        return self.nothing_pending()

    # -- starting --------------------------------------------------------------------------
    def refuse_level3_items(self) -> None:
        asked = set(self.tracker.get_latest_entity_values("data_item"))
        if not asked:
            return
        level3 = [
            i["name_ja"] for i in self.client.items() if i["level"] == 3 and i["item_id"] in asked
        ]
        if level3:
            self.utter("utter_consent_level3_not_handled", items=c.join(self.domain, level3))

    def list_offers(self) -> Events:
        offers = [o for o in self.client.offers() if o["consentable"]]
        if not offers:
            self.utter("utter_consent_no_offers")
            return [SlotSet(c.PENDING, None)]
        buttons = [
            {"title": o["title_ja"], "payload": f'/give_consent{{"offer_id": "{o["offer_id"]}"}}'}
            for o in offers[:MAX_OFFER_BUTTONS]
        ]
        self.dispatcher.utter_message(response="utter_consent_choose_offer", buttons=buttons)
        return [SlotSet(c.PENDING, None)]

    def fetch_offer(self, offer_id: str) -> Dict[str, Any] | None:
        try:
            offer = self.client.offer(offer_id)
        except ConsentRefused:
            return None
        return offer if offer.get("consentable") else None

    def current_offer(self) -> Dict[str, Any]:
        offer = self.fetch_offer(str(self.tracker.get_slot(c.OFFER)))
        if offer is None:
            raise _OfferGone
        return offer

    def choose(self, offer_id: str) -> Events:
        offer = self.fetch_offer(offer_id)
        if offer is None:
            self.utter("utter_consent_offer_unavailable")
            return c.clear_flow()
        self.explain(offer)
        events: Events = [
            *c.clear_flow(),
            SlotSet(c.OFFER, offer_id),
            SlotSet(c.REQUEST_KEY, uuid.uuid4().hex),
            SlotSet(c.DOCTOR, None),
            SlotSet(c.PENDING, Pending.CONSENT.value),
        ]
        if c.needs_doctor(offer):
            self.utter("utter_ask_family_doctor")
            return [*events, SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
        return [*events, *self.read_back(offer)]

    def resume(self) -> Events:
        offer = self.current_offer()
        self.utter("utter_consent_resume", title=offer["title_ja"])
        events: Events = [SlotSet(c.PENDING, Pending.CONSENT.value)]
        if self.stage is Stage.CONFIRMING:
            return [*events, *self.read_back(offer)]
        if c.needs_doctor(offer):
            self.utter("utter_ask_family_doctor")
            return [*events, SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
        return [*events, *self.read_back(offer)]

    def explain(self, offer: Dict[str, Any]) -> None:
        # The same facts as the read-back and the doctor memo (actions/offer_facts.py).
        plain = c.plain_mode(self.tracker)
        values = {
            **offer_facts(self.domain, offer, plain=plain).notice_values(),
            "contact": c.contact_text(self.domain, plain),
        }
        approval = offer.get("ethics_approval")
        if c.needs_doctor(offer) and approval:
            self.utter(
                "utter_consent_offer_explanation_level2",
                approved_by=approval["approved_by"],
                advisors=approval["medical_advisors"],
                **values,
            )
        else:
            self.utter("utter_consent_offer_explanation", **values)

    # -- the family doctor -------------------------------------------------------------------
    def doctor_answer(self, answer: str) -> Events:
        offer = self.current_offer()
        events: Events = [SlotSet(c.DOCTOR, answer)]
        if answer == "not_yet":
            self.utter("utter_recommend_consult_first")
            return [*events, SlotSet(c.STAGE, Stage.DOCTOR_NOT_YET.value)]
        return [*events, *self.read_back(offer, doctor=answer)]

    def pause(self) -> Events:
        self.utter("utter_consent_paused")
        return [SlotSet(c.PENDING, None), SlotSet(c.STAGE, Stage.PAUSED.value)]

    # -- read-back and submission ------------------------------------------------------------
    def read_back(self, offer: Dict[str, Any], doctor: str | None = None) -> Events:
        terms = self.client.terms_version()
        plain = c.plain_mode(self.tracker)
        values = offer_facts(self.domain, offer, terms, plain).readback_values()
        if c.needs_doctor(offer):
            answer = doctor or self.tracker.get_slot(c.DOCTOR)
            if answer not in c.DOCTOR_ANSWERS:  # never read back level 2 without the answer
                self.utter("utter_ask_family_doctor")
                return [SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
            family_doctor = c.fragment(self.domain, f"doctor_{answer}", plain)
            self.utter("utter_consent_readback_level2", family_doctor=family_doctor, **values)
        else:
            self.utter("utter_consent_readback", **values)
        return [
            SlotSet(c.STAGE, Stage.CONFIRMING.value),
            SlotSet(c.TERMS, terms),
            SlotSet(c.OFFER_VERSION, offer.get("version")),
            SlotSet(c.ITEMS, [i["item_id"] for i in offer["items"]]),
        ]

    def submit(self) -> Events:
        try:
            return self._submit()
        except ConsentServiceUnavailable:
            self.utter("utter_consent_service_down")
            return []  # everything stays as it was: "はい" later tries again with the same key

    def _submit(self) -> Events:
        offer = self.current_offer()
        version = self.tracker.get_slot(c.OFFER_VERSION)
        item_ids = self.tracker.get_slot(c.ITEMS)
        if offer.get("version") == version:  # unchanged since the read-back
            doctor = self.tracker.get_slot(c.DOCTOR) if c.needs_doctor(offer) else None
            if c.needs_doctor(offer) and doctor not in c.DOCTOR_ANSWERS:
                self.utter("utter_ask_family_doctor")
                return [SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
        else:  # changed: the read-back's own answer is sent and the service says what changed
            answer = self.tracker.get_slot(c.DOCTOR)
            doctor = answer if answer in c.DOCTOR_ANSWERS else None
        terms = self.tracker.get_slot(c.TERMS)
        key = self.tracker.get_slot(c.REQUEST_KEY)
        if not terms or not key or not item_ids:  # no read-back in this conversation: show it
            return self.read_back(offer, doctor=doctor)
        channel, subject = c.resident(self.tracker)
        body = {
            "subject_id": subject,
            "offer_id": offer["offer_id"],
            # Exactly what was read back, not the offer as it is now.
            "item_ids": list(item_ids),
            "channel": channel,
            "family_doctor_consulted": doctor,
            "terms_version": terms,
        }
        if version:
            body["offer_version"] = version
        try:
            result = self.client.create_consent(body, idempotency_key=f"{key}-{doctor or 'none'}")
        except ConsentRefused as refusal:
            return self.refused(refusal, subject)
        self.utter(
            "utter_consent_recorded",
            receipt_id=result["receipt"]["receipt_id"],
            # The code a resident writes down (issue #14); the id stands in if none was issued.
            receipt_code=result["receipt"].get("receipt_code") or result["receipt"]["receipt_id"],
            recipient=offer["recipient"]["name_ja"],
        )
        return c.clear_flow()

    def refused(self, refusal: ConsentRefused, subject: str) -> Events:
        if refusal.known is Refusal.ALREADY_CONSENTED and refusal.consent_id:
            receipts = [
                # The code residents write down (issue #14); the id if none was issued.
                h.get("receipt_code") or h["receipt_id"]
                for h in self.client.consents(subject)
                if h["consent_id"] == refusal.consent_id
            ]
            if receipts:
                self.utter("utter_consent_already_recorded", receipt_id=receipts[0])
                return c.clear_flow()
        if refusal.known is Refusal.FAMILY_DOCTOR_ANSWER_REQUIRED:
            self.utter("utter_ask_family_doctor")
            return [SlotSet(c.STAGE, Stage.DOCTOR_ASKED.value)]
        if refusal.known is Refusal.OFFER_CHANGED:
            # Nothing was recorded: say so, then the notice again with the offer as it is now.
            self.utter("utter_consent_offer_changed")
            return self.choose(str(self.tracker.get_slot(c.OFFER)))
        response = f"utter_consent_refused_{refusal.reason}"
        self.utter(
            response
            if response in self.domain.get("responses", {})
            else "utter_consent_refused_generic"
        )
        return c.clear_flow()

    def cancel(self) -> Events:
        self.utter("utter_consent_cancelled")
        return c.clear_flow()

    def nothing_pending(self) -> Events:
        self.utter("utter_consent_nothing_pending")
        return [SlotSet(c.PENDING, None)] if self.pending else []


class _OfferGone(Exception):
    """The offer of an open consent no longer exists or no longer takes consents."""


class ActionShowTerms(ServiceAction):
    """`ask_terms` ("もっと詳しく"): the rest of the notice and the terms in force, in the chat.

    While a read-back waits for its yes, the question is put again afterwards, so the resident can
    answer it right there.
    """

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_show_terms"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Send the details and the terms text, or an apology when the service is down."""
        try:
            terms = get_client().terms()
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        dispatcher.utter_message(response="utter_terms_intro", retention_days=retention_days())
        dispatcher.utter_message(
            response="utter_terms_text",
            terms_version=str(terms["version"]),
            # The file is Markdown: its heading marks are not for a chat bubble.
            terms_text=re.sub(r"^#+\s*", "", str(terms["text_ja"]).strip(), flags=re.MULTILINE),
        )
        if state_of(tracker) is State.CONFIRMING:
            dispatcher.utter_message(response="utter_terms_back_to_question")
        return []
