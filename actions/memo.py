"""The consultation memo (相談メモ, issue 18): something to show the family doctor.

When the assistant recommends consulting first (the "not yet" answer, its 「先生に見せるメモ」
button) or the resident asks for it (`request_doctor_memo`), `action_doctor_memo` builds a
one-page memo for the level-2 offer under way: the offer's facts — the very ones the notice and
the read-back state (actions/offer_facts.py) —, what the resident can decide, questions they may
ask the doctor (fixed wording, no medical judgement), the terms version, the date and how to
continue. It holds no name, no health value and no identifier of the resident.

The memo goes out as a custom payload (`{"doctor_memo": {...}}`) beside a short text; the
channels lay it out (the web chat as a print page behind a short-lived link, LINE as a Flex
message). Every line is a `utter_fragment_memo_*` of domain.yml, in its plain variant when the
slot `plain_japanese` is true.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import (
    ConsentClient,
    ConsentRefused,
    ConsentServiceUnavailable,
    get_client,
)
from actions.consent_states import Stage
from actions.offer_facts import OfferFacts, offer_facts
from actions.worker import ServiceAction

PAYLOAD_KEY = "doctor_memo"
PLAIN_SLOT = "plain_japanese"
QUESTIONS = ("question_1", "question_2", "question_3")
DECISIONS = ("decide_yes", "decide_no", "decide_later", "decide_withdraw")
CONTINUING = ("continue_chat", "continue_receipt")
# The date on the memo is the city's (Japan's) date.
CITY_TIME = ZoneInfo("Asia/Tokyo")


def memo_line(domain: Dict[str, Any], name: str, plain: bool, /, **values: Any) -> str:
    """One line of the memo: `utter_fragment_memo_<name>`, its plain variant when asked for.

    Args:
        domain: The domain the action received.
        name: The fragment's name after `utter_fragment_memo_`.
        plain: Whether the resident reads plain Japanese (slot `plain_japanese`).
        **values: Values for its placeholders.

    Returns:
        The filled text.
    """
    variants = domain["responses"][f"utter_fragment_memo_{name}"]
    chosen = variants[0]
    if plain:
        chosen = next(
            (
                v
                for v in variants
                if any(cond.get("name") == PLAIN_SLOT for cond in v.get("condition") or [])
            ),
            chosen,
        )
    text = str(chosen["text"])
    return text.format(**values) if values else text


def build_memo(
    domain: Dict[str, Any], facts: OfferFacts, today: dt.date, plain: bool = False
) -> Dict[str, Any]:
    """The memo for one offer, as the channels receive it.

    Args:
        domain: The domain (the memo's wording).
        facts: The offer's facts (the same the notice and the read-back show).
        today: The date written on the memo.
        plain: Whether to use the plain variants.

    Returns:
        `{"title", "intro", "sections": [{"heading", "lines"}], "terms", "date", "note",
        "plain"}`: texts only, nothing that identifies the resident.
    """

    def line(name: str, **values: Any) -> str:
        return memo_line(domain, name, plain, **values)

    offer_lines = [
        line("recipient", recipient=facts.recipient),
        line("purpose", description=facts.description),
        line("items"),
        *(line("item", item=i.text, source=i.source) for i in facts.items),
        line("benefits", benefits=facts.benefits),
    ]
    return {
        "title": line("title"),
        "intro": line("intro"),
        "sections": [
            {"heading": line("heading_offer"), "lines": offer_lines},
            {"heading": line("heading_decide"), "lines": [line(n) for n in DECISIONS]},
            {"heading": line("heading_questions"), "lines": [line(n) for n in QUESTIONS]},
            {"heading": line("heading_continue"), "lines": [line(n) for n in CONTINUING]},
        ],
        "terms": line("terms", terms_version=facts.terms_version),
        "date": line("date", year=today.year, month=today.month, day=today.day),
        "note": line("no_identifier"),
        "link_label": line("link"),
        "plain": plain,
    }


def memo_text(memo: Dict[str, Any]) -> str:
    """The memo as plain text, line by line (for channels without a layout, and for tests)."""
    lines = [memo["title"], memo["intro"]]
    for section in memo["sections"]:
        lines += [f"【{section['heading']}】", *section["lines"]]
    lines += [memo["terms"], memo["date"], memo["note"]]
    return "\n".join(lines)


def offer_memo(
    domain: Dict[str, Any],
    client: ConsentClient,
    offer_id: str,
    today: dt.date,
    plain: bool = False,
) -> Dict[str, Any] | None:
    """The memo of one level-2 offer, read from the consent service: the chat's and the counter's.

    `action_doctor_memo` (the resident's chat) and the counter's print page (`/staff`, through
    `bot/webchat/memo_counter.py`) both make their memo here, from the offer as
    `GET /v1/offers/{id}` serves it and the terms in force, so the two sheets, the notice and
    the read-back state the same facts.

    Args:
        domain: The domain (the memo's wording).
        client: The consent service's client.
        offer_id: The offer's id.
        today: The date written on the memo.
        plain: Whether to use the plain variants.

    Returns:
        The memo (see :func:`build_memo`), or None for an unknown offer, one without level-2
        data, or one that cannot be consented to now (no memo is made for it).

    Raises:
        ConsentServiceUnavailable: The service could not be reached.
        ConsentRefused: The service refused for another reason than an unknown offer.
    """
    try:
        offer = client.offer(offer_id)
    except ConsentRefused as refused:
        if refused.status == 404:  # the offer is gone, or never was
            return None
        raise
    if not c.needs_doctor(offer) or not offer.get("consentable"):
        return None  # no memo to decide on an offer nobody can consent to
    facts = offer_facts(domain, offer, client.terms_version(), plain)
    return build_memo(domain, facts, today, plain)


def city_today() -> dt.date:
    """The city's (Japan's) date, written on the memo."""
    return dt.datetime.now(CITY_TIME).date()


class ActionDoctorMemo(ServiceAction):
    """`request_doctor_memo`: the consultation memo for the level-2 offer under way."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_doctor_memo"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send the memo (custom payload and a short text), or say when it can be made."""
        offer_id = tracker.get_slot(c.OFFER)
        plain = tracker.get_slot(PLAIN_SLOT) is True
        try:
            memo = (
                offer_memo(domain, get_client(), str(offer_id), city_today(), plain)
                if offer_id
                else None
            )
        except ConsentRefused:  # refused for another reason: no memo either
            memo = None
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        if memo is None:
            dispatcher.utter_message(response="utter_doctor_memo_no_offer")
            return []
        # One message: the short text, then the memo as the channel lays it out.
        dispatcher.utter_message(response="utter_doctor_memo", json_message={PAYLOAD_KEY: memo})
        if Stage.of(tracker.get_slot(c.STAGE)) is Stage.DOCTOR_NOT_YET:
            dispatcher.utter_message(response="utter_doctor_memo_choose")
        return []
