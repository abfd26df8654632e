"""The domain against the contract, the actions and the channels' limits."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from tests.conftest import CONTRACT_DATA_ITEMS, CONTRACT_INTENTS, LEVEL3_ITEMS, PROJECT_ROOT

# LINE quick replies: at most 13 items with labels of at most 20 characters; the web page uses
# the same buttons. Answers must stay readable on a phone screen.
MAX_BUTTONS = 13
MAX_BUTTON_TITLE = 20
MAX_TEXT = 400


@pytest.fixture(scope="module")
def domain() -> Dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))


def all_responses(domain: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    for name, variations in domain["responses"].items():
        for variation in variations:
            yield name, variation


def texts_of(domain: Dict[str, Any], name: str) -> List[str]:
    """The text of every variation of one response: the default and, if any, the plain one.

    A fact a test checks must hold in each of them, since either may be said (issue 16).
    """
    texts = [str(variation["text"]) for variation in domain["responses"][name]]
    assert texts, name
    return texts


def test_domain_declares_every_contract_intent(domain) -> None:
    assert set(CONTRACT_INTENTS) <= set(domain["intents"])


def test_contract_slot_and_entities(domain) -> None:
    assert "data_item" in domain["entities"]
    slot = domain["slots"]["family_doctor_consulted"]
    assert slot["type"] == "categorical"
    assert slot["values"] == ["consulted", "not_yet", "will_not"]


@pytest.mark.parametrize("item", CONTRACT_DATA_ITEMS)
def test_every_data_item_has_a_level_answer(domain, item: str) -> None:
    assert f"utter_item_level_{item}" in domain["responses"]


@pytest.mark.parametrize("item", LEVEL3_ITEMS)
def test_level3_answers_say_the_item_is_not_handled(domain, item: str) -> None:
    for text in texts_of(domain, f"utter_item_level_{item}"):
        assert "レベル3" in text and "扱いません" in text, text


@pytest.mark.parametrize("level", ["0", "1", "2", "3"])
def test_every_level_has_a_detail_answer(domain, level: str) -> None:
    assert f"utter_data_level_{level}" in domain["responses"]


def test_every_response_an_action_names_exists(domain) -> None:
    named: List[str] = []
    for path in (PROJECT_ROOT / "actions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        named += re.findall(r'"(utter_[a-z0-9_]+)"', source)
        named += [f"utter_fragment_{f}" for f in re.findall(r'fragment\(\s*\w+,\s*"(\w+)"', source)]
    assert named, "the actions send no response at all?"
    # `utter_action` is not a response: it is the key under which Rasa's bot events keep the
    # name of the response they came from (actions/yes_no.py reads it).
    assert sorted(set(named) - set(domain["responses"]) - {"utter_action"}) == []


def test_every_action_is_declared(domain) -> None:
    defined = set()
    for path in (PROJECT_ROOT / "actions").glob("*.py"):
        defined |= set(re.findall(r'return "(action_[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert defined == set(domain["actions"])


def test_rules_use_only_known_intents_and_actions(domain) -> None:
    rules = yaml.safe_load((PROJECT_ROOT / "data" / "rules.yml").read_text(encoding="utf-8"))
    known = set(domain["responses"]) | set(domain["actions"])
    for rule in rules["rules"]:
        for step in rule["steps"]:
            if "intent" in step:
                assert step["intent"] in domain["intents"], rule["rule"]
            if "action" in step:
                assert step["action"] in known, rule["rule"]


def test_buttons_fit_line_quick_replies_and_name_real_intents(domain) -> None:
    for name, variation in all_responses(domain):
        buttons = variation.get("buttons", [])
        assert len(buttons) <= MAX_BUTTONS, name
        for button in buttons:
            assert 0 < len(button["title"]) <= MAX_BUTTON_TITLE, (name, button["title"])
            # Braces are doubled in domain.yml: Rasa's response interpolation would otherwise
            # take the JSON for a slot placeholder (and log a traceback); it undoubles them.
            payload = button["payload"].replace("{{", "{").replace("}}", "}")
            assert payload != button["payload"] or "{" not in payload, (name, payload)
            match = re.fullmatch(r"/(\w+)(\{.*\})?", payload)
            assert match, (name, payload)
            assert match.group(1) in domain["intents"], (name, payload)
            for entity in json.loads(match.group(2) or "{}"):
                assert entity in domain["entities"], (name, payload)


def test_answers_fit_a_phone_screen(domain) -> None:
    too_long = [name for name, v in all_responses(domain) if len(v["text"]) > MAX_TEXT]
    assert too_long == []


# The placeholders each response may have: values the actions pass, never wording.
PLACEHOLDERS = {
    "utter_greet": {"retention_days"},
    "utter_retention": {"retention_days"},
    "utter_delete_data": {"retention_days"},
    "utter_terms_intro": {"retention_days"},
    "utter_terms_text": {"terms_version", "terms_text"},
    "utter_health_centre": {"centre_name", "centre_phone"},
    "utter_contact_city": {"contact_name", "contact_phone", "contact_hours"},
    "utter_consent_level3_not_handled": {"items"},
    "utter_consent_offer_explanation": {
        "title", "recipient", "description", "items", "source", "benefits", "contact",
    },
    "utter_consent_offer_explanation_level2": {
        "title", "recipient", "description", "items", "source", "benefits", "contact",
        "approved_by", "advisors",
    },
    "utter_consent_resume": {"title"},
    "utter_consent_readback": {"recipient", "purpose", "items", "terms_version"},
    "utter_consent_readback_level2": {
        "recipient", "purpose", "items", "terms_version", "family_doctor",
    },
    "utter_consent_recorded": {"receipt_id", "receipt_code", "recipient"},
    "utter_consent_already_recorded": {"receipt_id"},
    "utter_withdraw_confirm": {"title", "recipient", "receipt_id"},
    "utter_withdraw_done": {"receipt_id", "receipt_code"},
    "utter_withdraw_code_confirm": {"receipt_code", "title"},
    "utter_withdraw_code_already": {"receipt_code"},
    "utter_consents_list": {"lines"},
    "utter_fragment_item": {"name", "level"},
    "utter_fragment_economic_benefit": {"description"},
    "utter_fragment_consent_line": {"title", "status", "receipt_id"},
    "utter_fragment_contact_configured": {"name", "phone", "hours"},
    # The consultation memo's lines (issue 18, actions/memo.py).
    "utter_fragment_memo_recipient": {"recipient"},
    "utter_fragment_memo_purpose": {"description"},
    "utter_fragment_memo_item": {"item", "source"},
    "utter_fragment_memo_benefits": {"benefits"},
    "utter_fragment_memo_terms": {"terms_version"},
    "utter_fragment_memo_date": {"year", "month", "day"},
    "utter_link_code_issued": {"link_code", "until", "minutes", "other_channel"},
    "utter_link_done": {"other_channel"},
    "utter_personal_detail_removed": {"details"},
    # Health notices (issue 17, actions/notices.py, actions/session.py).
    "utter_notice_confirm": {"topics", "where"},
    # How long the consent service keeps a web subscription (NOTICE_WEB_SUBSCRIPTION_DAYS).
    "utter_fragment_notice_where_web": {"web_days"},
    "utter_notice_subscribed": {"topics", "receipt_id"},
    "utter_notice_stopped": {"topics", "receipt_id"},
    "utter_notice_list": {"topics"},
    "utter_notice_unseen": {"title", "month", "day", "notice_text"},
    "utter_notice_unseen_link": {"title", "month", "day", "notice_text", "link_url"},
    "utter_fragment_notice_topic_line": {"title", "max_per_month", "description"},
    "utter_fragment_notice_topic_name": {"title"},
}  # fmt: skip


def test_placeholders_are_exactly_the_expected_ones(domain) -> None:
    for name, variation in all_responses(domain):
        fields = set(re.findall(r"\{(\w+)\}", variation["text"]))
        assert fields == PLACEHOLDERS.get(name, set()), name


def test_every_consent_refusal_reason_has_an_explanation(domain) -> None:
    reasons = ["level3_not_handled", "no_ethics_approval", "no_health_benefit",
               "level0_needs_no_consent", "terms_outdated"]  # fmt: skip
    for reason in reasons:
        assert f"utter_consent_refused_{reason}" in domain["responses"]
    assert "utter_consent_refused_generic" in domain["responses"]


def test_no_phone_number_is_written_into_the_domain(domain) -> None:
    """Contact details come from settings; a number in the domain would be invented."""
    for name, variation in all_responses(domain):
        digits = re.findall(r"\d{2,4}-\d{2,4}-\d{3,4}", variation["text"])
        assert digits == [], name


def test_medical_advice_answer_refers_to_the_family_doctor(domain) -> None:
    for text in texts_of(domain, "utter_medical_advice"):
        assert "できません" in text and "かかりつけ医" in text, text


def test_actions_send_only_domain_responses() -> None:
    """Resident-facing wording lives in domain.yml: actions never send literal text."""
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in (PROJECT_ROOT / "actions").glob("*.py")
        # The consultation memo (issue 18) is a custom payload made only of domain.yml's
        # utter_fragment_memo_* lines (tests/actions/test_memo.py checks every string in it).
        if path.name != "memo.py"
        and re.search(
            r"utter_message\((?:[^)]*\b)?(text|json_message|image)=", path.read_text("utf-8")
        )
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "fragment",
    [
        "doctor_consulted",
        "doctor_not_yet",
        "doctor_will_not",
        "status_active",
        "status_withdrawn",
        "source_level1",
        "source_level2",
        "contact_configured",
        "contact_unconfigured",
    ],
)
def test_fragments_named_at_run_time_exist(domain, fragment: str) -> None:
    assert f"utter_fragment_{fragment}" in domain["responses"]
