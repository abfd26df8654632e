"""Retention of conversations: delete tracker events older than a number of days.

`python -m bot.retention --endpoints endpoints.prod.yml --days 90` (the production profile runs it
daily; `--dry-run` only counts). It deletes, from Rasa's SQL tracker store, every event older than
the cut-off that

- belongs to a finished session — one before the start of the resident's latest session
  (`action_session_start`). Rasa never reads those again (it loads a conversation from its latest
  session start, and the slots a conversation needs are carried into each new session), so a
  resident mid-conversation loses nothing;
- or belongs to a conversation whose last event is older than the cut-off: nobody has written in
  it for the whole retention period, so all of it goes, even when it only ever had one session
  (a resident who talked once, a year ago, is not kept forever). Writing again starts afresh.

What was said before the cut-off is gone, including the analytics the staff console drew from it.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from typing import Any, List

logger = logging.getLogger(__name__)

OLD_FINISHED_EVENTS = """
    FROM events
    WHERE timestamp < :cutoff
      AND (
        id < COALESCE(
          (SELECT MAX(latest.id) FROM events latest
           WHERE latest.sender_id = events.sender_id
             AND latest.action_name = 'action_session_start'),
          (SELECT MAX(latest.id) FROM events latest
           WHERE latest.sender_id = events.sender_id AND latest.type_name = 'session_started')
        )
        OR sender_id IN (
          SELECT idle.sender_id FROM events idle
          GROUP BY idle.sender_id HAVING MAX(idle.timestamp) < :cutoff
        )
      )
"""


@dataclass
class RetentionResult:
    """What a retention run found and did."""

    cutoff: float
    events: int
    deleted: bool


def tracker_engine(endpoints: str) -> Any:
    """The SQLAlchemy engine of the SQL tracker store configured in `endpoints`."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.utils.endpoints import read_endpoint_config

    config = read_endpoint_config(endpoints, "tracker_store")
    if config is None or str(config.type).upper() != "SQL":
        raise SystemExit(f"{endpoints} has no SQL tracker store: nothing to apply retention to.")
    kwargs = dict(config.kwargs)
    store = SQLTrackerStore(
        domain=None,
        dialect=kwargs.pop("dialect", "sqlite"),
        host=config.url,
        port=kwargs.pop("port", None),
        db=kwargs.pop("db", "rasa.db"),
        username=kwargs.pop("username", None),
        password=kwargs.pop("password", None),
        login_db=kwargs.pop("login_db", None),
    )
    return store.engine


def apply_retention(
    engine: Any, days: float, dry_run: bool = False, now: float | None = None
) -> RetentionResult:
    """Delete (or with `dry_run` count) old events of finished sessions and idle conversations.

    Args:
        engine: The tracker store's SQLAlchemy engine.
        days: Events older than this many days go.
        dry_run: Only count them.
        now: The current Unix time (for tests).

    Returns:
        The cut-off, the number of events concerned and whether they were deleted.
    """
    from sqlalchemy import text

    if days < 1:
        raise ValueError("retention must keep at least one day")
    cutoff = (now if now is not None else time.time()) - days * 86_400
    with engine.begin() as connection:
        count = int(
            connection.execute(
                text(f"SELECT COUNT(*) {OLD_FINISHED_EVENTS}"),
                {"cutoff": cutoff},
            ).scalar()
            or 0
        )
        if count and not dry_run:
            connection.execute(
                text(f"DELETE {OLD_FINISHED_EVENTS}"),
                {"cutoff": cutoff},
            )
    return RetentionResult(cutoff=cutoff, events=count, deleted=bool(count) and not dry_run)


def main(argv: List[str] | None = None) -> None:
    """Run retention once from the command line."""
    from bot import startup
    from bot.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--days", type=float, default=None, help="default: RETENTION_DAYS")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    # The endpoints file names ${ACTION_SERVER_TOKEN}, which Rasa fills from the environment only.
    startup.export_endpoint_variables(settings)
    days = args.days if args.days is not None else settings.retention_days
    result = apply_retention(tracker_engine(args.endpoints), days, dry_run=args.dry_run)
    verb = "deleted" if result.deleted else "would delete" if args.dry_run else "found"
    logger.info(
        "Retention (%s days): %s %d events of finished sessions and idle conversations",
        days,
        verb,
        result.events,
    )


if __name__ == "__main__":
    main()
