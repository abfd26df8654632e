"""Linking two channels of one resident: one-time link codes and the subject links they make.

A resident is known by one pseudonym per channel (`hex(HMAC(key, "<channel>:<sender_id>"))`).
A link joins exactly two pseudonyms of different channels, so that each lists (and may withdraw)
the consents of the other. It never rewrites a consent: every consent keeps the subject and the
channel it was given under, and the listing is the union of the two subjects' consents. Undoing
the link (either side, at any time) therefore restores exactly the state before it.

Why a link can never merge two residents' consents by mistake:

- **A pair, never a group.** `subject_link_members` has the subject as its primary key and holds
  the two members of every link in force: a subject is in at most one link, enforced by the
  database (also against concurrent redemptions on any number of workers). A third pseudonym
  cannot join, and links are not transitive.
- **Only a code its holder typed.** A link is made only by typing, on the other channel, the
  one-time code the first channel showed: 8 digits drawn with `secrets` (10^8 codes), valid for
  LINK_CODE_TTL_SECONDS (default 600), used once, one live code per subject (issuing another
  voids the previous), never issued to a subject that is already linked. Only its keyed hash
  (HMAC-SHA256 under a key derived from CONSENT_AUDIT_KEY, which never enters the database) is
  stored, so a copy of the database does not give live codes away.
- **Guessing is bounded.** Unknown, malformed, expired and used codes count towards the same
  wrong-code limits as receipt codes (consent_service/code_attempts.py: per requester and per
  client within RECEIPT_CODE_WINDOW_SECONDS). With L wrong codes per client per window and A
  codes live at once, the chance that any guess in a window hits a live code is at most
  L * A / 10^8: 100 * 10 / 10^8 = 0.001 % per hour with the defaults and ten residents linking
  at the same moment.
- **Refused rather than guessed.** The same channel, one's own code, or either subject already
  linked are refused with explicit reasons; a refusal makes no link and leaves the code usable.

Retention: a link code row is deleted once it has been expired for LINK_CODE_TTL_SECONDS (so
that a late try is told "expired" or "already used" rather than "unknown"): on every issue and
redemption, at start and by `python -m consent_service retention`. Links stay (with
`unlinked_at` once undone) as the record of which subjects could see each other's consents, as
long as the consents; link and unlink are also written to the audit chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from consent_service import audit
from consent_service.consents import linked_partner
from consent_service.errors import Reason, Refused
from consent_service.models import LinkCode, SubjectLink, SubjectLinkMember

DIGITS = 8
CODE_SPACE = 10**DIGITS
MAX_INPUT = 40
# Separators a resident may type between the digits: hyphens, dashes, the long vowel mark,
# spaces.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー－ｰ]+")
_HASH_CONTEXT = b"consent_service/link-code/v1"
# Refusals about a real, live code: they are not wrong guesses and do not use the code up.
NOT_WRONG_CODE = frozenset({Reason.SAME_CHANNEL, Reason.OWN_LINK_CODE, Reason.ALREADY_LINKED})


class InvalidLinkCode(ValueError):
    """The text is not a link code (8 digits, separators allowed)."""


def normalise(text: str) -> str:
    """The 8 digits of a link code as typed (full-width digits and separators accepted).

    Args:
        text: What the resident typed.

    Returns:
        The 8 ASCII digits.

    Raises:
        InvalidLinkCode: For anything else.
    """
    if len(text) > MAX_INPUT:
        raise InvalidLinkCode("too long")
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        raise InvalidLinkCode("not 8 digits")
    return digits


def display(digits: str) -> str:
    """The code as shown to residents: `1234-5678`."""
    return f"{digits[:4]}-{digits[4:]}"


def code_hash(session: Session, digits: str) -> str:
    """The keyed hash a code is stored and found under (never the code itself).

    Args:
        session: A session made with the audit key (the hash key is derived from it).
        digits: The normalised code.

    Returns:
        Hex HMAC-SHA256.
    """
    key = hmac.new(audit.session_key(session), _HASH_CONTEXT, hashlib.sha256).digest()
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    """A new link code: shown once to the resident, never stored in clear."""

    code: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class LinkState:
    """A subject's link in force, or none."""

    linked: bool
    link_id: str | None = None
    partner_channel: str | None = None
    linked_at: dt.datetime | None = None

    def public(self) -> dict[str, Any]:
        """JSON-ready: whether linked, the partner's channel and since when (no pseudonym)."""
        return {
            "linked": self.linked,
            "link_id": self.link_id,
            "partner_channel": self.partner_channel,
            "linked_at": self.linked_at.isoformat() if self.linked_at else None,
        }


