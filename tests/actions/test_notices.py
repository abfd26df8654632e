"""Health notices in the chat (issue 17, actions/notices.py, actions/session.py) against a mocked
consent service: nothing is recorded before the explicit yes, the yes records what the notice
showed with its key (again on a retry), LINE sends the sealed recipient, stopping is one
message, unfollow says nothing, and the web chat shows unseen notices once."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
from typing import Any, Dict, List

import pytest
import responses
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_client import ConsentRefused, get_client
from actions.notices import TRANSITIONS, UNFOLLOW_TRIES, ActionNotices, Event, State
from actions.session import ActionSessionStart
from actions.yes_no import ActionHandleYesNo, last_question
from tests.actions.conftest import FAKE_API, FAKE_PSEUDONYM_KEY, run_action
from tests.actions.conftest import responses as sent

SEALED = "A" * 124
TOPICS = [
    {
        "topic_id": "checkups",
        "title_ja": "健診・保健指導",
        "description_ja": "受診期間のお知らせです。",
        "max_per_month": 2,
        "web_subscription_days": 45,
    },
    {
        "topic_id": "disaster",
        "title_ja": "防災・避難",
        "description_ja": "避難所のお知らせです。",
        "max_per_month": 2,
        "web_subscription_days": 45,
    },
]
RECEIPT = {"receipt_id": "N-ABCDEFGH23", "kind": "notice_subscription", "created_at": "x"}


def subject(channel: str) -> str:
    message = f"{channel}:test-sender".encode()
    return hmac.new(FAKE_PSEUDONYM_KEY.encode(), message, hashlib.sha256).hexdigest()


def url(path: str, channel: str = "rest") -> str:
    return f"{FAKE_API}/v1/subjects/{subject(channel)}{path}"


@pytest.fixture(autouse=True)
def consent_settings(consent_env: None) -> None:
    """Every test here talks to the faked consent service."""


def user(
    text: str,
    intent: str,
    channel: str = "rest",
    topic: str | None = None,
    metadata: Dict[str, Any] | None = None,
) -> Dict[str, Any]:
    entities = [{"entity": "notice_topic", "value": topic}] if topic else []
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities,
        "metadata": metadata or {},
    }
    return {
        "event": "user",
        "text": text,
        "parse_data": parse,
        "input_channel": channel,
        "metadata": metadata or {},
    }


def bot(response: str) -> Dict[str, Any]:
    return {"event": "bot", "text": "…", "metadata": {"utter_action": response}}


def tracker(*events: Dict[str, Any], slots: Dict[str, Any] | None = None) -> Tracker:
    latest = [e for e in events if e["event"] == "user"][-1]
    return Tracker(
        sender_id="test-sender",
        slots=slots or {},
        latest_message=latest["parse_data"],
        events=list(events),
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def slots_of(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def notice_shown(channel: str = "rest", key: str = "key-1", **slots: Any) -> Dict[str, Any]:
    return {
        "notice_pending": "subscribe",
        "notice_topic_ids": ["checkups"],
        "notice_request_key": key,
        **slots,
    }


# -- subscribing ------------------------------------------------------------------------------


def test_every_state_and_event_has_a_row() -> None:
    assert set(TRANSITIONS) == set(itertools.product(State, Event))


@responses.activate
def test_subscribing_offers_the_catalogue_s_topics_and_records_nothing(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    events = run_action(
        ActionNotices(),
        dispatcher,
        tracker(user("お知らせがほしい", "subscribe_notifications")),
        domain,
    )
    assert sent(dispatcher) == ["utter_notifications"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        '/subscribe_notifications{"notice_topic": "checkups"}',
        '/subscribe_notifications{"notice_topic": "disaster"}',
    ]
    assert slots_of(events)["notice_pending"] is None
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_a_topic_shows_the_notice_and_waits_for_a_yes(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    chosen = user("/subscribe_notifications", "subscribe_notifications", topic="checkups")
    events = run_action(ActionNotices(), dispatcher, tracker(chosen), domain)
    assert sent(dispatcher) == ["utter_notice_confirm"]
    message = dispatcher.messages[0]
    assert "健診・保健指導" in message["topics"] and "月2回" in message["topics"]
    assert "受診期間" in message["topics"] and "防災" not in message["topics"]
    assert "一度だけ" in message["where"]  # the web chat: shown when the resident comes back
    # ...only to this conversation on a device that keeps it, and for as many days as the
    # consent service keeps a web subscription (its setting, sent with the topics); LINE is
    # the way to receive notices as messages (docs/webchat.md "Shared screens").
    assert "「この端末で続きを保存する」" in message["where"]
    assert "45日" in message["where"] and "LINE" in message["where"]
    assert "30日" not in message["where"]
    assert "次にこのチャットを開いたとき" not in message["where"]
    slots = slots_of(events)
    assert slots["notice_pending"] == "subscribe"
    assert slots["notice_topic_ids"] == ["checkups"]
    assert len(slots["notice_request_key"]) == 36
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_topics_without_the_web_subscription_days_show_no_notice(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    # An older or broken service: the notice would have to guess the days; it says the
    # service is unavailable instead and records nothing.
    topics = [{k: v for k, v in t.items() if k != "web_subscription_days"} for t in TOPICS]
    responses.get(f"{FAKE_API}/v1/notice-topics", json=topics)
    chosen = user("/subscribe_notifications", "subscribe_notifications", topic="checkups")
    events = run_action(ActionNotices(), dispatcher, tracker(chosen), domain)
    assert sent(dispatcher) == ["utter_notice_service_down"]
    assert slots_of(events).get("notice_pending") is None  # no question left open


@responses.activate
def test_all_topics_at_once(dispatcher: CollectingDispatcher, domain: Dict[str, Any]) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    chosen = user("/subscribe_notifications", "subscribe_notifications", topic="all")
    events = run_action(ActionNotices(), dispatcher, tracker(chosen), domain)
    assert slots_of(events)["notice_topic_ids"] == ["checkups", "disaster"]


@responses.activate
def test_the_yes_records_what_was_shown_with_its_key_and_shows_the_receipt(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    subscription = {"topic_id": "checkups", "subscription_id": "s", "channel": "rest"}
    responses.post(
        f"{FAKE_API}/v1/subscriptions",
        json={"subscriptions": [subscription], "receipt": RECEIPT},
        status=201,
    )
    conversation = tracker(
        user("/subscribe_notifications", "subscribe_notifications", topic="checkups"),
        bot("utter_notice_confirm"),
        user("はい", "affirm"),
        slots=notice_shown(),
    )
    events = run_action(ActionHandleYesNo(), dispatcher, conversation, domain)
    assert sent(dispatcher) == ["utter_notice_subscribed"]
    assert dispatcher.messages[0]["receipt_id"] == "N-ABCDEFGH23"
    assert "健診・保健指導" in dispatcher.messages[0]["topics"]
    post = responses.calls[-1].request
    assert post.headers["Idempotency-Key"] == "key-1"
    assert json.loads(post.body) == {
        "subject_id": subject("rest"),
        "topic_ids": ["checkups"],
        "channel": "rest",
        "sealed_line_user_id": None,
    }
    assert slots_of(events) == {
        "notice_pending": None,
        "notice_topic_ids": None,
        "notice_request_key": None,
    }


@responses.activate
def test_on_line_the_yes_sends_the_sealed_recipient_of_the_message(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(
        f"{FAKE_API}/v1/subscriptions",
        json={"subscriptions": [{"topic_id": "checkups"}], "receipt": RECEIPT},
        status=201,
    )
    conversation = tracker(
        user("/subscribe_notifications", "subscribe_notifications", "line", "checkups"),
        bot("utter_notice_confirm"),
        user("はい", "affirm", "line", metadata={"notice_recipient": SEALED}),
        slots=notice_shown(),
    )
    run_action(ActionHandleYesNo(), dispatcher, conversation, domain)
    body = json.loads(responses.calls[-1].request.body)
    assert body["channel"] == "line"
    assert body["sealed_line_user_id"] == SEALED
    assert body["subject_id"] == subject("line")


@responses.activate
def test_line_without_a_notice_key_records_nothing(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    chosen = user("/subscribe_notifications", "subscribe_notifications", "line", "checkups")
    events = run_action(ActionNotices(), dispatcher, tracker(chosen), domain)
    assert sent(dispatcher) == ["utter_notice_line_unavailable"]
    assert slots_of(events)["notice_pending"] is None


@responses.activate
def test_the_service_down_at_the_yes_keeps_the_question_and_the_retry_reuses_the_key(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(f"{FAKE_API}/v1/subscriptions", status=503)
    first = tracker(
        user("/subscribe_notifications", "subscribe_notifications", topic="checkups"),
        bot("utter_notice_confirm"),
        user("はい", "affirm"),
        slots=notice_shown(),
    )
    assert run_action(ActionHandleYesNo(), dispatcher, first, domain) == []
    assert sent(dispatcher) == ["utter_notice_service_down"]
    responses.replace(
        responses.POST,
        f"{FAKE_API}/v1/subscriptions",
        json={"subscriptions": [{"topic_id": "checkups"}], "receipt": RECEIPT},
        status=201,
    )
    again = tracker(
        *first.events,
        bot("utter_notice_service_down"),
        user("はい", "affirm"),
        slots=notice_shown(),
    )
    run_action(ActionHandleYesNo(), dispatcher, again, domain)
    assert sent(dispatcher)[-1] == "utter_notice_subscribed"
    keys = {c.request.headers["Idempotency-Key"] for c in responses.calls if c.request.body}
    assert keys == {"key-1"}


@responses.activate
def test_a_no_records_nothing(dispatcher: CollectingDispatcher, domain: Dict[str, Any]) -> None:
    conversation = tracker(
        user("/subscribe_notifications", "subscribe_notifications", topic="checkups"),
        bot("utter_notice_confirm"),
        user("いいえ", "deny"),
        slots=notice_shown(),
    )
    events = run_action(ActionHandleYesNo(), dispatcher, conversation, domain)
    assert sent(dispatcher) == ["utter_notice_cancelled"]
    assert slots_of(events)["notice_pending"] is None
    assert len(responses.calls) == 0


@responses.activate
def test_a_yes_to_another_question_never_subscribes(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    """The slots say a notice was shown, but the latest question was another one."""
    conversation = tracker(
        user("/subscribe_notifications", "subscribe_notifications", topic="checkups"),
        bot("utter_notice_confirm"),
        user("レベルって何", "ask_data_levels"),
        bot("utter_data_levels"),
        user("はい", "affirm"),
        slots=notice_shown(),
    )
    run_action(ActionHandleYesNo(), dispatcher, conversation, domain)
    assert sent(dispatcher) == ["utter_affirm"]
    assert len(responses.calls) == 0


def test_forged_topics_and_recipients_never_reach_the_service() -> None:
    client = get_client()
    with pytest.raises(ConsentRefused) as refused:
        client.subscribe(subject("rest"), ["../audit/verify"], "rest", None, "k")
    assert refused.value.reason == "unknown_topic"
    with pytest.raises(ConsentRefused) as refused:
        client.subscribe(subject("line"), ["checkups"], "line", "not sealed!", "k")
    assert refused.value.reason == "line_recipient_required"
    with pytest.raises(ConsentRefused) as refused:
        client.subscribe(subject("rest"), ["checkups"], "web", SEALED, "k")
    assert refused.value.reason == "line_recipient_not_allowed"
    with pytest.raises(ValueError):
        client.end_subscriptions(subject("rest"), None, "bored", "k")


# -- stopping, listing, unfollow --------------------------------------------------------------


def active(*topics: str) -> List[Dict[str, Any]]:
    return [{"topic_id": t, "status": "active"} for t in topics] + [
        {"topic_id": "vaccination", "status": "ended"}
    ]


def stop_receipt(ended: List[str]) -> Dict[str, Any]:
    receipt = {"receipt_id": "N-ZZZZZZZZ22", "kind": "notice_unsubscription", "created_at": "x"}
    return {"ended": ended, "receipt": receipt}


@responses.activate
def test_stop_with_one_topic_stops_it_in_one_message(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/subscriptions"), json=active("checkups"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(url("/subscriptions/end"), json=stop_receipt(["checkups"]))
    run_action(
        ActionNotices(), dispatcher, tracker(user("お知らせをやめる", "stop_notifications")), domain
    )
    assert sent(dispatcher) == ["utter_notice_stopped"]
    assert dispatcher.messages[0]["receipt_id"] == "N-ZZZZZZZZ22"
    assert "健診・保健指導" in dispatcher.messages[0]["topics"]
    post = responses.calls[-1].request
    assert json.loads(post.body) == {"topic_ids": None, "reason": "resident"}
    assert post.headers["Idempotency-Key"]


@responses.activate
def test_a_plain_stop_with_several_topics_stops_all_in_one_message(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    """Every notice says 「お知らせをやめる」 stops them: no button step in between."""
    responses.get(url("/subscriptions"), json=active("checkups", "disaster"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(url("/subscriptions/end"), json=stop_receipt(["checkups", "disaster"]))
    run_action(
        ActionNotices(), dispatcher, tracker(user("お知らせをやめる", "stop_notifications")), domain
    )
    assert sent(dispatcher) == ["utter_notice_stopped"]
    assert json.loads(responses.calls[-1].request.body) == {"topic_ids": None, "reason": "resident"}
    message = dispatcher.messages[0]
    assert message["topics"] == "・健診・保健指導\n・防災・避難"
    # A resident who meant one topic subscribes again to the other (the notice and yes again).
    assert [(b["title"], b["payload"]) for b in message["buttons"]] == [
        ("健診・保健指導", '/subscribe_notifications{"notice_topic": "checkups"}'),
        ("防災・避難", '/subscribe_notifications{"notice_topic": "disaster"}'),
        ("すべてのテーマを受け取る", '/subscribe_notifications{"notice_topic": "all"}'),
    ]


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("全部じゃなくて健診だけやめたい", None),
        ("すべてではなく健診のお知らせをやめたい", None),
        ("健診のお知らせはもういらない", None),
        ("/stop_notifications", "checkups"),
    ],
)
@responses.activate
def test_a_named_topic_stops_only_that_one(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any], text: str, topic: str | None
) -> None:
    responses.get(url("/subscriptions"), json=active("checkups", "disaster"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(url("/subscriptions/end"), json=stop_receipt(["checkups"]))
    message = user(text, "stop_notifications", topic=topic)
    run_action(ActionNotices(), dispatcher, tracker(message), domain)
    assert sent(dispatcher) == ["utter_notice_stopped"]
    assert json.loads(responses.calls[-1].request.body)["topic_ids"] == ["checkups"]
    assert dispatcher.messages[0]["topics"] == "・健診・保健指導"
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        '/subscribe_notifications{"notice_topic": "checkups"}'
    ]


@pytest.mark.parametrize(
    "text",
    [
        "全部じゃなくて一部だけやめたい",
        "お知らせをひとつだけやめたい",
        "予防接種以外は全部やめたい",  # names the topic to keep: nothing is guessed
        "健診は続けて、ほかはやめたい",
    ],
)
@responses.activate
def test_some_topics_without_a_name_asks_which(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any], text: str
) -> None:
    responses.get(url("/subscriptions"), json=active("checkups", "disaster"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    run_action(ActionNotices(), dispatcher, tracker(user(text, "stop_notifications")), domain)
    assert sent(dispatcher) == ["utter_notice_stop_choose"]  # with 「すべてやめる」 in the domain
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        '/stop_notifications{"notice_topic": "checkups"}',
        '/stop_notifications{"notice_topic": "disaster"}',
    ]
    assert all(c.request.method == "GET" for c in responses.calls)


@pytest.mark.parametrize(
    ("text", "topic"), [("お知らせを全部やめたい", None), ("/stop_notifications", "all")]
)
@responses.activate
def test_stop_all(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any], text: str, topic: str | None
) -> None:
    responses.get(url("/subscriptions"), json=active("checkups", "disaster"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(url("/subscriptions/end"), json=stop_receipt(["checkups", "disaster"]))
    message = user(text, "stop_notifications", topic=topic)
    run_action(ActionNotices(), dispatcher, tracker(message), domain)
    assert sent(dispatcher) == ["utter_notice_stopped"]
    assert json.loads(responses.calls[-1].request.body)["topic_ids"] is None


@responses.activate
def test_a_button_of_an_inactive_topic_stops_nothing_else(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/subscriptions"), json=active("checkups"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    message = user("/stop_notifications", "stop_notifications", topic="disaster")
    run_action(ActionNotices(), dispatcher, tracker(message), domain)
    assert sent(dispatcher) == ["utter_notice_stop_choose"]
    assert all(c.request.method == "GET" for c in responses.calls)


@responses.activate
def test_stop_and_list_with_nothing_active(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/subscriptions"), json=active())
    for intent in ("stop_notifications", "list_notifications"):
        run_action(ActionNotices(), dispatcher, tracker(user("…", intent)), domain)
    assert sent(dispatcher) == ["utter_notice_none_active", "utter_notice_none_active"]
    assert all(c.request.method == "GET" for c in responses.calls)


@pytest.mark.parametrize(
    ("text", "intent", "topic"),
    [
        ("お知らせをやめる", "stop_notifications", None),
        ("どのお知らせ？", "list_notifications", None),
        ("お知らせがほしい", "subscribe_notifications", None),
        ("/subscribe_notifications", "subscribe_notifications", "checkups"),
    ],
)
@responses.activate
def test_a_refusal_of_the_service_is_answered_politely(
    dispatcher: CollectingDispatcher,
    domain: Dict[str, Any],
    text: str,
    intent: str,
    topic: str | None,
) -> None:
    """A 401 or 422 (e.g. a wrong token) never crashes the action: the resident gets an answer."""
    refusal = {"detail": {"reason": "unauthorized"}}
    responses.get(url("/subscriptions"), json=refusal, status=401)
    responses.get(f"{FAKE_API}/v1/notice-topics", json=refusal, status=401)
    events = run_action(
        ActionNotices(), dispatcher, tracker(user(text, intent, topic=topic)), domain
    )
    assert sent(dispatcher) == ["utter_notice_not_accepted"]
    assert slots_of(events)["notice_pending"] is None


@responses.activate
def test_the_list_names_the_active_topics(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/subscriptions"), json=active("disaster"))
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    message = user("どのお知らせを受け取っている？", "list_notifications")
    run_action(ActionNotices(), dispatcher, tracker(message), domain)
    assert sent(dispatcher) == ["utter_notice_list"]
    assert dispatcher.messages[0]["topics"] == "・防災・避難"


@responses.activate
def test_unfollow_ends_everything_and_says_nothing(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.post(url("/subscriptions/end", "line"), json=stop_receipt(["checkups"]))
    message = user(
        "/line_unfollowed", "line_unfollowed", "line", metadata={"notice_recipient": SEALED}
    )
    run_action(ActionNotices(), dispatcher, tracker(message), domain)
    assert dispatcher.messages == []
    assert json.loads(responses.calls[0].request.body) == {"topic_ids": None, "reason": "unfollow"}


def reminders(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [e for e in events if e.get("event") == "reminder"]


def retry_message() -> Dict[str, Any]:
    """What Rasa adds when the reminder fires (UserUttered.create_external)."""
    message = user("EXTERNAL: line_unfollowed", "line_unfollowed", "line")
    message["metadata"] = message["parse_data"]["metadata"] = {"is_external": True}
    return message


@responses.activate
def test_unfollow_with_the_service_down_says_nothing_and_tries_again_later(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.post(url("/subscriptions/end", "line"), status=503)
    message = user("/line_unfollowed", "line_unfollowed", "line")
    events = run_action(
        ActionNotices(), dispatcher, tracker(message, slots={"notice_unfollow_tries": 5}), domain
    )
    assert dispatcher.messages == []
    [reminder] = reminders(events)
    assert reminder["intent"] == "line_unfollowed"
    assert reminder["kill_on_user_msg"] is False
    # One name per conversation (Rasa replaces a job of the same name), no raw sender in it.
    assert reminder["name"].startswith("notice_unfollow_retry_")
    assert "test-sender" not in reminder["name"]
    assert dt.datetime.fromisoformat(reminder["date_time"]) > dt.datetime.now(dt.timezone.utc)
    assert slots_of(events)["notice_unfollow_tries"] == 1  # a new unfollow counts afresh


@responses.activate
def test_the_reminder_tries_again_and_gives_up_after_the_bound(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.post(url("/subscriptions/end", "line"), status=503)
    unfollowed = user("/line_unfollowed", "line_unfollowed", "line")
    retry = tracker(unfollowed, retry_message(), slots={"notice_unfollow_tries": 2})
    events = run_action(ActionNotices(), dispatcher, retry, domain)
    assert slots_of(events)["notice_unfollow_tries"] == 3
    assert len(reminders(events)) == 1
    last = tracker(unfollowed, retry_message(), slots={"notice_unfollow_tries": UNFOLLOW_TRIES - 1})
    events = run_action(ActionNotices(), dispatcher, last, domain)
    assert reminders(events) == []
    assert slots_of(events)["notice_unfollow_tries"] is None
    assert dispatcher.messages == []


@responses.activate
def test_the_retry_ends_everything_once_the_service_is_back(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.post(url("/subscriptions/end", "line"), json=stop_receipt(["checkups"]))
    unfollowed = user("/line_unfollowed", "line_unfollowed", "line")
    retry = tracker(unfollowed, retry_message(), slots={"notice_unfollow_tries": 3})
    events = run_action(ActionNotices(), dispatcher, retry, domain)
    assert json.loads(responses.calls[0].request.body) == {"topic_ids": None, "reason": "unfollow"}
    assert reminders(events) == [] and slots_of(events)["notice_unfollow_tries"] is None
    assert dispatcher.messages == []


@responses.activate
def test_no_retry_for_a_resident_who_came_back(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    """Followed again and wrote: what they subscribe to now is not ended behind their back."""
    retry = tracker(
        user("/line_unfollowed", "line_unfollowed", "line"),
        user("/greet", "greet", "line"),
        retry_message(),
        slots={"notice_unfollow_tries": 1},
    )
    events = run_action(ActionNotices(), dispatcher, retry, domain)
    assert len(responses.calls) == 0 and reminders(events) == []
    assert slots_of(events)["notice_unfollow_tries"] is None


@responses.activate
def test_unfollow_typed_on_another_channel_does_nothing(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    run_action(
        ActionNotices(), dispatcher, tracker(user("/line_unfollowed", "line_unfollowed")), domain
    )
    assert dispatcher.messages == [] and len(responses.calls) == 0


# -- unseen notices at a new web chat session -------------------------------------------------


UNSEEN = [
    {
        "notice_id": "0b7e3f0e-8f59-4c1f-9d0e-3f5c2a1b4d6e",
        "topic_id": "checkups",
        "title_ja": "健診・保健指導",
        "text_ja": "がん検診の受付が始まりました。",
        "link_url": "https://www.city.funabashi.lg.jp/kenko/",
        "sent_at": "2026-12-01T15:30:00+00:00",
    },
    {
        "notice_id": "6a1c9d4e-2b3f-4e5a-8c7d-9e0f1a2b3c4d",
        "topic_id": "checkups",
        "title_ja": "健診・保健指導",
        "text_ja": "保健指導の日程です。",
        "link_url": None,
        "sent_at": "2026-12-02T01:00:00+00:00",
    },
]


@responses.activate
def test_a_new_web_session_shows_unseen_notices_once(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/notices/unseen", "web"), json=UNSEEN)
    responses.post(url("/notices/seen", "web"), json={"seen": 2})
    earlier = tracker(user("こんにちは", "greet", "socketio"), slots={"plain_japanese": True})
    events = run_action(ActionSessionStart(), dispatcher, earlier, domain)
    assert sent(dispatcher) == ["utter_notice_unseen_link", "utter_notice_unseen"]
    first = dispatcher.messages[0]
    assert first["notice_text"] == "がん検診の受付が始まりました。"
    assert (first["month"], first["day"]) == (12, 2)  # 15:30 UTC is the next day in Japan
    assert first["link_url"] == "https://www.city.funabashi.lg.jp/kenko/"
    assert json.loads(responses.calls[-1].request.body) == {
        "notice_ids": [n["notice_id"] for n in UNSEEN]
    }
    assert events[0] == SessionStarted()
    assert SlotSet("plain_japanese", True) in events
    assert events[-1] == ActionExecuted("action_listen")


@responses.activate
def test_a_line_or_brand_new_session_asks_nothing(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    line = tracker(user("こんにちは", "greet", "line"))
    run_action(ActionSessionStart(), dispatcher, line, domain)
    brand_new = Tracker("test-sender", {}, {}, [], False, None, {}, "action_listen")
    events = run_action(ActionSessionStart(), dispatcher, brand_new, domain)
    assert len(responses.calls) == 0 and dispatcher.messages == []
    assert events == [SessionStarted(), ActionExecuted("action_listen")]


@responses.activate
def test_the_service_down_delays_no_session(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(url("/notices/unseen", "web"), status=503)
    events = run_action(
        ActionSessionStart(), dispatcher, tracker(user("やあ", "greet", "socketio")), domain
    )
    assert dispatcher.messages == []
    assert len(responses.calls) == 1  # tried once, not retried at session start
    assert events[0] == SessionStarted()


@pytest.mark.parametrize("shown", ["utter_notice_unseen", "utter_notice_unseen_link"])
def test_unseen_notices_are_no_question(shown: str) -> None:
    """A resident back after the session expired answers the question asked before them."""
    back = tracker(
        user("/consent", "give_consent"),
        bot("utter_consent_readback"),
        bot(shown),
        user("はい", "affirm"),
    )
    assert last_question(back) == "utter_consent_readback"


@responses.activate
def test_a_yes_after_the_unseen_notices_answers_the_open_notice(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.get(f"{FAKE_API}/v1/notice-topics", json=TOPICS)
    responses.post(
        f"{FAKE_API}/v1/subscriptions",
        json={"subscriptions": [{"topic_id": "checkups"}], "receipt": RECEIPT},
        status=201,
    )
    conversation = tracker(
        user("/subscribe_notifications", "subscribe_notifications", topic="checkups"),
        bot("utter_notice_confirm"),
        bot("utter_notice_unseen"),
        user("はい", "affirm"),
        slots=notice_shown(),
    )
    run_action(ActionHandleYesNo(), dispatcher, conversation, domain)
    assert sent(dispatcher) == ["utter_notice_subscribed"]


class Broken:
    """A consent client whose answer breaks the notice lookup half way."""

    def unseen_notices(self, subject_id: str) -> List[Dict[str, Any]]:
        return [UNSEEN[0], {"notice_id": None, "title_ja": 1, "text_ja": 2, "sent_at": None}]

    def notices_seen(self, subject_id: str, notice_ids: List[str]) -> Dict[str, Any]:
        raise TypeError("not what a client raises")


def test_nothing_in_the_notice_lookup_fails_the_session_start(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actions.session.get_client", lambda: Broken())
    events = run_action(
        ActionSessionStart(),
        dispatcher,
        tracker(user("やあ", "greet", "socketio"), slots={"plain_japanese": True}),
        domain,
    )
    assert events == [
        SessionStarted(),
        SlotSet("plain_japanese", True),
        ActionExecuted("action_listen"),
    ]
    assert dispatcher.messages == []  # nothing half shown
