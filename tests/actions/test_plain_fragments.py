"""Plain mode reaches the wording fragments the actions assemble (issue 16).

Rasa chooses a response's plain variant by its condition on the slot `plain_japanese`; the
`utter_fragment_*` responses, though, are read by the actions themselves (their text goes into
another response's placeholders), so the actions must choose the variant. Checked here with the
shipped catalogue served the way the consent service serves it, and domain.yml as shipped.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
import responses
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent import ActionConsentFlow
from actions.consent_client import get_client
from actions.privacy import ActionPersonalDetailNotice
from bot.settings import get_settings
from tests.actions.conftest import FAKE_API, user_event
from tests.actions.test_consent_notice import (
    LEVEL1,
    LEVEL2,
    OFFERS,
    TERMS_TEXT,
    run,
    slots_of,
    tracker,
)

PLAIN = {"plain_japanese": True}
# Fragments that are sentences or phrases a resident reads: each has a plain variant.
SENTENCE_FRAGMENTS = [
    "source_level1",
    "source_level2",
    "contact_configured",
    "contact_unconfigured",
    "economic_benefit",
    "detail_name",
    "detail_address",
    "detail_health_value",
]


@pytest.fixture(autouse=True)
def consent_settings(monkeypatch: pytest.MonkeyPatch, consent_env: None) -> None:
    monkeypatch.setenv("CONSENT_OFFERS_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    get_client.cache_clear()


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FAKE_API}/v1/offers", json=OFFERS)
        for offer in OFFERS:
            mock.get(f"{FAKE_API}/v1/offers/{offer['offer_id']}", json=offer)
        mock.get(
            f"{FAKE_API}/v1/terms",
            json={"version": "2026-11-30", "sha256": "x", "text_ja": TERMS_TEXT},
        )
        yield mock


def variant(domain: Dict[str, Any], name: str, plain: bool) -> Dict[str, Any]:
    """A response's plain or default variation, as Rasa would choose it."""
    variations = domain["responses"][name]
    return next(v for v in variations if bool(v.get("condition")) == plain)


def shown(domain: Dict[str, Any], message: Dict[str, Any], plain: bool) -> str:
    """The text the resident reads: the variation of the mode filled with the action's values."""
    values = {k: v for k, v in message.items() if k not in ("response", "buttons")}
    return str(variant(domain, message["response"], plain)["text"]).format(**values)


def explanation(domain: Dict[str, Any], offer: Dict[str, Any], slots: Dict[str, Any]) -> Any:
    _, dispatcher = run(
        ActionConsentFlow(),
        tracker("give_consent", slots, **{"offer_id": offer["offer_id"]}),
        domain,
    )
    [message] = [
        m for m in dispatcher.messages if m["response"].startswith("utter_consent_offer_expl")
    ]
    return message


@pytest.mark.parametrize("name", SENTENCE_FRAGMENTS)
def test_sentence_fragments_have_a_plain_variant(domain: Dict[str, Any], name: str) -> None:
    values = {"description": "D", "name": "N", "phone": "P", "hours": "H"}
    plain = c.fragment(domain, name, True, **values)
    assert plain != c.fragment(domain, name, False, **values)
    assert plain == variant(domain, f"utter_fragment_{name}", True)["text"].format(**values)


def test_a_fragment_without_a_plain_variant_is_its_default_in_plain_mode(
    domain: Dict[str, Any],
) -> None:
    assert c.fragment(domain, "separator", True) == c.fragment(domain, "separator") == "、"


def test_plain_mode_follows_the_slot() -> None:
    def with_slots(slots: Dict[str, Any]) -> Tracker:
        return tracker("greet", slots)

    assert c.plain_mode(with_slots(PLAIN))
    assert not c.plain_mode(with_slots({"plain_japanese": False}))
    assert not c.plain_mode(with_slots({}))


@pytest.mark.parametrize(("offer", "level"), [(LEVEL1, 1), (LEVEL2, 2)], ids=["level1", "level2"])
def test_a_plain_mode_notice_uses_the_plain_fragments(api, domain, offer, level) -> None:
    message = explanation(domain, offer, PLAIN)
    plain_source = variant(domain, f"utter_fragment_source_level{level}", True)["text"]
    plain_contact = variant(domain, "utter_fragment_contact_unconfigured", True)["text"]
    assert message["source"] == plain_source
    assert message["contact"] == plain_contact
    text = shown(domain, message, plain=True)
    assert plain_source in text and plain_contact in text
    for name in (f"source_level{level}", "contact_unconfigured"):
        default = variant(domain, f"utter_fragment_{name}", False)["text"]
        assert default not in text  # no default wording left inside the plain notice


@pytest.mark.parametrize(("offer", "level"), [(LEVEL1, 1), (LEVEL2, 2)], ids=["level1", "level2"])
def test_a_default_notice_keeps_the_default_fragments(api, domain, offer, level) -> None:
    for slots in ({}, {"plain_japanese": False}):
        message = explanation(domain, offer, slots)
        assert (
            message["source"]
            == variant(domain, f"utter_fragment_source_level{level}", False)["text"]
        )
        assert (
            message["contact"]
            == variant(domain, "utter_fragment_contact_unconfigured", False)["text"]
        )


def test_a_plain_mode_notice_uses_the_plain_configured_contact(api, domain, monkeypatch) -> None:
    monkeypatch.setenv("CITY_CONTACT_NAME", "健康づくり課")
    monkeypatch.setenv("CITY_CONTACT_PHONE", "000-0000-0000")
    monkeypatch.setenv("CITY_CONTACT_HOURS", "平日")
    get_settings.cache_clear()
    message = explanation(domain, LEVEL2, PLAIN)
    assert message["contact"] == variant(domain, "utter_fragment_contact_configured", True)[
        "text"
    ].format(name="健康づくり課", phone="000-0000-0000", hours="平日")


def test_the_plain_read_back_keeps_the_flow(api, domain) -> None:
    """Plain mode changes the words only: the same steps and slots as the default."""
    events, _ = run(
        ActionConsentFlow(), tracker("give_consent", PLAIN, offer_id=LEVEL2["offer_id"]), domain
    )
    default_events, _ = run(
        ActionConsentFlow(), tracker("give_consent", {}, offer_id=LEVEL2["offer_id"]), domain
    )
    strip = ("consent_request_key",)
    assert {k: v for k, v in slots_of(events).items() if k not in strip} == {
        k: v for k, v in slots_of(default_events).items() if k not in strip
    }


def detail_notice(domain: Dict[str, Any], slots: Dict[str, Any]) -> Dict[str, Any]:
    event = user_event(
        "/personal_detail_removed",
        "personal_detail_removed",
        [("detail_kind", "name"), ("detail_kind", "health_value")],
    )
    t = Tracker("s", slots, event["parse_data"], [event], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    ActionPersonalDetailNotice().run(dispatcher, t, domain)
    [message] = dispatcher.messages
    return message


def test_a_plain_mode_personal_detail_notice_uses_the_plain_kinds(domain) -> None:
    names: List[str] = [
        variant(domain, f"utter_fragment_detail_{k}", True)["text"]
        for k in ("name", "health_value")
    ]
    assert detail_notice(domain, PLAIN)["details"] == "、".join(names)
    assert detail_notice(domain, {})["details"] == "お名前、健康の数値（血圧や体重など）"
