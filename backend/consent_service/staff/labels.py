"""The labelling loop (issue 15): what the assistant did not understand, labelled by staff.

An editor (or an admin) gives a not-understood message — its text as the analytics tables keep
it, masked at intake — the intent it should have been, or marks it a new topic with a note
(masked here too). `export_yaml` writes the labels as Rasa NLU training data for a developer to
review and commit (`make staff-labels`); `check` asks the running assistant (Rasa's HTTP API,
`POST /model/parse`) how its model reads each labelled text now, so that after the next training
the console shows which ones are understood.

Only masked text is ever stored here or exported: the text is copied from `analytics_events`
(never taken from a form), and the note goes through `masking.mask` (its patterns: the web app
loads no GiNZA). Notes are for staff only: the export leaves them out, so a name a pattern
cannot see never reaches training data or a commit; the form asks for no personal details.
A label lives as long as the message it copies (`purge`, ANALYTICS_RETENTION_DAYS).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Float, Integer, String, Text, delete, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from consent_service.analytics.tables import AnalyticsEvent
from consent_service.config import Settings
from consent_service.models import Base, UTCDateTime
from consent_service.staff.masking import mask

FALLBACK = "nlu_fallback"
INTENTS_FILE = Path(__file__).resolve().parent / "label_intents.txt"
NOTE_MAX = 200


class StaffLabel(Base):
    """One labelled message (migration 0008); `intent` None means "new topic" (see `note`)."""

    __tablename__ = "staff_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # not a foreign key; the analytics retention deletes the label with its event (`purge`)
    analytics_event_id: Mapped[int] = mapped_column(Integer, unique=True)
    text: Mapped[str] = mapped_column(Text)  # masked (copied from analytics_events)
    intent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    note: Mapped[str] = mapped_column(String(NOTE_MAX), default="")  # masked; never exported
    labelled_by: Mapped[str] = mapped_column(String(64))
    labelled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the running assistant's last reading of `text` (`check`)
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    parsed_intent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    parsed_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)

    @property
    def new_topic(self) -> bool:
        """Marked as a topic the assistant has no intent for."""
        return self.intent is None

    def understood(self, min_confidence: float) -> bool | None:
        """Whether the last check read the text as its label (None: not checked, new topic)."""
        if self.intent is None or self.checked_at is None:
            return None
        confidence = self.parsed_confidence or 0.0
        return self.parsed_intent == self.intent and confidence >= min_confidence


class LabelRefused(ValueError):
    """A label that cannot be stored; `reason` is one of "message", "intent"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def label_intents(path: Path = INTENTS_FILE) -> list[str]:
    """The intents a message may be labelled with (`label_intents.txt`, from domain.yml).

    The file is written by `scripts/staff_label_intents.py` on the Rasa side; the console never
    imports Rasa or reads the domain.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def not_understood(
    session: Session, low: float, high: float, limit: int = 500
) -> list[AnalyticsEvent]:
    """Residents' typed messages that fell back, `low` <= timestamp < `high`, newest first."""
    query = (
        select(AnalyticsEvent)
        .where(AnalyticsEvent.kind == "user", AnalyticsEvent.intent == FALLBACK)
        .where(AnalyticsEvent.timestamp >= low, AnalyticsEvent.timestamp < high)
        .order_by(AnalyticsEvent.id.desc())
        .limit(limit)
    )
    return [e for e in session.scalars(query) if e.text and not e.text.startswith("/")]


def labels(session: Session) -> list[StaffLabel]:
    """Every label, newest first."""
    return list(session.scalars(select(StaffLabel).order_by(StaffLabel.labelled_at.desc(),
                                                            StaffLabel.id.desc())))  # fmt: skip


def record(
    session: Session,
    event_id: int,
    intent: str | None,
    note: str,
    username: str,
    now: dt.datetime,
    intents: list[str],
) -> StaffLabel:
    """Label a not-understood message (again: a new label replaces the old one).

    Args:
        session: A session in the caller's transaction.
        event_id: The message's row in `analytics_events` (its text is copied from there).
        intent: The intent it should have been; None for a new topic.
        note: Free text for a new topic, for staff only (masked with the patterns before
            it is stored; never exported).
        username: The staff member.
        now: The current time.
        intents: The intents allowed (`label_intents`).

    Returns:
        The stored label.

    Raises:
        LabelRefused: "message" when the event is no not-understood message of a resident,
            "intent" for an intent not in `intents`.
    """
    event = session.get(AnalyticsEvent, event_id)
    if event is None or event.kind != "user" or event.intent != FALLBACK or not event.text:
        raise LabelRefused("message")
    if intent is not None and intent not in intents:
        raise LabelRefused("intent")
    found = session.scalar(select(StaffLabel).where(StaffLabel.analytics_event_id == event_id))
    if found is None:
        found = StaffLabel(analytics_event_id=event_id, text=event.text)
        session.add(found)
    found.intent = intent
    found.note = mask(" ".join(note.split()))[:NOTE_MAX] if note else ""
    found.labelled_by, found.labelled_at = username[:64], now
    found.checked_at = found.parsed_intent = found.parsed_confidence = None
    session.flush()
    return found


