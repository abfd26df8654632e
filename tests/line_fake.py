"""A local stand-in for the LINE platform, checking what we send against LINE's own OpenAPI.

`OpenApi` validates JSON against a schema of tests/specs/line-openapi/*.yml, following its
`discriminator` mappings (JSON Schema itself ignores them, so a message's type-specific schema
would otherwise never be checked). `FakeLineApi` serves the Messaging API calls the channel makes
on a loopback port and records every request with the problems found in it.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import yaml

# LINE's OpenAPI files, vendored with their licence and upstream commit (see README.md there).
SPECS = Path(__file__).resolve().parent / "specs" / "line-openapi"
# Limits from LINE's documentation that its OpenAPI description does not state.
MAX_TEXT = 5000
MAX_LABEL = 20


class OpenApi:
    """JSON validation against one OpenAPI 3.0 document's component schemas."""

    def __init__(self, path: Path) -> None:
        self.spec: Dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        self._resolvable = self._with_discriminators(self.spec)

    @staticmethod
    def _with_discriminators(spec: Dict[str, Any]) -> Dict[str, Any]:
        spec = copy.deepcopy(spec)
        schemas = spec["components"]["schemas"]
        for name, schema in list(schemas.items()):
            discriminator = schema.get("discriminator") or {}
            mapping = discriminator.get("mapping")
            if not mapping:
                continue
            base_name = f"{name}__base"
            base = {k: v for k, v in schema.items() if k != "discriminator"}
            schemas[base_name] = base
            own_ref = f"#/components/schemas/{name}"
            for target in mapping.values():
                sub = schemas[target.rsplit("/", 1)[1]]
                for part in sub.get("allOf", []):
                    if part.get("$ref") == own_ref:
                        part["$ref"] = f"#/components/schemas/{base_name}"
            prop = discriminator["propertyName"]
            schemas[name] = {
                "allOf": [
                    {"$ref": f"#/components/schemas/{base_name}"},
                    {"properties": {prop: {"enum": list(mapping)}}},
                    *[
                        {
                            "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                            "then": {"$ref": target},
                        }
                        for value, target in mapping.items()
                    ],
                ]
            }
        return spec

    def request_schema(self, path: str, method: str = "post") -> Dict[str, Any]:
        """The JSON schema of an operation's request body."""
        operation = self.spec["paths"][path][method]
        return dict(operation["requestBody"]["content"]["application/json"]["schema"])

    def errors(self, instance: Any, schema: Dict[str, Any]) -> List[str]:
        """Every way `instance` breaks `schema` (empty when it conforms)."""
        resolver = jsonschema.RefResolver(base_uri="", referrer=self._resolvable)
        validator = jsonschema.Draft7Validator(schema, resolver=resolver)
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]

    def component_errors(self, instance: Any, name: str) -> List[str]:
        """Validate against `#/components/schemas/<name>`."""
        return self.errors(instance, {"$ref": f"#/components/schemas/{name}"})


@dataclass
class Call:
    """One request the fake received."""

    path: str
    headers: Dict[str, str]
    body: Any
    problems: List[str] = field(default_factory=list)


def documented_limit_problems(body: Dict[str, Any]) -> List[str]:
    """Checks of LINE's documented limits on messages that the OpenAPI does not encode."""
    problems = []
    for message in body.get("messages", []) if isinstance(body, dict) else []:
        if message.get("type") == "text" and len(message.get("text", "")) > MAX_TEXT:
            problems.append("text longer than 5000 characters")
        for item in (message.get("quickReply") or {}).get("items", []):
            if len(item.get("action", {}).get("label", "")) > MAX_LABEL:
                problems.append("quick reply label longer than 20 characters")
    return problems


class FakeLineApi:
    """The Messaging API endpoints the channel uses, on 127.0.0.1, recording every call."""

    ROUTES = (
        "/v2/bot/message/reply",
        "/v2/bot/message/push",
        "/v2/bot/chat/loading/start",
        "/v2/bot/richmenu",
    )
    RICH_MENU_ID = "richmenu-0123456789abcdef0123456789abcdef"

    def __init__(self, access_token: str, expired_reply_tokens: frozenset = frozenset()) -> None:
        self.api = OpenApi(SPECS / "messaging-api.yml")
        self.access_token = access_token
        self.expired = expired_reply_tokens
        self.calls: List[Call] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = fake.handle(self.path, dict(self.headers), raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLineApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers: Dict[str, str], raw: bytes) -> tuple[int, Any]:
        problems: List[str] = []
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("authorization") != f"Bearer {self.access_token}":
            problems.append("missing or wrong Authorization")
        if path in (
            f"/v2/bot/richmenu/{self.RICH_MENU_ID}/content",
            f"/v2/bot/user/all/richmenu/{self.RICH_MENU_ID}",
        ):
            if path.endswith("/content") and (
                lowered.get("content-type") != "image/png" or not raw.startswith(b"\x89PNG")
            ):
                problems.append("rich menu image is not a PNG")
            with self._lock:
                self.calls.append(Call(path, lowered, None, problems))
            return (400, {"message": "; ".join(problems)}) if problems else (200, {})
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
            problems.append("body is not JSON")
        if path not in self.ROUTES:
            problems.append(f"unexpected path {path}")
        elif body is not None:
            problems += self.api.errors(body, self.api.request_schema(path))
            problems += documented_limit_problems(body)
        if path == "/v2/bot/message/push":
            try:
                uuid.UUID(lowered.get("x-line-retry-key", ""))
            except ValueError:
                problems.append("push without a UUID X-Line-Retry-Key")
        with self._lock:
            self.calls.append(Call(path, lowered, body, problems))
        if problems:
            return 400, {"message": "; ".join(problems)}
        if path == "/v2/bot/message/reply" and body.get("replyToken") in self.expired:
            return 400, {"message": "Invalid reply token"}
        if path == "/v2/bot/chat/loading/start":
            return 202, {}
        if path == "/v2/bot/richmenu":
            return 200, {"richMenuId": self.RICH_MENU_ID}
        return 200, {"sentMessages": [{"id": str(i)} for i, _ in enumerate(body["messages"])]}

    def sent(self, path: str | None = None) -> List[Call]:
        """The recorded calls (to one path)."""
        with self._lock:
            return [c for c in self.calls if path is None or c.path == path]
