"""The consent conversation as an explicit state machine: where a "はい" goes, in one table.

The conversation's state is kept in slots that only the actions set (docs/contract.md fixes
their names and values): `consent_pending` (:class:`Pending`: which question is open) and
`consent_stage` (:class:`Stage`: how far the consent has come), with `consent_offer_id` and
`session_resumed`. :func:`state_of` reads them as one :class:`State`; :func:`event_of` reads
the latest message as one :class:`Event`; :data:`TRANSITIONS` says, for every state and event,
which :class:`Step` is taken and which states may follow. Both dispatchers — the consent flow
(`actions/consent.py`) and yes/no (`actions/yes_no.py`) — look the step up here and nowhere
else. The same table is in docs/consent-in-chat.md (tests/actions/test_consent_states.py
compares the two and walks every row).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, FrozenSet, List, Tuple

from rasa_sdk import Tracker

from actions import consent_common as c
from actions.levels import DATA_ITEMS, latest_entity_values


class Pending(str, Enum):
    """Values of the slot `consent_pending`: the question a yes or no answers."""

    CONSENT = "consent"
    WITHDRAWAL = "withdrawal"


class Stage(str, Enum):
    """Values of the slot `consent_stage`: how far the consent being given has come."""

    DOCTOR_ASKED = "doctor_asked"
    DOCTOR_NOT_YET = "doctor_not_yet"
    CONFIRMING = "confirming"
    PAUSED = "paused"

    @classmethod
    def of(cls, value: object) -> Stage | None:
        """The stage a slot value names (None for none or an unknown value)."""
        try:
            return cls(value) if value is not None else None
        except ValueError:
            return None


class State(str, Enum):
    """Where the conversation is, as the table sees it (read from the slots, never stored)."""

    IDLE = "idle"  # nothing open, no consent under way
    RESUMABLE = "resumable"  # an offer chosen earlier, no question open (paused or left)
    DOCTOR_ASKED = "doctor_asked"  # 「かかりつけ医に相談しましたか？」 is open
    DOCTOR_NOT_YET = "doctor_not_yet"  # 「どうしますか？」 (proceed or pause) is open
    CONFIRMING = "confirming"  # the read-back waits for its explicit yes
    WITHDRAWAL_ASKED = "withdrawal_asked"  # 「取り消しますか？」 is open
    RESUMED_SCREEN = "resumed_screen"  # a resumed web chat session, nobody confirmed yet
    SAME_PERSON_ASKED = "same_person_asked"  # 「ご本人ですか？」 was the last question


class Event(str, Enum):
    """What the latest message says, as the table sees it."""

    YES = "yes"  # affirm
    NO = "no"  # deny
    PROCEED = "proceed"  # affirm from the 「このまま進める」 button (consent_choice=proceed)
    GIVE_CONSENT = "give_consent"  # give_consent naming no offer
    TYPED_CONSENT_YES = "typed_consent_yes"  # give_consent typed as 「同意します」 (no items)
    CHOOSE_OFFER = "choose_offer"  # give_consent naming an offer (its button)
    DOCTOR_CONSULTED = "doctor_consulted"  # answer_family_doctor: 相談した
    DOCTOR_NOT_YET = "doctor_not_yet"  # answer_family_doctor: まだ相談していない
    DOCTOR_WILL_NOT = "doctor_will_not"  # answer_family_doctor: 相談するつもりはない
    DOCTOR_UNCLEAR = "doctor_unclear"  # answer_family_doctor with no or two answers


class Step(str, Enum):
    """What the assistant does (each is one method or function of the dispatchers)."""

    SMALL_TALK = "small_talk"  # utter_affirm / utter_deny
    LIST_OFFERS = "list_offers"
    CHOOSE = "choose"  # explain the offer; family-doctor question (level 2) or read-back
    RESUME = "resume"  # the chosen offer again, at the question it had reached
    RESUME_OR_LIST = "resume_or_list"  # resume when an offer was chosen earlier, else list
    ANSWER_CONSULTED = "answer_consulted"  # keep the answer, read back
    ANSWER_NOT_YET = "answer_not_yet"  # keep the answer, recommend consulting, ask what to do
    ANSWER_WILL_NOT = "answer_will_not"  # keep the answer, read back
    ASK_DOCTOR_AGAIN = "ask_doctor_again"
    ASK_CONTINUE_OR_PAUSE = "ask_continue_or_pause"  # a bare yes does not say which
    READ_BACK = "read_back"
    PAUSE = "pause"
    SUBMIT = "submit"  # POST /v1/consents with what was read back
    CANCEL = "cancel"
    NOTHING_PENDING = "nothing_pending"
    WITHDRAWAL = "withdrawal"  # the withdrawal's own step (actions/withdrawal.py)
    ASK_SAME_PERSON = "ask_same_person"
    CONFIRM_SAME_PERSON = "confirm_same_person"
    NOT_SAME_PERSON = "not_same_person"


@dataclass(frozen=True)
class Transition:
    """One row of the table: the step taken and the states that may follow it."""

    step: Step
    next: FrozenSet[State]


def _t(step: Step, *after: State) -> Transition:
    return Transition(step, frozenset(after))


S, E, T = State, Event, Step
_ANSWERS = (E.DOCTOR_CONSULTED, E.DOCTOR_NOT_YET, E.DOCTOR_WILL_NOT, E.DOCTOR_UNCLEAR)
_OFFERED = (S.DOCTOR_ASKED, S.CONFIRMING, S.IDLE)  # level 2 / level 1 / offer not open
# Recorded or refused / the service asks for the family-doctor answer / the offer changed.
_SUBMITTED = (S.IDLE, S.DOCTOR_ASKED, S.CONFIRMING)
_AT_DOCTOR: Dict[Event, Transition] = {
    E.YES: _t(T.ANSWER_CONSULTED, S.CONFIRMING),
    E.PROCEED: _t(T.ANSWER_CONSULTED, S.CONFIRMING),
    E.NO: _t(T.ANSWER_NOT_YET, S.DOCTOR_NOT_YET),
    E.DOCTOR_CONSULTED: _t(T.ANSWER_CONSULTED, S.CONFIRMING),
    E.DOCTOR_NOT_YET: _t(T.ANSWER_NOT_YET, S.DOCTOR_NOT_YET),
    E.DOCTOR_WILL_NOT: _t(T.ANSWER_WILL_NOT, S.CONFIRMING),
    E.DOCTOR_UNCLEAR: _t(T.ASK_DOCTOR_AGAIN, S.DOCTOR_ASKED),
}

# The one table: (state, event) → (step, states that may follow). Every pair has a row. The
# states that follow are those of a service that answers: when it is down the state stays, and a
# step that finds the chosen offer withdrawn or closed meanwhile ends in IDLE.
TRANSITIONS: Dict[Tuple[State, Event], Transition] = {
    # Nothing open: yes and no are small talk; 「同意したい」 lists the offers.
    **{(S.IDLE, e): _t(T.SMALL_TALK, S.IDLE) for e in (E.YES, E.NO, E.PROCEED)},
    (S.IDLE, E.GIVE_CONSENT): _t(T.LIST_OFFERS, S.IDLE),
    (S.IDLE, E.TYPED_CONSENT_YES): _t(T.LIST_OFFERS, S.IDLE),
    (S.IDLE, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    **{(S.IDLE, e): _t(T.NOTHING_PENDING, S.IDLE) for e in _ANSWERS},
    # An offer chosen earlier (paused, or left at a question): 「同意の続き」 resumes it.
    **{(S.RESUMABLE, e): _t(T.SMALL_TALK, S.RESUMABLE) for e in (E.YES, E.NO, E.PROCEED)},
    (S.RESUMABLE, E.GIVE_CONSENT): _t(T.RESUME, S.DOCTOR_ASKED, S.CONFIRMING),
    (S.RESUMABLE, E.TYPED_CONSENT_YES): _t(T.RESUME, S.DOCTOR_ASKED, S.CONFIRMING),
    (S.RESUMABLE, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    **{(S.RESUMABLE, e): _t(T.NOTHING_PENDING, S.RESUMABLE) for e in _ANSWERS},
    # 「かかりつけ医に相談しましたか？」: はい is 相談した, いいえ is まだ.
    **{(S.DOCTOR_ASKED, e): t for e, t in _AT_DOCTOR.items()},
    (S.DOCTOR_ASKED, E.GIVE_CONSENT): _t(T.RESUME, S.DOCTOR_ASKED),
    (S.DOCTOR_ASKED, E.TYPED_CONSENT_YES): _t(T.RESUME, S.DOCTOR_ASKED),
    (S.DOCTOR_ASKED, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    # 「どうしますか？」 after まだ: only the 「このまま進める」 button continues; a bare yes is
    # asked again; no pauses (「同意の続き」 resumes). A family-doctor answer still counts.
    **{(S.DOCTOR_NOT_YET, e): t for e, t in _AT_DOCTOR.items()},
    (S.DOCTOR_NOT_YET, E.YES): _t(T.ASK_CONTINUE_OR_PAUSE, S.DOCTOR_NOT_YET),
    (S.DOCTOR_NOT_YET, E.PROCEED): _t(T.READ_BACK, S.CONFIRMING),
    (S.DOCTOR_NOT_YET, E.NO): _t(T.PAUSE, S.RESUMABLE),
    (S.DOCTOR_NOT_YET, E.GIVE_CONSENT): _t(T.ASK_CONTINUE_OR_PAUSE, S.DOCTOR_NOT_YET),
    (S.DOCTOR_NOT_YET, E.TYPED_CONSENT_YES): _t(T.ASK_CONTINUE_OR_PAUSE, S.DOCTOR_NOT_YET),
    (S.DOCTOR_NOT_YET, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    # The read-back: only an explicit yes submits.
    (S.CONFIRMING, E.YES): _t(T.SUBMIT, *_SUBMITTED),
    (S.CONFIRMING, E.PROCEED): _t(T.SUBMIT, *_SUBMITTED),
    (S.CONFIRMING, E.TYPED_CONSENT_YES): _t(T.SUBMIT, *_SUBMITTED),
    (S.CONFIRMING, E.NO): _t(T.CANCEL, S.IDLE),
    (S.CONFIRMING, E.GIVE_CONSENT): _t(T.RESUME, S.CONFIRMING),
    (S.CONFIRMING, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    **{(S.CONFIRMING, e): _t(T.NOTHING_PENDING, S.RESUMABLE) for e in _ANSWERS},
    # 「取り消しますか？」: yes and no belong to the withdrawal.
    **{
        (S.WITHDRAWAL_ASKED, e): _t(T.WITHDRAWAL, S.IDLE, S.RESUMABLE)
        for e in (E.YES, E.NO, E.PROCEED)
    },
    (S.WITHDRAWAL_ASKED, E.GIVE_CONSENT): _t(T.RESUME_OR_LIST, *_OFFERED),
    (S.WITHDRAWAL_ASKED, E.TYPED_CONSENT_YES): _t(T.RESUME_OR_LIST, *_OFFERED),
    (S.WITHDRAWAL_ASKED, E.CHOOSE_OFFER): _t(T.CHOOSE, *_OFFERED),
    **{(S.WITHDRAWAL_ASKED, e): _t(T.NOTHING_PENDING, S.WITHDRAWAL_ASKED) for e in _ANSWERS},
    # A resumed shared screen: no consent until whoever sits here says who they are.
    **{(S.RESUMED_SCREEN, e): _t(T.SMALL_TALK, S.RESUMED_SCREEN) for e in (E.YES, E.NO, E.PROCEED)},
    **{
        (S.RESUMED_SCREEN, e): _t(T.ASK_SAME_PERSON, S.SAME_PERSON_ASKED)
        for e in (E.GIVE_CONSENT, E.TYPED_CONSENT_YES, E.CHOOSE_OFFER)
    },
    **{(S.RESUMED_SCREEN, e): _t(T.NOTHING_PENDING, S.RESUMED_SCREEN) for e in _ANSWERS},
    # 「ご本人ですか？」: a typed はい/いいえ counts as its buttons and answers nothing else.
    (S.SAME_PERSON_ASKED, E.YES): _t(T.CONFIRM_SAME_PERSON, S.IDLE),
    (S.SAME_PERSON_ASKED, E.PROCEED): _t(T.CONFIRM_SAME_PERSON, S.IDLE),
    (S.SAME_PERSON_ASKED, E.NO): _t(T.NOT_SAME_PERSON, S.RESUMED_SCREEN),
    **{
        (S.SAME_PERSON_ASKED, e): _t(T.ASK_SAME_PERSON, S.SAME_PERSON_ASKED)
        for e in (E.GIVE_CONSENT, E.TYPED_CONSENT_YES, E.CHOOSE_OFFER)
    },
    **{(S.SAME_PERSON_ASKED, e): _t(T.NOTHING_PENDING, S.RESUMED_SCREEN) for e in _ANSWERS},
}

SAME_PERSON_QUESTION = "utter_ask_same_person"


def state_of(tracker: Tracker, last_question: str | None = None) -> State:
    """Read the conversation's state from its slots.

    Args:
        tracker: The conversation.
        last_question: The response name of the assistant's latest message, if known (only the
            yes/no dispatcher needs it: it tells the same-person question from the rest).

    Returns:
        The state, in this order of precedence: a resumed screen, an open withdrawal question,
        an open consent question, a consent to resume, nothing.
    """
    if tracker.get_slot(c.RESUMED):
        if last_question == SAME_PERSON_QUESTION:
            return State.SAME_PERSON_ASKED
        return State.RESUMED_SCREEN
    pending = tracker.get_slot(c.PENDING)
    stage = Stage.of(tracker.get_slot(c.STAGE))
    if pending == Pending.WITHDRAWAL.value:
        return State.WITHDRAWAL_ASKED
    if pending == Pending.CONSENT.value and stage in (
        Stage.DOCTOR_ASKED,
        Stage.DOCTOR_NOT_YET,
        Stage.CONFIRMING,
    ):
        return State(stage.value)
    if stage is not None and tracker.get_slot(c.OFFER):
        return State.RESUMABLE
    return State.IDLE


def event_of(tracker: Tracker) -> Event | None:
    """Read the latest message as an event of the table.

    Args:
        tracker: The conversation.

    Returns:
        The event, or None for an intent the consent flow does not take.
    """
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent == "affirm":
        return Event.PROCEED if c.latest_entity(tracker, c.CHOICE) == "proceed" else Event.YES
    if intent == "deny":
        return Event.NO
    if intent == "give_consent":
        if c.latest_entity(tracker, "offer_id"):
            return Event.CHOOSE_OFFER
        # Only the canonical items count: a stray word tagged as data_item (DIET tagged 「と」 in
        # 「先生と相談してきた」 in cross-validation, before bot/nlu/item_gazetteer.py) must not
        # turn a typed yes into a new request.
        named_items = next(
            (v for v in latest_entity_values(tracker, "data_item") if v in DATA_ITEMS), None
        )
        if named_items is None and c.typed_wish(tracker, c.CONSENT_YES):
            return Event.TYPED_CONSENT_YES
        return Event.GIVE_CONSENT
    if intent == "answer_family_doctor":
        # Values the synonym mapper did not recognise (a stray "はい" tagged with the answer)
        # are ignored; two different answers in one message are unclear.
        answers = {
            value
            for value in latest_entity_values(tracker, "family_doctor_answer")
            if value in c.DOCTOR_ANSWERS
        }
        if len(answers) != 1:
            return Event.DOCTOR_UNCLEAR
        return Event("doctor_" + answers.pop())
    return None


def transition(state: State, event: Event) -> Transition:
    """The row of the table for `state` and `event` (every pair has one)."""
    return TRANSITIONS[(state, event)]


def table_rows() -> List[Tuple[str, str, str, str]]:
    """The table as docs/consent-in-chat.md shows it: state, event, step, states that follow.

    Returns:
        One row per (state, event), in the order the enums declare them; the states that may
        follow are joined by ", " in the same order.
    """
    states, events = list(State), list(Event)
    return [
        (
            state.value,
            event.value,
            row.step.value,
            ", ".join(s.value for s in states if s in row.next),
        )
        for (state, event), row in sorted(
            TRANSITIONS.items(), key=lambda kv: (states.index(kv[0][0]), events.index(kv[0][1]))
        )
    ]
