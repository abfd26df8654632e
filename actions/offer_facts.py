"""The facts of one offer, built once for the notice, the read-back and the doctor memo.

The notice (`utter_consent_offer_explanation*`), the read-back (`utter_consent_readback*`) and
the consultation memo (actions/memo.py, issue 18) all state who receives the data, what for, which
items at which level, where they come from, the benefit and the terms version. They take these
from one :class:`OfferFacts`, built here from the offer as the consent service's `/v1/offers`
serves it and the wording fragments of domain.yml, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from actions import consent_common as c


@dataclass(frozen=True)
class ItemFact:
    """One item of an offer: its name, its level and the text residents read for it.

    Attributes:
        name: The item's name (`name_ja`).
        level: Its level (0-2; level 3 is never offered).
        text: Name and level as the notice writes them, e.g. 血圧（レベル1）.
        source: What data of that level is and where it comes from (the seed's level table).
    """

    name: str
    level: int
    text: str
    source: str


@dataclass(frozen=True)
class OfferFacts:
    """What the notice, the read-back and the memo say about one offer.

    Attributes:
        offer_id: The offer's id (never shown; the memo's page keeps no resident identifier).
        title: The offer's title.
        recipient: The recipient by name.
        purpose: The purpose's name (the read-back's 使いみち).
        description: The purpose in plain words (the offer's or the purpose's description).
        items: The items, in the catalogue's order.
        items_text: The items joined as the notice and read-back show them.
        source: Where the data comes from, one fragment per level the offer contains.
        benefits: The benefit, health benefits first.
        needs_doctor: Whether the offer holds level-2 data (the family-doctor question).
        terms_version: The terms version in force, when it was asked for.
    """

    offer_id: str
    title: str
    recipient: str
    purpose: str
    description: str
    items: Tuple[ItemFact, ...]
    items_text: str
    source: str
    benefits: str
    needs_doctor: bool
    terms_version: str | None = None

    def notice_values(self) -> Dict[str, str]:
        """The placeholders of the notice's first screen (`utter_consent_offer_explanation*`)."""
        return {
            "title": self.title,
            "recipient": self.recipient,
            "description": self.description,
            "items": self.items_text,
            "source": self.source,
            "benefits": self.benefits,
        }

    def readback_values(self) -> Dict[str, str]:
        """The placeholders of the read-back (`utter_consent_readback*`) but the doctor's answer."""
        return {
            "recipient": self.recipient,
            "purpose": self.purpose,
            "items": self.items_text,
            "terms_version": str(self.terms_version),
        }


def offer_facts(
    domain: Dict[str, Any],
    offer: Dict[str, Any],
    terms_version: str | None = None,
    plain: bool = False,
) -> OfferFacts:
    """Build the facts of `offer` with the wording fragments of `domain`.

    Args:
        domain: The domain the action received (for `utter_fragment_*`).
        offer: The offer as `GET /v1/offers/{id}` serves it.
        terms_version: The terms version in force, if the caller needs it.
        plain: Whether plain mode is on (the fragments' plain variants, issue 16).

    Returns:
        The offer's facts.
    """
    purpose = offer["purpose"]
    items = tuple(
        ItemFact(
            name=str(i["name_ja"]),
            level=int(i["level"]),
            text=c.fragment(domain, "item", plain, name=i["name_ja"], level=i["level"]),
            source=c.source_text(domain, [i], plain),
        )
        for i in offer["items"]
    )
    return OfferFacts(
        offer_id=str(offer["offer_id"]),
        title=str(offer["title_ja"]),
        recipient=str(offer["recipient"]["name_ja"]),
        purpose=str(purpose["name_ja"]),
        # In plain words: the offer's own description, else its purpose's, else the name.
        description=str(
            offer.get("description_ja") or purpose.get("description_ja") or purpose["name_ja"]
        ),
        items=items,
        items_text=c.items_text(domain, offer["items"], plain),
        source=c.source_text(domain, offer["items"], plain),
        benefits=c.benefits_text(domain, offer["benefits"], plain),
        needs_doctor=c.needs_doctor(offer),
        terms_version=terms_version,
    )
