"""「もっと詳しく」 (issue 16): action_more_details and the split answers of domain.yml."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import responses
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.more_details import ActionMoreDetails, rest_of
from tests.actions.conftest import FAKE_API, run_action, user_event
from tests.actions.conftest import responses as sent

# The answers issue 16 splits into a short answer and 「もっと詳しく」 (all explanations of the
# scheme); nothing else may be split — least of all a consent notice, read-back or receipt.
SPLIT = [
    "utter_data_levels",
    "utter_data_level_2",
    "utter_info_bank",
    "utter_recipients",
    "utter_operator",
    "utter_security",
    "utter_purposes",
    "utter_ethics_board",
]
MORE_TITLE = "もっと詳しく"
TERMS = ["utter_terms_intro", "utter_terms_text", "utter_terms_back_to_question"]
WHICH = ["utter_more_details_which"]
READ_BACK = {
    "consent_pending": "consent",
    "consent_stage": "confirming",
    "consent_offer_id": "city_health_vitals",
    "consent_request_key": "abc123",
    "consent_terms_version": "2026-11-01",
    "consent_offer_version": "1",
    "consent_item_ids": ["steps"],
}


def bot(response: str, action: str | None = None) -> List[Dict[str, Any]]:
    """The events of one answer: the action (the response itself unless named) and its message."""
    return [
        {"event": "action", "name": action or response},
        {"event": "bot", "text": "…", "metadata": {"utter_action": response}},
    ]


def more(entity: str | None = None, text: str = "もっと詳しく") -> Dict[str, Any]:
    """The resident's message asking for more: typed, or the button with its `more_of`."""
    return user_event(text, "ask_more_details", [("more_of", entity)] if entity else [])


def conversation(*turns: Any, slots: Dict[str, Any] | None = None) -> Tracker:
    """A tracker of turns: user events, and lists of the events that answered them."""
    events: List[Dict[str, Any]] = []
    for turn in turns:
        if isinstance(turn, list):
            events += [*turn, {"event": "action", "name": "action_listen"}]
        else:
            events.append(turn)
    latest = [e for e in events if e["event"] == "user"][-1]
    return Tracker(
        "resident-7", slots or {}, latest["parse_data"], events, False, None, {}, "action_listen"
    )


def said(tracker: Tracker, domain: Dict[str, Any]) -> List[str | None]:
    dispatcher = CollectingDispatcher()
    events = run_action(ActionMoreDetails(), dispatcher, tracker, domain)
    assert events == []
    return sent(dispatcher)


@pytest.fixture
def terms_api(consent_env: None) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{FAKE_API}/v1/terms",
            json={"version": "2026-11-01", "sha256": "x", "text_ja": "# 利用約款\n撤回できます"},
        )
        yield mock


# ---- 1. the button's `more_of` ---------------------------------------------------------------


def test_the_button_says_the_rest_of_its_answer(domain) -> None:
    tracker = conversation(
        user_event("レベル2って？", "ask_data_levels", [("data_level", "2")]),
        bot("utter_data_level_2", action="action_explain_data_levels"),
        more("utter_data_level_2", text='/ask_more_details{"more_of": "utter_data_level_2"}'),
    )
    assert said(tracker, domain) == ["utter_data_level_2_more"]


def test_an_old_button_tapped_later_says_the_rest_of_its_own_answer(domain) -> None:
    tracker = conversation(
        user_event("レベル2って？", "ask_data_levels", [("data_level", "2")]),
        bot("utter_data_level_2", action="action_explain_data_levels"),
        user_event("審査会って？", "ask_ethics_board"),
        bot("utter_ethics_board"),
        user_event("ありがとう", "thank"),
        bot("utter_thank"),
        more("utter_data_level_2"),
    )
    assert said(tracker, domain) == ["utter_data_level_2_more"]


@pytest.mark.parametrize(
    "forged",
    [
        "utter_consent_readback",  # a response that is never split
        "utter_help",
        "utter_ethics_board_more",  # the rest itself has no rest
        "utter_nonexistent",
        "action_show_terms",
        "",
    ],
)
def test_a_forged_more_of_falls_through_to_the_previous_answer(domain, forged: str) -> None:
    tracker = conversation(
        user_event("審査会って？", "ask_ethics_board"),
        bot("utter_ethics_board"),
        more(forged or None),
    )
    assert said(tracker, domain) == ["utter_ethics_board_more"]


def test_a_forged_more_of_with_nothing_before_asks_which_topic(domain) -> None:
    assert said(conversation(more("utter_consent_readback")), domain) == WHICH


# ---- 2. the answer to the previous turn --------------------------------------------------------


def test_typed_after_the_ethics_board_answer(domain) -> None:
    tracker = conversation(
        user_event("データ倫理審査会とは", "ask_ethics_board"), bot("utter_ethics_board"), more()
    )
    assert said(tracker, domain) == ["utter_ethics_board_more"]


def test_typed_after_an_answer_an_action_said(domain) -> None:
    """The levels overview is said by action_explain_data_levels: the bot event names it."""
    tracker = conversation(
        user_event("情報のレベルは？", "ask_data_levels"),
        bot("utter_data_levels", action="action_explain_data_levels"),
        more(),
    )
    assert said(tracker, domain) == ["utter_data_levels_more"]


