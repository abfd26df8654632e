"""Quiet hours of the notices (NOTICE_QUIET_HOURS, Japan time): no LINE call inside them.

A spec is "HH:MM-HH:MM" in JST (UTC+9, Japan keeps no daylight saving time): the start is
inside the quiet hours, the end is the first allowed minute. A start later than the end wraps
midnight ("21:00-08:00", the default); equal start and end mean no quiet hours. The staff form
(N2) refuses a scheduled time inside them and suggests :func:`next_allowed`; the sender waits
until then.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

JST = dt.timezone(dt.timedelta(hours=9), "JST")
_SPEC = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class QuietHours:
    """A parsed spec: the start and end as minutes after midnight (JST)."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        """Whether the minute of the day (JST) is quiet."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


def parse(spec: str) -> QuietHours:
    """Parse "HH:MM-HH:MM".

    Args:
        spec: The setting's value, e.g. "21:00-08:00".

    Returns:
        The quiet hours.

    Raises:
        ValueError: When the spec is not two 24-hour times joined by "-".
    """
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"quiet hours must look like 21:00-08:00, not {spec!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return QuietHours(h1 * 60 + m1, h2 * 60 + m2)


def _minute_of_day(when_utc: dt.datetime) -> tuple[dt.datetime, int]:
    if when_utc.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware UTC")
    local = when_utc.astimezone(JST)
    return local, local.hour * 60 + local.minute


def in_quiet_hours(when_utc: dt.datetime, spec: str) -> bool:
    """Whether `when_utc` falls inside the quiet hours.

    Args:
        when_utc: A timezone-aware time.
        spec: NOTICE_QUIET_HOURS ("HH:MM-HH:MM", JST).

    Returns:
        True inside the quiet hours (the end minute itself is allowed).
    """
    _, minute = _minute_of_day(when_utc)
    return parse(spec).contains(minute)


def next_allowed(when_utc: dt.datetime, spec: str) -> dt.datetime:
    """The first time at or after `when_utc` outside the quiet hours.

    Args:
        when_utc: A timezone-aware time.
        spec: NOTICE_QUIET_HOURS ("HH:MM-HH:MM", JST).

    Returns:
        `when_utc` itself when it is allowed, else the end of its quiet hours (UTC).
    """
    quiet = parse(spec)
    local, minute = _minute_of_day(when_utc)
    if not quiet.contains(minute):
        return when_utc.astimezone(dt.UTC)
    end = local.replace(hour=quiet.end // 60, minute=quiet.end % 60, second=0, microsecond=0)
    if end <= local:
        end += dt.timedelta(days=1)
    return end.astimezone(dt.UTC)
