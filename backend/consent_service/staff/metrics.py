"""What the console shows, computed from conversations (pure functions, tested exactly)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass

from consent_service.staff.tracker import Conversation

FALLBACK = "nlu_fallback"
EXPLAINED = {"utter_consent_offer_explanation": 1, "utter_consent_offer_explanation_level2": 2}
ASKED = "utter_ask_family_doctor"
RECORDED = "utter_consent_recorded"
WITHDRAWN = "utter_withdraw_done"


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from `start` to `end`."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def per_day(convs: list[Conversation]) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """(day, channel) → (conversations, distinct residents)."""
    counts: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0])
    residents: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    for conv in convs:
        assert conv.day is not None
        counts[(conv.day, conv.channel)][0] += 1
        residents[(conv.day, conv.channel)].add(conv.sender)
    return {key: (value[0], len(residents[key])) for key, value in counts.items()}


def intents(convs: list[Conversation]) -> Counter[str]:
    """How often each intent was asked."""
    return Counter(m.intent or "?" for c in convs for m in c.user_messages)


def intent_trend(convs: list[Conversation], names: list[str]) -> dict[str, Counter[dt.date]]:
    """Per intent in `names`: how often it was asked each day."""
    trend: dict[str, Counter[dt.date]] = {name: Counter() for name in names}
    for conv in convs:
        for message in conv.user_messages:
            if message.intent in trend:
                trend[message.intent][message.at.date()] += 1
    return trend


@dataclass(frozen=True)
class FallbackDay:
    """Misunderstood messages of one day."""

    messages: int
    fallbacks: int

    @property
    def rate(self) -> float:
        """Share of messages the assistant did not understand."""
        return self.fallbacks / self.messages if self.messages else 0.0


def fallbacks(convs: list[Conversation]) -> dict[dt.date, FallbackDay]:
    """Per day: messages and how many fell back."""
    totals: Counter[dt.date] = Counter()
    missed: Counter[dt.date] = Counter()
    for conv in convs:
        for message in conv.user_messages:
            totals[message.at.date()] += 1
            missed[message.at.date()] += message.intent == FALLBACK
    return {day: FallbackDay(totals[day], missed[day]) for day in sorted(totals)}


def _shingles(text: str) -> set[str]:
    text = "".join(text.split())
    return {text[i : i + 2] for i in range(max(1, len(text) - 1))}


def group_similar(texts: list[str], threshold: float = 0.3) -> list[list[str]]:
    """Group texts whose character bigrams overlap (Jaccard ≥ threshold), largest group first."""
    groups: list[tuple[set[str], list[str]]] = []
    for text in texts:
        shingles = _shingles(text)
        for representative, members in groups:
            union = representative | shingles
            if union and len(representative & shingles) / len(union) >= threshold:
                members.append(text)
                break
        else:
            groups.append((shingles, [text]))
    return sorted((members for _, members in groups), key=len, reverse=True)


def unanswered(convs: list[Conversation]) -> list[str]:
    """The text of every message the assistant did not understand (unmasked: mask before use)."""
    return [m.text for c in convs for m in c.user_messages if m.intent == FALLBACK]


@dataclass
class FunnelRow:
    """The consent funnel of one level and channel, from the conversations."""

    explained: int = 0
    asked: int = 0
    consulted: int = 0
    not_yet: int = 0
    will_not: int = 0
    recorded: int = 0
    withdrawn: int = 0


def funnel(convs: list[Conversation]) -> dict[tuple[int, str], FunnelRow]:
    """(level, channel) → the funnel counts; a recording counts for the level last explained."""
    rows: dict[tuple[int, str], FunnelRow] = defaultdict(FunnelRow)
    for conv in convs:
        level = 1
        for event in conv.events:
            if event.kind == "bot" and event.utter_action in EXPLAINED:
                level = EXPLAINED[event.utter_action]
                rows[(level, conv.channel)].explained += 1
            elif event.kind == "bot" and event.utter_action == ASKED:
                rows[(2, conv.channel)].asked += 1
            elif event.kind == "slot" and event.data.get("name") == "family_doctor_consulted":
                answer = event.data.get("value")
                if answer in ("consulted", "not_yet", "will_not"):
                    row = rows[(2, conv.channel)]
                    setattr(row, answer, getattr(row, answer) + 1)
            elif event.kind == "bot" and event.utter_action == RECORDED:
                rows[(level, conv.channel)].recorded += 1
            elif event.kind == "bot" and event.utter_action == WITHDRAWN:
                rows[(level, conv.channel)].withdrawn += 1
    return dict(rows)