def purge(session: Session, cutoff: dt.datetime) -> int:
    """Delete the labels whose message is gone or which are older than `cutoff`.

    A label copies its message's (masked) text, so it is kept no longer than the message:
    the analytics retention (ANALYTICS_RETENTION_DAYS) runs this right after deleting events.

    Args:
        session: A session inside the caller's transaction.
        cutoff: An aware datetime (now - ANALYTICS_RETENTION_DAYS).

    Returns:
        How many labels were deleted.
    """
    orphan = StaffLabel.analytics_event_id.not_in(select(AnalyticsEvent.id))
    statement = delete(StaffLabel).where(or_(StaffLabel.labelled_at < cutoff, orphan))
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- asking the running assistant --------------------------------------------------------


class RasaUnavailable(RuntimeError):
    """Rasa's HTTP API did not answer usefully (down, wrong token, timeout)."""


@dataclass(frozen=True)
class Parsed:
    """How the model read one text."""

    intent: str
    confidence: float


def parse(client: httpx.Client, settings: Settings, text: str) -> Parsed:
    """Ask Rasa's `POST /model/parse` how the loaded model reads `text`.

    The FallbackClassifier is part of the pipeline, so a reading under its threshold comes
    back as `nlu_fallback`.

    Raises:
        RasaUnavailable: On any transport error, timeout, or answer other than 200 with JSON.
    """
    token = settings.rasa_api_token.get_secret_value() if settings.rasa_api_token else None
    url = settings.staff_rasa_url.rstrip("/") + "/model/parse"
    try:
        response = client.post(url, params={"token": token} if token else None,
                               json={"text": text})  # fmt: skip
    except httpx.HTTPError as error:
        raise RasaUnavailable(type(error).__name__) from error
    if response.status_code != 200:
        raise RasaUnavailable(f"HTTP {response.status_code}")
    try:
        intent = response.json().get("intent") or {}
        return Parsed(str(intent.get("name") or FALLBACK), float(intent.get("confidence") or 0))
    except (ValueError, AttributeError, TypeError) as error:
        raise RasaUnavailable("not a parse result") from error


def to_check(session: Session) -> list[str]:
    """The distinct texts of the labels with an intent (new topics have nothing to compare)."""
    query = select(StaffLabel.text).where(StaffLabel.intent.is_not(None)).distinct()
    return sorted(session.scalars(query))


def ask(settings: Settings, texts: list[str]) -> dict[str, Parsed]:
    """Ask the running assistant how it reads each text (no database work meanwhile).

    Args:
        settings: STAFF_RASA_URL, RASA_API_TOKEN, STAFF_RASA_TIMEOUT_SECONDS.
        texts: Masked texts (`to_check`).

    Returns:
        Text → how the model read it.

    Raises:
        RasaUnavailable: At the first call that fails; nothing is returned then.
    """
    timeout = httpx.Timeout(settings.staff_rasa_timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return {text: parse(client, settings, text) for text in texts}


def store_answers(session: Session, answers: dict[str, Parsed], now: dt.datetime) -> int:
    """Keep the model's readings with the labels of those texts (in the caller's transaction).

    A label re-labelled since the texts were read keeps no answer: it is compared to its new
    intent at the next check.

    Returns:
        How many labels got an answer.
    """
    count = 0
    for label in labels(session):
        parsed = answers.get(label.text)
        if label.intent is None or parsed is None or label.labelled_at > now:
            continue
        label.parsed_intent, label.parsed_confidence = parsed.intent, parsed.confidence
        label.checked_at = now
        count += 1
    session.flush()
    return count


# ---- export as Rasa NLU training data ----------------------------------------------------


def _example(text: str) -> str:
    """One line of an NLU example: whitespace collapsed; ASCII brackets made full-width.

    Rasa reads `[text](entity)` in an example as an entity annotation; a resident's brackets
    are not one.
    """
    line = " ".join(text.split())
    return line.replace("[", "［").replace("]", "］").replace("(", "（").replace(")", "）")


def export_yaml(session: Session, intents: list[str], now: dt.datetime) -> str:
    """The labels as a Rasa 3 NLU file, masked text only, for a developer to review.

    Examples are grouped by intent (the newest label of a text wins when it was labelled
    twice); "new topic" labels and labels with an intent no longer in `intents` are listed as
    comments only, without the staff's note (notes are for staff, not training data). Every
    text is masked: it was copied from the analytics tables.

    Args:
        session: A session of the consent database.
        intents: The intents allowed now (`label_intents`).
        now: For the file's header.

    Returns:
        The YAML text.
    """
    by_text: dict[str, StaffLabel] = {}
    for label in labels(session):  # newest first: the first label of a text wins
        by_text.setdefault(_example(label.text), label)
    examples: dict[str, list[str]] = {}
    comments: list[str] = []
    for text, label in sorted(by_text.items(), key=lambda item: item[1].id):
        if label.intent is None:
            comments.append(f"#   new topic: {json.dumps(text, ensure_ascii=False)}")
        elif label.intent not in intents:
            comments.append(
                f"#   intent {label.intent} is no longer in the domain: "
                f"{json.dumps(text, ensure_ascii=False)}"
            )
        else:
            examples.setdefault(label.intent, []).append(text)
    lines = [
        "# Messages the assistant did not understand, labelled by city staff in the console",
        f"# (/staff/labels). Exported {now:%Y-%m-%d %H:%M} UTC by `make staff-labels`; texts are",
        "# masked. Review every example (and add entity annotations) before committing.",
        'version: "3.1"',
    ]
    if comments:
        lines += ["# Not examples (for a developer to decide on):", *comments]
    if not examples:
        lines.append("nlu: []")
        return "\n".join(lines) + "\n"
    lines.append("nlu:")
    for intent in sorted(examples, key=intents.index):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in examples[intent]]
    return "\n".join(lines) + "\n"
