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
3. **Nothing open by default** (`prepare`, before Rasa parses its command line): `run` and
   `shell` need a strong `ACTION_SERVER_TOKEN` (exported for `${ACTION_SERVER_TOKEN}` in the
   endpoints files, also when it comes from `.env`); `--enable-api` needs a strong
   `RASA_API_TOKEN` (or `--auth-token`), added to Rasa's arguments inside this process so that it
   never shows in a process list — Rasa's HTTP API then refuses requests without it (401), and a
   page a developer visits cannot drive it. Request bodies over `RASA_REQUEST_MAX_BYTES` (1 MiB)
   get 413 (Sanic's `REQUEST_MAX_SIZE`, 100 MB by default). Files are created private (umask 0077).
   Rasa's telemetry (usage events and error reports to Rasa's servers) is off.
4. **A session always starts.** `action_session_start` is a custom action (actions/session.py:
   it shows the web chat's unseen notices). When Rasa cannot run it — the action server down,
   slow or refusing — Rasa 3.6 logs the error and keeps no event of it: no `session_started`,
   no `action_listen`, so the resident's first message is predicted from a broken history and
   answered with the fallback. Here that case starts the session as Rasa's own default action
   does (slots carried over, `action_listen`); the notices wait for the next session.
5. **No silence when the action servers are down.** Any other custom action Rasa cannot run
   (action servers down, restarting, or answering with an error) was a turn with no answer at
   all: Rasa logs the error and says nothing. Here the resident is told, politely, that the
   system cannot be reached and to try again a little later (`utter_action_server_unreachable`
   in the domain); the turn's action events are lost as before (nothing is claimed done).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from typing import Any, Awaitable, Callable, Dict, List, TypeVar

from bot import startup
from bot.settings import Settings, get_settings

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


class SessionStartWithFallback:
    """`action_session_start` run on the action server, or as Rasa's default when that fails.

    Wraps the `RemoteAction` Rasa builds for the custom action and has its name, so Rasa logs it
    as usual; Rasa's default `ActionSessionStart` is the fallback.
    """

    def __init__(self, remote: Any) -> None:
        """Wrap `remote`, the action Rasa would run for `action_session_start`."""
        from rasa.core.actions.action import ActionSessionStart

        self._remote = remote
        self._default = ActionSessionStart()

    def name(self) -> str:
        """Return `action_session_start`."""
        return str(self._remote.name())

    def __getattr__(self, attribute: str) -> Any:
        """Everything else (e.g. `event_for_successful_execution`) as the wrapped action."""
        return getattr(self._remote, attribute)

    async def run(self, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        """Run the custom session start; if it fails, start the session as Rasa's default."""
        try:
            events: List[Any] = await self._remote.run(output_channel, nlg, tracker, domain)
            return events
        except Exception as error:  # any failure: the session must start
            logger.warning(
                "action_session_start failed on the action server (%s): the session starts "
                "as Rasa's default does, without the unseen notices",
                type(error).__name__,
            )
            default_events: List[Any] = await self._default.run(
                output_channel, nlg, tracker, domain
            )
            return default_events


UNREACHABLE_RESPONSE = "utter_action_server_unreachable"


def _run_or_apologise(original: Callable[..., Awaitable[List[Any]]]) -> Any:
    """Wrap `RemoteAction.run`: a custom action that cannot run says the apology instead."""

    @functools.wraps(original)
    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        from rasa.core.actions.action import ActionExecutionRejection, create_bot_utterance
        from rasa.shared.core.constants import ACTION_SESSION_START_NAME

        try:
            return await original(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # a rejection is an answer of the action server (Rasa handles it)
        except Exception as error:
            if self.name() == ACTION_SESSION_START_NAME:
                raise  # SessionStartWithFallback starts the session as Rasa's default does
            message = (
                await nlg.generate(UNREACHABLE_RESPONSE, tracker, output_channel.name())
                if UNREACHABLE_RESPONSE in domain.responses
                else None
            )
            if not message:
                raise
            logger.warning(
                "Custom action %s failed (%s): the resident is asked to try again later",
                self.name(),
                type(error).__name__,
            )
            return [create_bot_utterance({**message, "utter_action": UNREACHABLE_RESPONSE})]

    return run


def _session_start_with_fallback(original: Callable[..., Any]) -> Any:
    """Wrap Rasa's action lookup so a custom `action_session_start` has the default as fallback."""
    from rasa.shared.core.constants import ACTION_SESSION_START_NAME

    @functools.wraps(original)
    def action_for_name_or_text(action_name_or_text: str, domain: Any, endpoint: Any) -> Any:
        from rasa.core.actions.action import ActionSessionStart

        action = original(action_name_or_text, domain, endpoint)
        if action_name_or_text == ACTION_SESSION_START_NAME and not isinstance(
            action, (ActionSessionStart, SessionStartWithFallback)
        ):
            return SessionStartWithFallback(action)
        return action

    return action_for_name_or_text


def install() -> None:
    """Apply the run-time fixes to Rasa (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    import rasa.core.actions.action as actions
    import rasa.core.tracker_store as tracker_store
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = validate_action_result
    RemoteAction.run = _run_or_apologise(RemoteAction.run)
    # The processor looks actions up through the module (`rasa.core.actions.action.…`).
    actions.action_for_name_or_text = _session_start_with_fallback(actions.action_for_name_or_text)
    failsafe = tracker_store.FailSafeTrackerStore
    failsafe.retrieve = _retrieve
    failsafe.retrieve_full_tracker = _retrieve_full_tracker
    failsafe.save = _save
    tracker_store.create_engine_kwargs = _engine_kwargs_with_pre_ping(
        tracker_store.create_engine_kwargs
    )
    _INSTALLED = True


def _explicit_auth_token(argv: List[str]) -> str | None:
    """The value of `--auth-token` / `-t` on Rasa's command line, if given."""
    for index, argument in enumerate(argv):
        if argument in ("--auth-token", "-t"):
            return argv[index + 1] if index + 1 < len(argv) else ""
        if argument.startswith("--auth-token="):
            return argument.split("=", 1)[1]
    return None


def prepare(argv: List[str], settings: Settings) -> List[str]:
    """Check Rasa's command line against the settings and complete it; set the environment.

    Args:
        argv: Rasa's arguments without the program name (`run --enable-api ...`).
        settings: This process's settings.

    Returns:
        The arguments to give Rasa: with `--auth-token` from `RASA_API_TOKEN` when the API is on.

    Raises:
        SystemExit: With a one-line message, for a missing or weak token.
    """
    startup.private_files()
    os.environ["SANIC_REQUEST_MAX_SIZE"] = str(settings.rasa_request_max_bytes)
    # Rasa's telemetry sends usage events and error messages (which may quote a conversation) to
    # Rasa's servers unless told not to; nothing of this service leaves it that way.
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    command = argv[0] if argv else ""
    if command not in ("run", "shell") or "-h" in argv or "--help" in argv:
        return list(argv)
    startup.check_tokens(settings, required=("ACTION_SERVER_TOKEN",))
    if command == "run":  # the channels key LINE ids and signed payloads with it
        startup.check_pseudonym_key(settings)
    startup.export_endpoint_variables(settings)
    if "--enable-api" not in argv:
        return list(argv)
    explicit = _explicit_auth_token(argv)
    if explicit is not None:
        problem = startup.token_problem("--auth-token", explicit, required=True)
        if problem:
            raise SystemExit(problem)
        return list(argv)
    configured = settings.rasa_api_token
    problem = startup.token_problem(
        "RASA_API_TOKEN",
        configured.get_secret_value() if configured else None,
        required=True,
    )
    if problem or configured is None:
        raise SystemExit(f"Rasa's HTTP API (--enable-api) stays closed: {problem}")
    # One argument: a token beginning with "-" (1 in 64 of token_urlsafe) is not an option.
    return [*argv, f"--auth-token={configured.get_secret_value()}"]


def main() -> None:
    """Run Rasa's command line (`rasa run ...`) with the checks done and the fixes installed."""
    sys.argv = [sys.argv[0], *prepare(sys.argv[1:], get_settings())]
    install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
