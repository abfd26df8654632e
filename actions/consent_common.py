"""What the consent, withdrawal and listing actions share.

Who the resident is, the state slots, and turning catalogue data into text with the wording
fragments of domain.yml.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Dict, FrozenSet, Iterable, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet

from actions.consent_client import consent_channel, subject_id
from bot.settings import get_settings

PENDING = "consent_pending"
STAGE = "consent_stage"
OFFER = "consent_offer_id"
REQUEST_KEY = "consent_request_key"
TERMS = "consent_terms_version"
# What the read-back showed, kept until the yes and submitted as it was (issue #13): the offer's
# version and its item ids. The service refuses `offer_changed` if the offer changed in between.
OFFER_VERSION = "consent_offer_version"
ITEMS = "consent_item_ids"
DOCTOR = "family_doctor_consulted"
WITHDRAW = "withdraw_consent_id"
DOCTOR_ANSWERS = ("consulted", "not_yet", "will_not")
LEVEL_NEEDING_DOCTOR = 2
# The entity in the payloads of the two buttons after "まだ相談していない" (proceed / pause).
CHOICE = "consent_choice"


def resident(tracker: Tracker) -> tuple[str, str]:
    """The resident's consent channel and subject pseudonym.

    Returns:
        (channel, subject_id); the raw sender id is only ever hashed.
    """
    channel = consent_channel(tracker.get_latest_input_channel())
    return channel, subject_id(get_settings(), channel, tracker.sender_id)


# The slot of plain mode (やさしい日本語, issue 16). Rasa picks a response's plain variant by its
# condition on this slot; the fragments below are read by the actions, which pick it themselves.
PLAIN = "plain_japanese"


def plain_mode(tracker: Tracker) -> bool:
    """Whether the resident switched plain mode (やさしい日本語) on."""
    return tracker.get_slot(PLAIN) is True


def _is_plain_variant(variant: Dict[str, Any]) -> bool:
    return any(cond.get("name") == PLAIN for cond in variant.get("condition") or [])


def fragment(domain: Dict[str, Any], name: str, plain: bool = False, /, **values: Any) -> str:
    """Fill one wording fragment (`utter_fragment_<name>` in domain.yml).

    Args:
        domain: The domain the action received.
        name: The fragment's name without the `utter_fragment_` prefix.
        plain: Whether plain mode is on (`plain_mode(tracker)`): then the fragment's variant
            with the condition `plain_japanese` is used, if it has one, as Rasa does for
            responses.
        **values: Values for its placeholders.

    Returns:
        The text.
    """
    variants = domain["responses"][f"utter_fragment_{name}"]
    default = next((v for v in variants if not v.get("condition")), variants[0])
    chosen = next((v for v in variants if _is_plain_variant(v)), default) if plain else default
    text = str(chosen["text"])
    return text.format(**values) if values else text


def join(domain: Dict[str, Any], parts: Iterable[str]) -> str:
    """Join texts with the separator fragment."""
    return fragment(domain, "separator").join(parts)


def items_text(domain: Dict[str, Any], items: List[Dict[str, Any]], plain: bool = False) -> str:
    """Items with their levels, e.g. 血圧（レベル1）、体重（レベル1）."""
    return join(
        domain,
        (fragment(domain, "item", plain, name=i["name_ja"], level=i["level"]) for i in items),
    )


def benefits_text(
    domain: Dict[str, Any], benefits: List[Dict[str, Any]], plain: bool = False
) -> str:
    """Health benefits first; economic ones marked as going with a health benefit."""
    ordered = sorted(benefits, key=lambda b: b["kind"] != "health")
    return join(
        domain,
        (
            b["description_ja"]
            if b["kind"] == "health"
            else fragment(domain, "economic_benefit", plain, description=b["description_ja"])
            for b in ordered
        ),
    )


def source_text(domain: Dict[str, Any], items: List[Dict[str, Any]], plain: bool = False) -> str:
    """Where the offer's data comes from, one fragment per level it contains (1 and/or 2)."""
    levels = sorted({int(i["level"]) for i in items if int(i["level"]) in (1, 2)})
    return join(domain, (fragment(domain, f"source_level{level}", plain) for level in levels))


def contact_text(domain: Dict[str, Any], plain: bool = False) -> str:
    """The notice's contact point: the configured city contact, or where to find it."""
    settings = get_settings()
    if settings.has_city_contact():
        return fragment(
            domain,
            "contact_configured",
            plain,
            name=settings.city_contact_name,
            phone=settings.city_contact_phone,
            hours=settings.city_contact_hours,
        )
    return fragment(domain, "contact_unconfigured", plain)


def needs_doctor(offer: Dict[str, Any]) -> bool:
    """Whether the offer includes level-2 data (the family-doctor question applies)."""
    return int(offer["max_level"]) >= LEVEL_NEEDING_DOCTOR


# Set while a web chat session resumed from an earlier visit has not said who is at the screen
# (actions/session.py); consents are then neither listed, withdrawn nor given.
RESUMED = "session_resumed"


def clear_flow() -> List[Dict[str, Any]]:
    """Events that end any open consent or withdrawal question."""
    return [
        SlotSet(PENDING, None),
        SlotSet(STAGE, None),
        SlotSet(OFFER, None),
        SlotSet(REQUEST_KEY, None),
        SlotSet(TERMS, None),
        SlotSet(OFFER_VERSION, None),
        SlotSet(ITEMS, None),
        SlotSet(WITHDRAW, None),
    ]


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    """The first value of `entity` in the latest message, if any."""
    value = next(tracker.get_latest_entity_values(entity), None)
    return str(value) if value is not None else None


# What a typed wish may be, at an open question, to count as that question's yes. Anything else
# (「同意しません」, 「取り消さないで」, a sentence about another offer) is not a yes, whatever
# intent the classifier gives it: only these plain phrasings, compared after NFKC, without
# blanks and punctuation.
CONSENT_YES: FrozenSet[str] = frozenset(
    {
        "同意します",
        "同意する",
        "同意",
        "同意です",
        "同意で",
        "同意でお願いします",
        "同意をお願いします",
        "はい同意します",
        "はい同意する",
        "どういします",
        "どういする",
    }
)
WITHDRAW_YES: FrozenSet[str] = frozenset(
    {
        "取り消します",
        "取り消す",
        "取り消し",
        "取り消しで",
        "取り消してください",
        "取り消しをお願いします",
        "取り消しお願いします",
        "はい取り消します",
        "取消します",
        "取消す",
        "取消し",
        "とりけします",
        "とりけす",
        "とりけし",
    }
)
IGNORED_IN_WISHES = frozenset("。．.、，,！!？?～〜ー-　 \t\n")


def typed_wish(tracker: Tracker, phrasings: FrozenSet[str]) -> bool:
    """Tell whether the latest message is exactly one of `phrasings`, typed as a yes.

    Args:
        tracker: The conversation.
        phrasings: The plain phrasings that count (CONSENT_YES or WITHDRAW_YES).

    Returns:
        True only for those phrasings (after NFKC, ignoring blanks and punctuation).
    """
    text = tracker.latest_message.get("text")
    if not isinstance(text, str):
        return False
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKC", text) if ch not in IGNORED_IN_WISHES
    )
    return folded in phrasings