def purge(session: Session, not_before: dt.datetime) -> int:
    """Delete every link code that expired before `not_before`, inside the caller's transaction.

    Args:
        session: The open session.
        not_before: now minus LINK_CODE_TTL_SECONDS.

    Returns:
        How many were deleted.
    """
    result = session.execute(delete(LinkCode).where(LinkCode.expires_at < not_before))
    return int(getattr(result, "rowcount", 0) or 0)


def _link_of(session: Session, subject_id: str) -> SubjectLink | None:
    member = session.get(SubjectLinkMember, subject_id)
    return session.get(SubjectLink, member.link_id) if member is not None else None


def partner_of(session: Session, subject_id: str) -> str | None:
    """The other subject of `subject_id`'s link in force, or None.

    Args:
        session: The open session.
        subject_id: A pseudonym.

    Returns:
        The partner's pseudonym.
    """
    return linked_partner(session, subject_id)


def state(session: Session, subject_id: str) -> LinkState:
    """Whether `subject_id` is linked, to which channel and since when.

    Args:
        session: The open session.
        subject_id: A pseudonym.

    Returns:
        The state.
    """
    link = _link_of(session, subject_id)
    if link is None:
        return LinkState(linked=False)
    partner_channel = link.channel_b if link.subject_a == subject_id else link.channel_a
    return LinkState(True, link.link_id, partner_channel, link.created_at)


