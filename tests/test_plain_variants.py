"""Plain mode (やさしい日本語, issue 16): the switch and the plain variants of responses.

A plain variant is a response variation with the condition `plain_japanese` is true (Rasa's
conditional response variations). Rasa 3.6 (`rasa.core.nlg.generator.ResponseVariationFilter`)
chooses among the variations whose condition matches the filled slots and falls back to those
without a condition only when none matches; each variation brings its own buttons. So a plain
variant must carry everything its default carries: the same `{slot}` placeholders (the actions
pass the same values) and the same buttons (the web chat accepts only payloads it offered). The
one deliberate difference: the help menu offers switching plain mode off instead of on.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

import pytest
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain

from scripts import readability
from tests.conftest import PROJECT_ROOT

PLAIN_CONDITION = [{"type": "slot", "name": "plain_japanese", "value": True}]
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# Issue 16: at most ~30 characters a sentence (placeholders removed, as scripts/readability.py).
MAX_PLAIN_SENTENCE = 30
# The help menu swaps this one button in plain mode; everything else is the same.
HELP_SWAP = {"/plain_japanese_on": "/plain_japanese_off"}
# Responses that must have a plain variant (issue 16: the consent read-back and receipts, the
# withdrawal confirmation and receipt, and the help menu that switches the mode off).
MUST_BE_PLAIN = [
    "utter_help",
    "utter_consent_readback",
    "utter_consent_readback_level2",
    "utter_consent_recorded",
    "utter_consent_already_recorded",
    "utter_withdraw_confirm",
    "utter_withdraw_code_confirm",
    "utter_withdraw_done",
]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


def is_plain(variation: Dict[str, Any]) -> bool:
    return any(c.get("name") == "plain_japanese" for c in variation.get("condition") or [])


def split(domain: Domain) -> List[Tuple[str, List[Dict[str, Any]], List[Dict[str, Any]]]]:
    """(response, default variations, plain variations) for every response with a plain one."""
    found = []
    for name, variations in domain.responses.items():
        plain = [v for v in variations if is_plain(v)]
        if plain:
            found.append((name, [v for v in variations if not is_plain(v)], plain))
    return found


def placeholders(text: str) -> set:
    return set(PLACEHOLDER.findall(text))


def buttons(variation: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Title and payload of each button, braces undoubled as Rasa's interpolation does."""
    return [
        (b["title"], b["payload"].replace("{{", "{").replace("}}", "}"))
        for b in variation.get("buttons") or []
    ]


def test_the_slot_follows_the_two_intents(domain: Domain) -> None:
    [slot] = [s for s in domain.slots if s.name == "plain_japanese"]
    assert slot.type_name == "bool"
    assert slot.initial_value is False
    assert slot.influence_conversation is False
    assert {(m["intent"], m["value"]) for m in slot.mappings} == {
        ("plain_japanese_on", True),
        ("plain_japanese_off", False),
    }
    assert all(m["type"] == "from_intent" for m in slot.mappings)


@pytest.mark.parametrize("name", MUST_BE_PLAIN)
def test_the_responses_the_issue_names_have_a_plain_variant(domain: Domain, name: str) -> None:
    assert any(is_plain(v) for v in domain.responses[name]), name


def test_plain_variants_have_the_exact_condition_and_one_default(domain: Domain) -> None:
    found = split(domain)
    assert found
    for name, defaults, plain in found:
        assert len(defaults) == 1, f"{name}: one default variation to compare with"
        for variation in plain:
            assert variation["condition"] == PLAIN_CONDITION, name
            assert "channel" not in variation, name


def test_plain_variants_keep_placeholders_and_buttons(domain: Domain) -> None:
    wrong = []
    for name, [default], plain in split(domain):
        expected_buttons = buttons(default)
        for variation in plain:
            if placeholders(variation["text"]) != placeholders(default["text"]):
                wrong.append((name, "placeholders"))
            got = buttons(variation)
            if name == "utter_help":
                # Same buttons but the switch, which points the other way (its title may differ).
                got = [(t, p) for t, p in got if p not in HELP_SWAP.values()]
                want = [(t, p) for t, p in expected_buttons if p not in HELP_SWAP]
                swapped = [p for _, p in buttons(variation) if p in HELP_SWAP.values()]
                if swapped != list(HELP_SWAP.values()) or got != want:
                    wrong.append((name, "buttons"))
            elif got != expected_buttons:
                wrong.append((name, "buttons"))
    assert wrong == []


def test_help_offers_the_switch_the_right_way(domain: Domain) -> None:
    [default] = [v for v in domain.responses["utter_help"] if not is_plain(v)]
    [plain] = [v for v in domain.responses["utter_help"] if is_plain(v)]
    assert "/plain_japanese_on" in [p for _, p in buttons(default)]
    assert "/plain_japanese_off" not in [p for _, p in buttons(default)]
    assert "/plain_japanese_off" in [p for _, p in buttons(plain)]
    assert "/plain_japanese_on" not in [p for _, p in buttons(plain)]


def test_plain_sentences_are_short(domain: Domain) -> None:
    too_long = []
    for name, _, plain in split(domain):
        for variation in plain:
            for sentence in readability.sentences(readability.readable_text(variation["text"])):
                if len(sentence) > MAX_PLAIN_SENTENCE:
                    too_long.append((name, sentence))
    assert too_long == []


@pytest.mark.parametrize(
    ("slots", "plain"),
    [({"plain_japanese": True}, True), ({"plain_japanese": False}, False), ({}, False)],
)
def test_rasa_chooses_the_variant_of_the_mode(
    domain: Domain, slots: Dict[str, Any], plain: bool
) -> None:
    """Rasa's own generator: plain when the slot is true, the default when false or unset."""
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    for name, [default], variants in split(domain):
        values = {p: f"<{p}>" for p in placeholders(default["text"])}
        expected = {
            PLACEHOLDER.sub(lambda m, v=values: v[m.group(1)], v["text"])
            for v in (variants if plain else [default])
        }
        for channel in ("socketio", "line", "rest", "collector"):
            got = nlg.generate_from_slots(name, dict(slots), channel, **values)
            assert got is not None and got["text"] in expected, (name, slots, channel)
            assert buttons(got) == buttons(variants[0] if plain else default), name
