"""The analytics tables (migration 0007): the console's facts and the consumer's offsets."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from consent_service.models import Base


class AnalyticsEvent(Base):
    """One conversation event as the console needs it: no raw text, no slot values but one.

    `event_key` is the SHA-256 of the event as Rasa published it (canonical JSON): a message
    delivered twice (at-least-once) is stored once.
    """

    __tablename__ = "analytics_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(255))  # Rasa's (pseudonymous) sender id
    kind: Mapped[str] = mapped_column(String(32))  # user, bot, action, slot, session_started
    timestamp: Mapped[float] = mapped_column(Float)  # Rasa's, seconds since the epoch
    channel: Mapped[str | None] = mapped_column(String(32))  # a user event's input channel
    intent: Mapped[str | None] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)
    # the action; a bot message's response (utter_action); a slot event's slot name
    action: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str | None] = mapped_column(String(32))  # the funnel slot's answer only
    text: Mapped[str | None] = mapped_column(Text)  # masked; a button as "/intent"

    __table_args__ = (
        Index("ix_analytics_events_sender_id", "sender", "id"),
        Index("ix_analytics_events_kind_timestamp", "kind", "timestamp"),
        Index("ix_analytics_events_timestamp", "timestamp"),
    )


class AnalyticsOffset(Base):
    """How far the consumer has read a source that has positions (the SQL broker's table)."""

    __tablename__ = "analytics_offsets"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