def issue(
    factory: sessionmaker[Session],
    subject_id: str,
    channel: str,
    *,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> IssuedCode:
    """Issue a one-time link code for `subject_id`, voiding any earlier live code of it.

    Args:
        factory: Session factory (made with the audit key).
        subject_id: The pseudonym the code will link from.
        channel: Its channel.
        now: The current time (UTC).
        ttl: How long the code is valid.

    Returns:
        The code (8 digits, shown as `1234-5678`) and when it expires.

    Raises:
        Refused: 409 `already_linked` when the subject is already linked.
    """
    for _ in range(20):
        digits = f"{secrets.randbelow(CODE_SPACE):0{DIGITS}d}"
        try:
            with factory() as session, session.begin():
                if _link_of(session, subject_id) is not None:
                    raise Refused(
                        Reason.ALREADY_LINKED, "This subject is already linked; unlink first."
                    )
                purge(session, now - ttl)
                hashed = code_hash(session, digits)
                # One live code per subject; a dead code with the same hash makes way.
                session.execute(
                    delete(LinkCode).where(
                        or_(
                            and_(LinkCode.subject_id == subject_id, LinkCode.used_at.is_(None)),
                            and_(
                                LinkCode.code_hash == hashed,
                                or_(LinkCode.used_at.is_not(None), LinkCode.expires_at <= now),
                            ),
                        )
                    )
                )
                session.add(
                    LinkCode(
                        code_hash=hashed,
                        subject_id=subject_id,
                        channel=channel,
                        created_at=now,
                        expires_at=now + ttl,
                    )
                )
                session.flush()
            return IssuedCode(display(digits), now + ttl)
        except IntegrityError:
            continue  # a live code of someone else has these digits: draw again
    raise Refused(Reason.NO_LINK_CODE, "No free link code could be drawn; try again.")


def redeem(
    factory: sessionmaker[Session],
    subject_id: str,
    channel: str,
    digits: str,
    *,
    now: dt.datetime,
    ttl: dt.timedelta,
) -> LinkState:
    """Link `subject_id` (on `channel`) with the subject that issued the code `digits`.

    Args:
        factory: Session factory (made with the audit key).
        subject_id: Who typed the code.
        channel: The channel it was typed on.
        digits: The normalised code.
        now: The current time (UTC).
        ttl: LINK_CODE_TTL_SECONDS (for purging dead codes).

    Returns:
        The new link as `subject_id` sees it.

    Raises:
        Refused: 404 `unknown_link_code`, 409 `link_code_used`, 410 `link_code_expired`,
            422 `own_link_code` or `same_channel`, 409 `already_linked`. Nothing is linked and
            the code is not used up by any of them.
    """
    try:
        with factory() as session, session.begin():
            purge(session, now - ttl)
            hashed = code_hash(session, digits)
            code = session.execute(
                select(LinkCode).where(LinkCode.code_hash == hashed).with_for_update()
            ).scalar_one_or_none()
            if code is None:
                raise Refused(Reason.UNKNOWN_LINK_CODE, "No link code has these digits.")
            if code.used_at is not None:
                link = _link_of(session, subject_id)
                if link is not None and (link.subject_a, link.subject_b) == (
                    code.subject_id,
                    subject_id,
                ):
                    # A retry of the redemption that made this link: the same answer.
                    return LinkState(True, link.link_id, link.channel_a, link.created_at)
                raise Refused(Reason.LINK_CODE_USED, "This link code was already used.")
            if code.expires_at <= now:
                raise Refused(Reason.LINK_CODE_EXPIRED, "This link code has expired.")
            if code.subject_id == subject_id:
                raise Refused(Reason.OWN_LINK_CODE, "Type the code on the other channel.")
            if code.channel == channel:
                raise Refused(Reason.SAME_CHANNEL, "A link joins two different channels.")
            issuer = code.subject_id
            if _link_of(session, issuer) is not None or _link_of(session, subject_id) is not None:
                raise Refused(Reason.ALREADY_LINKED, "A subject is already linked.")
            used = session.execute(
                update(LinkCode)
                .where(LinkCode.code_hash == hashed, LinkCode.used_at.is_(None))
                .values(used_at=now)
            )
            if int(getattr(used, "rowcount", 0) or 0) != 1:  # a concurrent redemption won
                raise Refused(Reason.LINK_CODE_USED, "This link code was already used.")
            link = SubjectLink(
                link_id=str(uuid.uuid4()),
                subject_a=issuer,
                channel_a=code.channel,
                subject_b=subject_id,
                channel_b=channel,
                created_at=now,
            )
            session.add(link)
            session.flush()
            session.add_all(
                [
                    SubjectLinkMember(subject_id=issuer, link_id=link.link_id),
                    SubjectLinkMember(subject_id=subject_id, link_id=link.link_id),
                ]
            )
            session.flush()
            audit.append(
                session,
                "subject.linked",
                link.link_id,
                {
                    "subject_a": issuer,
                    "channel_a": link.channel_a,
                    "subject_b": subject_id,
                    "channel_b": channel,
                },
                now,
            )
            return LinkState(True, link.link_id, link.channel_a, now)
    except IntegrityError:
        # A concurrent redemption linked one of the two subjects first (the members' key).
        raise Refused(Reason.ALREADY_LINKED, "A subject is already linked.") from None


def unlink(factory: sessionmaker[Session], subject_id: str, *, now: dt.datetime) -> LinkState:
    """Undo `subject_id`'s link (either side may): each again lists only its own consents.

    Args:
        factory: Session factory (made with the audit key).
        subject_id: Either member of the link.
        now: The current time (UTC).

    Returns:
        The link that was undone (`linked` false).

    Raises:
        Refused: 404 `not_linked` when the subject has no link in force.
    """
    with factory() as session, session.begin():
        member = session.execute(
            select(SubjectLinkMember)
            .where(SubjectLinkMember.subject_id == subject_id)
            .with_for_update()
        ).scalar_one_or_none()
        link = session.get(SubjectLink, member.link_id) if member is not None else None
        if link is None:
            raise Refused(Reason.NOT_LINKED, "This subject is not linked.")
        session.execute(delete(SubjectLinkMember).where(SubjectLinkMember.link_id == link.link_id))
        link.unlinked_at = now
        session.flush()
        audit.append(
            session,
            "subject.unlinked",
            link.link_id,
            {"subject_a": link.subject_a, "subject_b": link.subject_b, "by": subject_id},
            now,
        )
        partner_channel = link.channel_b if link.subject_a == subject_id else link.channel_a
        return LinkState(False, link.link_id, partner_channel, link.created_at)
