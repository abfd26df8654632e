"""The limit on wrong receipt codes: per requester and per client, across every worker.

Each look-up by code first records an attempt in `receipt_code_failures` and commits it, then
counts the attempts of the same requester and of the same client within the window. Over either
limit, the attempt is taken back and the look-up refused (429) without looking at the code. A
look-up that finds a consent takes its attempt back; a wrong or unknown code leaves it counted.

Because every attempt is committed before anyone counts, the last of any number of concurrent
attempts sees all the others: more than the limit can never get through, on any number of
workers or replicas sharing the database (at worst concurrent attempts refuse each other). The
rows carry no code, and are deleted once older than the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from consent_service.models import ReceiptCodeFailure


@dataclass(frozen=True)
class Limits:
    """How many failed look-ups count within how long."""

    window: dt.timedelta
    per_requester: int
    per_client: int


class TooManyWrongCodes(Exception):
    """The requester or the client has used up its wrong codes for the window."""


def begin(
    factory: sessionmaker[Session],
    *,
    client: str,
    requester: str,
    limits: Limits,
    now: dt.datetime,
) -> int:
    """Record one attempt and check both limits.

    Args:
        factory: Session factory.
        client: The digest of the calling client's token.
        requester: Who asks (the chat's subject pseudonym of the person typing the code).
        limits: The limits.
        now: The current time (UTC).

    Returns:
        The attempt's id, for `succeeded`.

    Raises:
        TooManyWrongCodes: When either limit is exceeded (the attempt is not kept).
    """
    with factory() as session, session.begin():
        attempt = ReceiptCodeFailure(at=now, client_digest=client, requester=requester)
        session.add(attempt)
        session.flush()
        attempt_id = attempt.id
    since = now - limits.window
    with factory() as session, session.begin():
        recent = select(func.count()).select_from(ReceiptCodeFailure)
        recent = recent.where(ReceiptCodeFailure.at >= since)
        by_requester = session.execute(
            recent.where(ReceiptCodeFailure.requester == requester)
        ).scalar_one()
        by_client = session.execute(
            recent.where(ReceiptCodeFailure.client_digest == client)
        ).scalar_one()
        refused = by_requester > limits.per_requester or by_client > limits.per_client
        if refused:
            session.execute(delete(ReceiptCodeFailure).where(ReceiptCodeFailure.id == attempt_id))
    if refused:  # raised after the commit, which would otherwise roll the deletion back
        raise TooManyWrongCodes
    return attempt_id


def succeeded(factory: sessionmaker[Session], attempt_id: int) -> None:
    """Take back an attempt that found a consent (right codes never count).

    Args:
        factory: Session factory.
        attempt_id: What `begin` returned.
    """
    with factory() as session, session.begin():
        session.execute(delete(ReceiptCodeFailure).where(ReceiptCodeFailure.id == attempt_id))


def purge(session: Session, not_before: dt.datetime) -> int:
    """Delete every failure record older than `not_before`, inside the caller's transaction.

    Args:
        session: The open session.
        not_before: The oldest time still kept (now minus RECEIPT_CODE_WINDOW_SECONDS).

    Returns:
        How many were deleted.
    """
    result = session.execute(delete(ReceiptCodeFailure).where(ReceiptCodeFailure.at < not_before))
    return int(getattr(result, "rowcount", 0) or 0)
