"""The assistant's Rasa server: Rasa's own command line with run-time fixes applied first.

Started as `python -m bot.server run ...` (same arguments as `rasa run`) by `make run`, the
production profile, the e2e tests and the benchmark.

1. **Action answers validated with a prebuilt validator.** Rasa 3.6 checks every custom action's
   answer with `jsonschema.validate`, which first validates Rasa's response *schema* against JSON
   Schema's meta-schema, every time: tens of milliseconds of CPU per custom action call on a
   small machine, paid by every consent turn (cProfile; docs/benchmarks.md). Here the schema is
   checked once and the validator reused: same verdicts, same error messages.
2. **No silent amnesia when the database blips.** Rasa wraps the tracker store in
   `FailSafeTrackerStore`, which on a database error answers "no such conversation" and saves
   to memory instead: a resident in the middle of a consent would be greeted as a stranger and
   the conversation's next session written over it. Here a failing tracker store is retried
   (about 8 s in all, enough for a PostgreSQL restart or fail-over) and then the message fails
   — the channel does not acknowledge it, and LINE or the resident sends it again. SQL
   connections are also checked before use (`pool_pre_ping`), so a restarted database costs no
   failed request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Awaitable, Callable, Dict, TypeVar

logger = logging.getLogger(__name__)

_INSTALLED = False
# Waits between attempts of a failing tracker store operation (then the message fails).
TRACKER_STORE_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    """A validator for Rasa's custom-action response format, its schema checked once."""
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """`RemoteAction._validate_action_result` with the validator built once.

    Args:
        self: The remote action whose answer is checked.
        result: The action server's answer.

    Returns:
        True when the answer is valid.

    Raises:
        jsonschema.ValidationError: The answer does not follow Rasa's format (as Rasa raises it).
    """
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_action_response_validator().iter_errors(result))
    if error is not None:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


async def durably(operation: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a tracker store operation, retrying while the database is unavailable.

    Args:
        operation: The primary tracker store's coroutine method.
        *args: Its arguments.

    Returns:
        What the operation returns.

    Raises:
        Exception: The operation's last error, once the retries are used up.
    """
    for delay in TRACKER_STORE_RETRY_DELAYS:
        try:
            return await operation(*args)
        except Exception as error:
            logger.warning(
                "Tracker store unavailable (%s); trying again in %.1f s",
                type(error).__name__,
                delay,
            )
            await asyncio.sleep(delay)
    try:
        return await operation(*args)
    except Exception as error:
        logger.error("Tracker store unavailable; the message fails: %s", type(error).__name__)
        raise


async def _retrieve(self: Any, sender_id: str) -> Any | None:
    return await durably(self._tracker_store.retrieve, sender_id)


async def _retrieve_full_tracker(self: Any, sender_id: str) -> Any | None:
    return await durably(self._tracker_store.retrieve_full_tracker, sender_id)


async def _save(self: Any, tracker: Any) -> None:
    await durably(self._tracker_store.save, tracker)


def _engine_kwargs_with_pre_ping(original: Callable[[Any], Dict[str, Any]]) -> Any:
    @functools.wraps(original)
    def engine_kwargs(url: Any) -> Dict[str, Any]:
        return {**original(url), "pool_pre_ping": True}

    return engine_kwargs


def install() -> None:
    """Apply the run-time fixes to Rasa (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    import rasa.core.tracker_store as tracker_store
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = validate_action_result
    failsafe = tracker_store.FailSafeTrackerStore
    failsafe.retrieve = _retrieve
    failsafe.retrieve_full_tracker = _retrieve_full_tracker
    failsafe.save = _save
    tracker_store.create_engine_kwargs = _engine_kwargs_with_pre_ping(
        tracker_store.create_engine_kwargs
    )
    _INSTALLED = True


def main() -> None:
    """Run Rasa's command line (`rasa run ...`) with the fixes installed."""
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