def test_the_latest_split_answer_of_the_turn_counts(domain) -> None:
    """A second question's offer after the answer does not hide the answer."""
    tracker = conversation(
        user_event("提供先と安全は？", "ask_recipients"),
        bot("utter_recipients") + bot("utter_offer_second_ask_security"),
        more(),
    )
    assert said(tracker, domain) == ["utter_recipients_more"]


def test_an_answer_before_the_previous_turn_does_not_count(domain) -> None:
    tracker = conversation(
        user_event("情報銀行って？", "ask_info_bank"),
        bot("utter_info_bank"),
        user_event("ありがとう", "thank"),
        bot("utter_thank"),
        more(),
    )
    assert said(tracker, domain) == WHICH


def test_an_answer_of_an_earlier_session_does_not_count(domain) -> None:
    tracker = conversation(
        user_event("情報銀行って？", "ask_info_bank"),
        bot("utter_info_bank"),
        [{"event": "session_started"}],
        more(),
    )
    assert said(tracker, domain) == WHICH


def test_the_channels_privacy_notice_is_not_the_residents_previous_message(domain) -> None:
    """Issue 19: the channel's /personal_detail_removed comes between; the answer still counts."""
    tracker = conversation(
        user_event("安全対策は？", "ask_security"),
        bot("utter_security"),
        user_event(
            "/personal_detail_removed", "personal_detail_removed", [("detail_kind", "name")]
        ),
        bot("utter_personal_detail_removed", action="action_personal_detail_notice"),
        more(),
    )
    assert said(tracker, domain) == ["utter_security_more"]


def test_an_answer_that_is_not_split_has_no_rest(domain) -> None:
    tracker = conversation(user_event("費用は？", "ask_cost"), bot("utter_cost"), more())
    assert said(tracker, domain) == WHICH


# ---- 3. at a consent read-back: the terms, as action_show_terms --------------------------------


def test_typed_at_a_read_back_shows_the_terms_and_asks_again(terms_api, domain) -> None:
    tracker = conversation(
        user_event("はい", "affirm"),
        bot("utter_consent_readback", action="action_handle_yes_no"),
        more(),
        slots=READ_BACK,
    )
    assert said(tracker, domain) == TERMS


def test_a_forged_more_of_at_a_read_back_still_shows_the_terms(terms_api, domain) -> None:
    tracker = conversation(
        user_event("はい", "affirm"),
        bot("utter_consent_readback_level2", action="action_handle_yes_no"),
        more("utter_consent_readback_level2"),
        slots=READ_BACK,
    )
    assert said(tracker, domain) == TERMS


def test_a_split_answer_button_at_a_read_back_says_its_rest(terms_api, domain) -> None:
    """The button names what the resident wants; the read-back's question stays open (slots)."""
    tracker = conversation(
        user_event("はい", "affirm"),
        bot("utter_consent_readback", action="action_handle_yes_no"),
        more("utter_ethics_board"),
        slots=READ_BACK,
    )
    assert said(tracker, domain) == ["utter_ethics_board_more"]


def test_without_a_read_back_waiting_no_terms(terms_api, domain) -> None:
    tracker = conversation(
        user_event("はい", "affirm"),
        bot("utter_consent_readback", action="action_handle_yes_no"),
        more(),
        slots={**READ_BACK, "consent_pending": None},
    )
    assert said(tracker, domain) == WHICH


# ---- 4. nothing to go on -----------------------------------------------------------------------


def test_with_nothing_before_it_asks_which_topic(domain) -> None:
    assert said(conversation(more()), domain) == WHICH


@pytest.mark.parametrize("value", [None, 3, "utter_", "ethics_board"])
def test_rest_of_takes_only_split_response_names(domain, value: Any) -> None:
    assert rest_of(value, domain) is None


# ---- the split answers in domain.yml -----------------------------------------------------------


def buttons(variation: Dict[str, Any]) -> List[Tuple[str, str]]:
    return [(b["title"], b["payload"]) for b in variation.get("buttons") or []]


def test_exactly_the_issues_answers_are_split(domain) -> None:
    split = sorted(name for name in domain["responses"] if rest_of(name, domain))
    assert split == sorted(SPLIT)


@pytest.mark.parametrize("name", SPLIT)
def test_a_short_answer_offers_more_first_in_every_variant(domain, name: str) -> None:
    for variation in domain["responses"][name]:
        title, payload = buttons(variation)[0]
        assert title == MORE_TITLE, name
        interpolated = payload.replace("{{", "{").replace("}}", "}")
        assert interpolated.startswith("/ask_more_details{"), name
        assert json.loads(interpolated[len("/ask_more_details") :]) == {"more_of": name}


@pytest.mark.parametrize("name", SPLIT)
def test_the_rest_has_a_plain_variant_when_the_short_answer_has(domain, name: str) -> None:
    def plain(response: str) -> bool:
        return any(v.get("condition") for v in domain["responses"][response])

    assert plain(name) == plain(f"{name}_more"), name


def test_no_other_response_offers_a_rest_it_does_not_have(domain) -> None:
    for name, variations in domain["responses"].items():
        for variation in variations:
            for _, payload in buttons(variation):
                if payload.startswith("/ask_more_details"):
                    assert name in SPLIT, name
