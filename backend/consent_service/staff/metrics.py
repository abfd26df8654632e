"""What the console shows, computed from conversations (pure functions, tested exactly).

The aggregate views count in cells of one completed week (Monday to Sunday, Japan time), one
channel and one category; every number they show is a sum of such cells (see `masking.Count`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from consent_service.staff.tracker import Conversation

FALLBACK = "nlu_fallback"
EXPLAINED = {"utter_consent_offer_explanation": 1, "utter_consent_offer_explanation_level2": 2}
ASKED = "utter_ask_family_doctor"
RECORDED = "utter_consent_recorded"
WITHDRAWN = "utter_withdraw_done"
ANSWERS = ("consulted", "not_yet", "will_not")


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from `start` to `end`."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def week_of(day: dt.date) -> dt.date:
    """The Monday of `day`'s week."""
    return day - dt.timedelta(days=day.weekday())


def weeks(start: dt.date, end: dt.date) -> list[dt.date]:
    """The Mondays of every week from `start`'s to `end`'s."""
    first, last = week_of(start), week_of(end)
    return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def last_published_week(today: dt.date) -> dt.date:
    """The Monday of the newest week the aggregate views show on `today`.

    A week is shown from the Tuesday after it (its Sunday and one more day over), so a shown
    number never changes as conversations arrive: watching a number grow would give away how many
    came in between.
    """
    return week_of(today - dt.timedelta(days=8))


def per_day(convs: list[Conversation]) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """(day, channel) → (conversations, distinct residents)."""
    return _per(convs, lambda day: day)


def per_week(convs: list[Conversation]) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """(Monday, channel) → (conversations, distinct residents) of that week."""
    return _per(convs, week_of)


def _per(
    convs: list[Conversation], period: Callable[[dt.date], dt.date]
) -> dict[tuple[dt.date, str], tuple[int, int]]:
    counts: Counter[tuple[dt.date, str]] = Counter()
    residents: dict[tuple[dt.date, str], set[str]] = defaultdict(set)
    for conv in convs:
        assert conv.day is not None
        key = (period(conv.day), conv.channel)
        counts[key] += 1
        residents[key].add(conv.sender)
    return {key: (value, len(residents[key])) for key, value in counts.items()}


def intents(convs: list[Conversation]) -> Counter[str]:
    """How often each intent was asked."""
    return Counter(m.intent or "?" for c in convs for m in c.user_messages)


def intent_cells(convs: list[Conversation]) -> Counter[tuple[str, dt.date, str]]:
    """(intent, Monday, channel) → messages: the cells of the intents and fallbacks views."""
    return Counter(
        (m.intent or "?", week_of(m.at.date()), c.channel) for c in convs for m in c.user_messages
    )


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
    """The text of every message the assistant did not understand (masked at intake)."""
    return [m.text for c in convs for m in c.user_messages if m.intent == FALLBACK]


@dataclass(frozen=True)
class Outcome:
    """How far one conversation went with one level: the funnel's disjoint cells.

    Every column of the funnel (explained, asked, each answer, recorded, withdrawn) counts the
    conversations whose outcome has that step, so all columns are sums of the same cells.
    """

    explained: bool = False
    asked: bool = False
    answer: str | None = None
    recorded: bool = False
    withdrawn: bool = False


@dataclass
class FunnelRow:
    """The consent funnel of one level and channel: conversations that reached each step."""

    explained: int = 0
    asked: int = 0
    consulted: int = 0
    not_yet: int = 0
    will_not: int = 0
    recorded: int = 0
    withdrawn: int = 0


FUNNEL_COLUMNS = ("explained", "asked", *ANSWERS, "recorded", "withdrawn")


def in_column(outcome: Outcome, column: str) -> bool:
    """Whether conversations with `outcome` count in the funnel's `column`."""
    if column in ANSWERS:
        return outcome.answer == column
    return bool(getattr(outcome, column))


def funnel_cells(convs: list[Conversation]) -> Counter[tuple[int, str, dt.date, Outcome]]:
    """(level, channel, Monday, outcome) → conversations.

    A recording or withdrawal counts for the level last explained in the conversation (level 1
    when none was); the family-doctor question and its answer belong to level 2; the last answer
    counts.
    """
    cells: Counter[tuple[int, str, dt.date, Outcome]] = Counter()
    for conv in convs:
        assert conv.day is not None
        steps: dict[int, dict[str, object]] = defaultdict(dict)
        level = 1
        for event in conv.events:
            if event.kind == "bot" and event.utter_action in EXPLAINED:
                level = EXPLAINED[event.utter_action]
                steps[level]["explained"] = True
            elif event.kind == "bot" and event.utter_action == ASKED:
                steps[2]["asked"] = True
            elif event.kind == "slot" and event.action == "family_doctor_consulted":
                if event.value in ANSWERS:
                    steps[2]["answer"] = event.value
            elif event.kind == "bot" and event.utter_action == RECORDED:
                steps[level]["recorded"] = True
            elif event.kind == "bot" and event.utter_action == WITHDRAWN:
                steps[level]["withdrawn"] = True
        for lvl, reached in steps.items():
            cells[(lvl, conv.channel, week_of(conv.day), Outcome(**reached))] += 1  # type: ignore[arg-type]
    return cells


def funnel(convs: list[Conversation]) -> dict[tuple[int, str], FunnelRow]:
    """(level, channel) → the funnel's exact counts (for tests; the view shows `Count`s)."""
    rows: dict[tuple[int, str], FunnelRow] = defaultdict(FunnelRow)
    for (level, channel, _, outcome), n in funnel_cells(convs).items():
        row = rows[(level, channel)]
        for column in FUNNEL_COLUMNS:
            if in_column(outcome, column):
                setattr(row, column, getattr(row, column) + n)
    return dict(rows)
