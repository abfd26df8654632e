"""The action server: rasa_sdk's app, reachable only from Rasa.

Started as `python -m bot.action_server --port 5055` (`make run`, the production profile, the
tests). Compared with `rasa run actions`:

- it listens on one interface, loopback by default (`--host`); rasa_sdk 3.6 binds all of them;
- it does not start without a strong `ACTION_SERVER_TOKEN`, `CONSENT_API_TOKEN` and
  `SUBJECT_PSEUDONYM_KEY` (bot/startup.py): every call but `/health` must carry the first as
  `Authorization: Bearer <token>` (Rasa sends it from `action_endpoint.headers` in endpoints.yml
  and endpoints.prod.yml; a header, never in a URL that a proxy might log); others get 401, so a
  page a developer visits cannot make it act either;
- the files it creates are private to its user (umask 0077);
- an action that fails is answered with a bare 500: rasa_sdk's own handler echoes the whole
  request — the conversation, health data included — back to Rasa, which may log it.
"""

from __future__ import annotations

import argparse
import hmac
import logging
from typing import List

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import startup
from bot.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings, actions: str = "actions") -> Sanic:
    """rasa_sdk's action app with the token check and a body-free error answer.

    Args:
        settings: This process's settings (`ACTION_SERVER_TOKEN`).
        actions: The package the actions are loaded from.

    Returns:
        The Sanic app, not yet running. Without a token it refuses every call but `/health`.
    """
    from rasa_sdk.endpoint import create_app as create_sdk_app

    app: Sanic = create_sdk_app(actions, cors_origins=None)
    token = settings.action_server_token
    expected = token.get_secret_value() if token else ""

    @app.on_request  # type: ignore[misc]
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path == "/health":
            return None
        header = request.headers.get("authorization") or ""
        supplied = header[7:] if header.lower().startswith("bearer ") else ""
        if expected and hmac.compare_digest(supplied.encode(), expected.encode()):
            return None
        logger.warning("Action server call refused: missing or wrong token")
        return response.json({"error": "unauthorized"}, status=401)

    async def failed(request: Request, exception: Exception) -> HTTPResponse:
        logger.error("Action failed: %s", type(exception).__name__)
        return response.json({"error": "action_failed"}, status=500)

    app.error_handler.add(Exception, failed)
    return app


def main(argv: List[str] | None = None) -> None:
    """Run the action server until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions", help="package with the actions")
    args = parser.parse_args(argv)
    startup.private_files()
    settings = get_settings()
    startup.check_tokens(settings, required=("ACTION_SERVER_TOKEN", "CONSENT_API_TOKEN"))
    startup.check_pseudonym_key(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings, args.actions)
    app.run(args.host, args.port, workers=1, access_log=False)


if __name__ == "__main__":
    main()
