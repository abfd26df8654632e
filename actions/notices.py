"""Health notices residents opt into (issue 17, docs/notices.md): subscribe, stop, list, unfollow.

- 「お知らせを受け取りたい」 (`subscribe_notifications`): the topics of the consent service's
  catalogue as buttons (`GET /v1/notice-topics`); a button (the same intent with the entity
  `notice_topic`, a topic id or `all`) shows the short notice (`utter_notice_confirm`: what is
  sent, at most how many a month per topic, where it arrives, how to stop, that it is no
  consent and shares no health data) and waits for an explicit yes. Only the yes records
  (`POST /v1/subscriptions`, the Idempotency-Key made when the notice was shown), and the
  receipt id is shown. On LINE the subscription carries the resident's LINE user id as the
  LINE channel sealed it into the yes message's metadata (`notice_recipient`,
  bot/notice_seal.py); the action server cannot open it.
- 「お知らせをやめる」 (`stop_notifications`): one message, as every notice says. With no topic
  named it stops every active topic at once; the receipt lists what stopped, with buttons to
  subscribe again to one of them (or to all), which go through the notice and the yes again.
  A message that names topics (the entity `notice_topic` of a button, or a topic's title typed,
  e.g. 「健診だけやめたい」) stops only those; a named topic wins over 全部 / すべて. An
  all-word taken back (「全部じゃなくて…」), a request for some (「一部だけ」) or one that keeps
  some (「予防接種以外」) with no topic to stop named gets the active topics as buttons.
  Stopping needs no yes: it is the safe direction.
- 「どのお知らせを受け取っている？」 (`list_notifications`): the active topics.
- `line_unfollowed` (the LINE channel, when the resident unfollows): every subscription ends
  with reason `unfollow`, and nothing is said (LINE would not deliver it). With the consent
  service down, a Rasa reminder (`ReminderScheduled`, same intent, one name per conversation so
  retries never stack) tries again later, at most `UNFOLLOW_TRIES` times in all (slot
  `notice_unfollow_tries`); a resident who wrote again since the unfollow is not retried for.

The open question lives in slots only this module sets (`notice_pending`, `notice_topic_ids`,
`notice_request_key`); where a message goes is one table, :data:`TRANSITIONS`. A yes or no
reaches :func:`notice_answer` through actions/yes_no.py, and counts only while the notice was
the assistant's latest question (or its apology that nothing was recorded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import unicodedata
import uuid
from enum import Enum
from typing import Any, Callable, Dict, List, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import ReminderScheduled, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import (
    ConsentClient,
    ConsentRefused,
    ConsentServiceUnavailable,
    Refusal,
    get_client,
    valid_topic_id,
)
from actions.linking import resumed_elsewhere
from actions.session import SAID_IN_PASSING
from actions.worker import ServiceAction

logger = logging.getLogger(__name__)

Events = List[Dict[str, Any]]
PENDING = "notice_pending"
TOPICS = "notice_topic_ids"
REQUEST_KEY = "notice_request_key"
SUBSCRIBE = "subscribe"  # the one value of `notice_pending`: the notice waits for its yes
TOPIC_ENTITY = "notice_topic"
ALL = "all"
# The metadata key under which the LINE channel puts the sealed LINE user id (bot/channels/line.py).
RECIPIENT = "notice_recipient"
CONFIRM = "utter_notice_confirm"
SERVICE_DOWN = "utter_notice_service_down"
NOT_ACCEPTED = "utter_notice_not_accepted"  # the consent service refused (401, 422)
# The answers after which a yes or no still belongs to the open notice.
QUESTIONS = (CONFIRM, SERVICE_DOWN)
WHERE = {"line": "notice_where_line", "web": "notice_where_web", "rest": "notice_where_web"}
MAX_TOPIC_BUTTONS = 12  # LINE quick replies: 13 at most, one is the "all" button
# Typed words that ask for every topic at once (after NFKC). Matching input, never wording.
ALL_WORDS = ("全部", "ぜんぶ", "全て", "すべて", "ゼンブ", "スベテ", "全テーマ", "全件")
# Words right after an all-word that take it back (「全部じゃなくて」, 「すべてではなく」,
# 「全部はやめないで」), and words that ask for some topics only: with no topic named, these get
# the active topics as buttons instead of stopping everything.
NOT_ALL_WORDS = ("じゃな", "じゃあな", "ではな", "でな", "やめない", "止めない", "とめない")
SOME_WORDS = ("一部", "いちぶ", "ひとつだけ", "一つだけ", "1つだけ", "どれか", "いくつか")
# Words that keep some topics (「予防接種以外やめたい」): a named topic is then the one to keep, so
# nothing is guessed; the active topics are offered as buttons.
EXCEPT_WORDS = (
    "以外",
    "除いて",
    "のぞいて",
    "残して",
    "のこして",
    "続けて",
    "つづけて",
    "はそのまま",
)
NEGATION_REACH = 8  # characters after an all-word that may take it back
# Unfollow with the consent service down: tried again by a Rasa reminder (never a message).
UNFOLLOW_TRIES_SLOT = "notice_unfollow_tries"
UNFOLLOW_TRIES = 8  # calls in all, the first included
UNFOLLOW_FIRST_DELAY = dt.timedelta(minutes=5)
# Below the session expiry (domain.yml, 60 minutes): a reminder that fires after a new session
# started is dropped by Rasa.
UNFOLLOW_MAX_DELAY = dt.timedelta(minutes=30)
UNFOLLOW_REMINDER = "notice_unfollow_retry"


class State(str, Enum):
    """Where the notice conversation is, read from the slots and the latest question."""

    IDLE = "idle"
    CONFIRMING = "confirming"  # the notice was shown and waits for はい / いいえ


class Event(str, Enum):
    """What the latest message asks of the notice flow."""

    SUBSCRIBE = "subscribe"  # 「お知らせを受け取りたい」, no topic named
    SUBSCRIBE_TOPIC = "subscribe_topic"  # a topic's button (or 「すべてのテーマ」)
    STOP = "stop"
    LIST = "list"
    YES = "yes"
    NO = "no"
    UNFOLLOWED = "unfollowed"


class Step(str, Enum):
    """What the assistant does."""

    LIST_TOPICS = "list_topics"
    SHOW_NOTICE = "show_notice"
    SUBMIT = "submit"
    CANCEL = "cancel"
    STOP = "stop"
    LIST = "list"
    UNFOLLOW = "unfollow"
    NOT_NOTICE = "not_notice"  # a yes or no with no notice open: not this flow's


# Every (state, event) pair: the step, and the states that may follow (the second when the
# consent service is down: the open question stays, and a later yes tries again with its key).
TRANSITIONS: Dict[Tuple[State, Event], Tuple[Step, Tuple[State, ...]]] = {
    (State.IDLE, Event.SUBSCRIBE): (Step.LIST_TOPICS, (State.IDLE,)),
    (State.IDLE, Event.SUBSCRIBE_TOPIC): (Step.SHOW_NOTICE, (State.CONFIRMING, State.IDLE)),
    (State.IDLE, Event.STOP): (Step.STOP, (State.IDLE,)),
    (State.IDLE, Event.LIST): (Step.LIST, (State.IDLE,)),
    (State.IDLE, Event.YES): (Step.NOT_NOTICE, (State.IDLE,)),
    (State.IDLE, Event.NO): (Step.NOT_NOTICE, (State.IDLE,)),
    (State.IDLE, Event.UNFOLLOWED): (Step.UNFOLLOW, (State.IDLE,)),
    (State.CONFIRMING, Event.SUBSCRIBE): (Step.LIST_TOPICS, (State.IDLE,)),
    (State.CONFIRMING, Event.SUBSCRIBE_TOPIC): (Step.SHOW_NOTICE, (State.CONFIRMING, State.IDLE)),
    (State.CONFIRMING, Event.STOP): (Step.STOP, (State.IDLE,)),
    (State.CONFIRMING, Event.LIST): (Step.LIST, (State.IDLE,)),
    (State.CONFIRMING, Event.YES): (Step.SUBMIT, (State.IDLE, State.CONFIRMING)),
    (State.CONFIRMING, Event.NO): (Step.CANCEL, (State.IDLE,)),
    (State.CONFIRMING, Event.UNFOLLOWED): (Step.UNFOLLOW, (State.IDLE,)),
}

INTENT_EVENTS = {
    "stop_notifications": Event.STOP,
    "list_notifications": Event.LIST,
    "affirm": Event.YES,
    "deny": Event.NO,
    "line_unfollowed": Event.UNFOLLOWED,
}


def clear() -> Events:
    """Close the notice question (nothing waits for a yes any more)."""
    return [SlotSet(PENDING, None), SlotSet(TOPICS, None), SlotSet(REQUEST_KEY, None)]


def last_response(tracker: Tracker) -> str | None:
    """The response name of the assistant's latest message.

    The privacy notice and the unseen notices of a new session (said in passing, between a
    question and its answer) are skipped.
    """
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            utter = (event.get("metadata") or {}).get("utter_action")
            if utter in SAID_IN_PASSING:
                continue
            return str(utter) if utter else None
    return None


def state_of(tracker: Tracker) -> State:
    """CONFIRMING while the notice (or the apology after a failed yes) is the latest question."""
    if tracker.get_slot(PENDING) == SUBSCRIBE and last_response(tracker) in QUESTIONS:
        return State.CONFIRMING
    return State.IDLE


def chosen_topic(tracker: Tracker) -> str | None:
    """The `notice_topic` entity of the latest message (a button's payload), if any."""
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == TOPIC_ENTITY and isinstance(entity.get("value"), str):
            return str(entity["value"])
    return None


def typed_text(tracker: Tracker) -> str:
    """The latest message's text after NFKC (for matching input only)."""
    return unicodedata.normalize("NFKC", str(tracker.latest_message.get("text") or ""))


def all_taken_back(text: str) -> bool:
    """Whether `text` takes an all-word back (「全部じゃなくて」) or keeps some (「…以外」)."""
    if excepts_some(text):
        return True
    for word in ALL_WORDS:
        start = text.find(word)
        while start >= 0:
            after = text[start + len(word) : start + len(word) + NEGATION_REACH]
            if any(negation in after for negation in NOT_ALL_WORDS):
                return True
            start = text.find(word, start + 1)
    return False


def excepts_some(text: str) -> bool:
    """Whether `text` asks to keep some topics (「予防接種以外」, 「防災は残して」)."""
    return any(word in text for word in EXCEPT_WORDS)


def asks_for_all(tracker: Tracker) -> bool:
    """Whether the message asks for every topic: the 「すべて」 buttons, or 全部 typed.

    A typed all-word counts only when nothing takes it back: not negated (「全部じゃなくて」)
    and no topic named (「全部じゃなくて健診だけ」 names one; :func:`named_topics` decides).
    """
    chosen = chosen_topic(tracker)
    if chosen is not None:
        return chosen == ALL
    text = typed_text(tracker)
    return any(word in text for word in ALL_WORDS) and not all_taken_back(text)


def asks_for_some(tracker: Tracker) -> bool:
    """Whether a typed message asks for some topics only (「一部だけ」, 「全部じゃなくて」)."""
    if chosen_topic(tracker) is not None:
        return False
    text = typed_text(tracker)
    return all_taken_back(text) or any(word in text for word in SOME_WORDS)


def named_topics(tracker: Tracker, topics: List[Dict[str, Any]]) -> List[str]:
    """The topic ids the latest message names: its button's entity, or titles typed.

    A title counts by any of its parts (「健診・保健指導」: 健診 or 保健指導), so 「健診だけ
    やめたい」 names `checkups`.
    """
    chosen = chosen_topic(tracker)
    if chosen is not None:
        return [] if chosen == ALL else [chosen]
    text = typed_text(tracker)
    if excepts_some(text):
        return []  # a topic named here is one to keep: nothing is guessed
    named = []
    for topic in topics:
        title = unicodedata.normalize("NFKC", str(topic.get("title_ja") or ""))
        parts = [p for p in title.replace("・", "/").replace("、", "/").split("/") if p]
        if any(part in text for part in parts):
            named.append(str(topic["topic_id"]))
    return named


def is_reminder(tracker: Tracker) -> bool:
    """Whether the latest message is Rasa's external message of a reminder, not the resident's."""
    metadata = tracker.latest_message.get("metadata")
    return isinstance(metadata, dict) and metadata.get("is_external") is True


def wrote_since_unfollow(tracker: Tracker) -> bool:
    """Whether the resident sent anything (a follow, a message) since their latest unfollow."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        metadata = event.get("metadata") or {}
        if isinstance(metadata, dict) and metadata.get("is_external") is True:
            continue  # a reminder's message, not the resident's
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        return intent != "line_unfollowed"
    return False


def unfollow_retry_delay(tries: int) -> dt.timedelta:
    """How long to wait after `tries` failed calls: 5, 10, 20, then 30 minutes."""
    factor: int = 2 ** max(0, tries - 1)
    return min(UNFOLLOW_FIRST_DELAY * factor, UNFOLLOW_MAX_DELAY)


def unfollow_reminder_name(tracker: Tracker) -> str:
    """One reminder name per conversation (Rasa replaces a job of the same name: no stacking).

    Rasa's scheduler keys jobs by this name alone, across conversations, so it carries a hash
    of the conversation's sender (itself a pseudonym on LINE).
    """
    digest = hashlib.sha256(tracker.sender_id.encode()).hexdigest()[:24]
    return f"{UNFOLLOW_REMINDER}_{digest}"


def event_of(tracker: Tracker) -> Event | None:
    """The event of the latest message, or None for an intent this flow does not take."""
    intent = str((tracker.latest_message.get("intent") or {}).get("name") or "")
    if intent == "subscribe_notifications":
        return Event.SUBSCRIBE_TOPIC if chosen_topic(tracker) else Event.SUBSCRIBE
    return INTENT_EVENTS.get(intent)


def transition(state: State, event: Event) -> Tuple[Step, Tuple[State, ...]]:
    """The table's row for a state and an event."""
    return TRANSITIONS[(state, event)]


def recipient(tracker: Tracker) -> str | None:
    """The sealed LINE user id the LINE channel put into the latest message's metadata."""
    metadata = tracker.latest_message.get("metadata")
    if not isinstance(metadata, dict):
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                metadata = event.get("metadata")
                break
    value = metadata.get(RECIPIENT) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


class NoticeFlow:
    """One step of the notice conversation for one message."""

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
        self.plain = c.plain_mode(tracker)
        self.channel, self.subject = c.resident(tracker)

    def utter(self, response: str, **values: Any) -> None:
        """Send one domain response with its values."""
        self.dispatcher.utter_message(response=response, **values)

    def run(self, step: Step) -> Events:
        """Take `step`; the consent service being down or refusing is answered here."""
        steps: Dict[Step, Callable[[], Events]] = {
            Step.LIST_TOPICS: self.list_topics,
            Step.SHOW_NOTICE: self.show_notice,
            Step.SUBMIT: self.submit,
            Step.CANCEL: self.cancel,
            Step.STOP: self.stop,
            Step.LIST: self.list,
            Step.UNFOLLOW: self.unfollow,
        }
        if step is Step.NOT_NOTICE:
            return []
        try:
            return steps[step]()
        except ConsentServiceUnavailable:
            self.utter(SERVICE_DOWN)
            # A yes that could not be recorded keeps its question, key and topics: はい again
            # tries again with the same Idempotency-Key (never recorded twice).
            return [] if step is Step.SUBMIT else clear()
        except ConsentRefused as refusal:
            # The service refused the call (e.g. 401, 422): the resident still gets an answer.
            logger.error("Notice step %s refused: %s", step.value, refusal.reason)
            self.utter(NOT_ACCEPTED)
            return clear()

    # -- subscribing ----------------------------------------------------------------------

    def topic_lines(self, topics: List[Dict[str, Any]], with_details: bool) -> str:
        """One line per topic: with its monthly limit and description, or its title alone."""
        lines = []
        for topic in topics:
            if with_details:
                line = c.fragment(
                    self.domain,
                    "notice_topic_line",
                    self.plain,
                    title=topic["title_ja"],
                    description=topic.get("description_ja", ""),
                    max_per_month=topic.get("max_per_month", ""),
                )
            else:
                line = c.fragment(
                    self.domain, "notice_topic_name", self.plain, title=topic["title_ja"]
                )
            lines.append(line)
        return "\n".join(lines)

    def list_topics(self) -> Events:
        """Offer the catalogue's topics as buttons (nothing is recorded yet)."""
        topics = self.client.notice_topics()
        if not topics:
            self.utter("utter_notice_refused")
            return clear()
        buttons = [
            {
                "title": t["title_ja"],
                "payload": f'/subscribe_notifications{{"{TOPIC_ENTITY}": "{t["topic_id"]}"}}',
            }
            for t in topics[:MAX_TOPIC_BUTTONS]
            if valid_topic_id(t.get("topic_id"))
        ]
        self.dispatcher.utter_message(response="utter_notifications", buttons=buttons)
        return clear()

    def show_notice(self) -> Events:
        """Show the short notice of the chosen topic(s) and ask for an explicit yes."""
        topics = self.client.notice_topics()
        wanted = chosen_topic(self.tracker)
        chosen = topics if wanted == ALL else [t for t in topics if t["topic_id"] == wanted]
        if not chosen:  # an unknown topic (a typed payload, or one no longer offered)
            return self.list_topics()
        if self.channel == "line" and recipient(self.tracker) is None:
            self.utter("utter_notice_line_unavailable")
            return clear()
        # How long a web subscription lasts is the consent service's setting, never written here.
        days = chosen[0].get("web_subscription_days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ConsentServiceUnavailable("notice topics without web_subscription_days")
        where = c.fragment(self.domain, WHERE[self.channel], self.plain, web_days=days)
        self.utter(CONFIRM, topics=self.topic_lines(chosen, with_details=True), where=where)
        return [
            SlotSet(PENDING, SUBSCRIBE),
            SlotSet(TOPICS, [t["topic_id"] for t in chosen]),
            SlotSet(REQUEST_KEY, str(uuid.uuid4())),
        ]

    def submit(self) -> Events:
        """The yes: record the subscription shown, with its key, and show the receipt."""
        topic_ids = self.tracker.get_slot(TOPICS)
        key = self.tracker.get_slot(REQUEST_KEY)
        if not isinstance(topic_ids, list) or not topic_ids or not isinstance(key, str):
            return []  # no notice shown in this conversation: nothing to record
        sealed = recipient(self.tracker) if self.channel == "line" else None
        if self.channel == "line" and sealed is None:
            self.utter("utter_notice_line_unavailable")
            return clear()
        titles = {t["topic_id"]: t for t in self.client.notice_topics()}
        try:
            result = self.client.subscribe(self.subject, topic_ids, self.channel, sealed, key)
        except ConsentRefused as refusal:
            if refusal.known is Refusal.LINE_RECIPIENT_REQUIRED:
                self.utter("utter_notice_line_unavailable")
            else:
                self.utter("utter_notice_refused")
            return clear()
        subscribed = [
            titles.get(s["topic_id"], {"title_ja": s["topic_id"]})
            for s in result.get("subscriptions", [])
        ]
        self.utter(
            "utter_notice_subscribed",
            topics=self.topic_lines(subscribed, with_details=False),
            receipt_id=result["receipt"]["receipt_id"],
        )
        return clear()

    def cancel(self) -> Events:
        """The no: nothing is recorded."""
        self.utter("utter_notice_cancelled")
        return clear()

    # -- stopping and listing -------------------------------------------------------------

    def active_topics(self) -> List[Dict[str, Any]]:
        """The resident's active topics with their titles, in the catalogue's order."""
        active = {
            s["topic_id"]
            for s in self.client.subscriptions(self.subject)
            if s.get("status") == "active"
        }
        if not active:
            return []
        topics = self.client.notice_topics()
        known = [t for t in topics if t["topic_id"] in active]
        missing = sorted(active - {t["topic_id"] for t in known})
        return known + [{"topic_id": t, "title_ja": t} for t in missing]

    def stop(self) -> Events:
        """Stop in one message: the topics named, else every active one.

        Only a message that asks for some topics without naming any (「一部だけ」), or names
        none that is active, gets the active topics as buttons.
        """
        active = self.active_topics()
        if not active:
            self.utter("utter_notice_none_active")
            return clear()
        active_ids = [t["topic_id"] for t in active]
        named = [] if asks_for_all(self.tracker) else self.named_for_stop(active)
        if named:
            wanted = [t for t in active_ids if t in named]
            if wanted:
                return self.end(wanted, active)
        elif asks_for_all(self.tracker) or not asks_for_some(self.tracker):
            return self.end(None, active)
        buttons = [
            {
                "title": t["title_ja"],
                "payload": f'/stop_notifications{{"{TOPIC_ENTITY}": "{t["topic_id"]}"}}',
            }
            for t in active[:MAX_TOPIC_BUTTONS]
            if valid_topic_id(t.get("topic_id"))
        ]
        self.dispatcher.utter_message(response="utter_notice_stop_choose", buttons=buttons)
        return clear()

    def named_for_stop(self, active: List[Dict[str, Any]]) -> List[str]:
        """The topics the message names, looked up in the catalogue (and the active ones)."""
        if chosen_topic(self.tracker) is not None:
            return named_topics(self.tracker, active)
        catalogue = self.client.notice_topics()
        known = {t["topic_id"] for t in catalogue}
        extra = [t for t in active if t["topic_id"] not in known]
        return named_topics(self.tracker, catalogue + extra)

    def end(self, topic_ids: List[str] | None, active: List[Dict[str, Any]]) -> Events:
        """End the topics (None: all) and show the receipt."""
        result = self.client.end_subscriptions(
            self.subject, topic_ids, "resident", str(uuid.uuid4())
        )
        receipt = result.get("receipt")
        ended = set(result.get("ended") or [])
        if not receipt or not ended:
            self.utter("utter_notice_none_active")
            return clear()
        stopped = [t for t in active if t["topic_id"] in ended]
        stopped += [
            {"topic_id": t, "title_ja": t} for t in sorted(ended - {t["topic_id"] for t in active})
        ]
        self.dispatcher.utter_message(
            response="utter_notice_stopped",
            topics=self.topic_lines(stopped, with_details=False),
            receipt_id=receipt["receipt_id"],
            buttons=self.subscribe_again_buttons(stopped),
        )
        return clear()

    def subscribe_again_buttons(self, stopped: List[Dict[str, Any]]) -> List[Dict[str, str]]:
        """Buttons to subscribe again to a stopped topic (or to all): the notice and yes again."""
        buttons = [
            {
                "title": str(t["title_ja"]),
                "payload": f'/subscribe_notifications{{"{TOPIC_ENTITY}": "{t["topic_id"]}"}}',
            }
            for t in stopped[:MAX_TOPIC_BUTTONS]
            if valid_topic_id(t.get("topic_id"))
        ]
        if len(stopped) > 1:
            buttons.append(
                {
                    "title": c.fragment(self.domain, "notice_subscribe_again_all"),
                    "payload": f'/subscribe_notifications{{"{TOPIC_ENTITY}": "{ALL}"}}',
                }
            )
        return buttons

    def list(self) -> Events:
        """Say which topics the resident receives."""
        active = self.active_topics()
        if not active:
            self.utter("utter_notice_none_active")
        else:
            self.utter("utter_notice_list", topics=self.topic_lines(active, with_details=False))
        return clear()

    def unfollow(self) -> Events:
        """End every subscription of a LINE resident who unfollowed; say nothing.

        With the consent service down, a reminder tries again later (see the module's
        docstring); nothing is ever sent to LINE.
        """
        if self.channel != "line":
            return clear()
        retry = is_reminder(self.tracker)
        if retry and wrote_since_unfollow(self.tracker):
            # The resident came back (followed again and wrote): what they do now is theirs.
            logger.info("Notice unfollow retry dropped: the resident wrote again")
            return [*clear(), SlotSet(UNFOLLOW_TRIES_SLOT, None)]
        tries = self.tracker.get_slot(UNFOLLOW_TRIES_SLOT) if retry else 0
        tries = int(tries) if isinstance(tries, (int, float)) else 0
        try:
            self.client.end_subscriptions(self.subject, None, "unfollow", str(uuid.uuid4()))
        except ConsentServiceUnavailable as error:
            tries += 1
            if tries >= UNFOLLOW_TRIES:
                logger.error(
                    "Notice subscriptions not ended on unfollow after %d tries: %s",
                    tries,
                    type(error).__name__,
                )
                return [*clear(), SlotSet(UNFOLLOW_TRIES_SLOT, None)]
            # Never the ids in the log.
            logger.warning("Notice unfollow failed (%d), tried again later", tries)
            when = dt.datetime.now(dt.timezone.utc) + unfollow_retry_delay(tries)
            reminder = ReminderScheduled(
                "line_unfollowed",
                trigger_date_time=when,
                name=unfollow_reminder_name(self.tracker),
                kill_on_user_message=False,
            )
            return [*clear(), SlotSet(UNFOLLOW_TRIES_SLOT, tries), reminder]
        except ConsentRefused as error:
            # A refusal does not get better by waiting; nothing can be said to one who left.
            logger.error("Notice subscriptions not ended on unfollow: %s", error.reason)
        return [*clear(), SlotSet(UNFOLLOW_TRIES_SLOT, None)]


def notice_answer(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
) -> Events | None:
    """A yes or no to the open notice (actions/yes_no.py asks here first).

    Returns:
        The step's events, or None when no notice question is open (the yes or no is not
        this flow's).
    """
    event = event_of(tracker)
    if event not in (Event.YES, Event.NO) or state_of(tracker) is not State.CONFIRMING:
        return None
    step, _ = transition(State.CONFIRMING, event)
    return NoticeFlow(dispatcher, tracker, domain, get_client()).run(step)


class ActionNotices(ServiceAction):
    """Every notice intent: subscribe, stop, list, and LINE's unfollow."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_notices"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Look the step up in the table and take it."""
        event = event_of(tracker)
        if event is None:
            return []
        if event is not Event.UNFOLLOWED and resumed_elsewhere(dispatcher, tracker, domain):
            return []
        step, _ = transition(state_of(tracker), event)
        return NoticeFlow(dispatcher, tracker, domain, get_client()).run(step)
