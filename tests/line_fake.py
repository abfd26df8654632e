"""A local stand-in for the LINE platform, checking what we send against LINE's own OpenAPI.

`OpenApi` validates JSON against a schema of tests/specs/line-openapi/*.yml, following its
`discriminator` mappings (JSON Schema itself ignores them, so a message's type-specific schema
would otherwise never be checked). `FakeLineApi` serves the Messaging API calls the channel makes
on a loopback port and records every request (headers, body, answer) with the problems found in it.

Multicast (issue 17, the notice sender) follows LINE's retry key semantics
(https://developers.line.biz/en/docs/messaging-api/retrying-api-request/): a request whose
`X-Line-Retry-Key` was already accepted is answered 409 with the header
`x-line-accepted-request-id` and delivers nothing. Tests inject faults with `fail_multicast`
(answer 429/5xx, optionally after accepting: a lost answer) and `hold_multicast` (keep a call
waiting, e.g. to kill the sender in the middle of a send). `delivered` lists what reached whom.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
import uuid
from collections import Counter
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
# A user id as webhooks carry it ("U" and 32 hexadecimal digits).
USER_ID = re.compile(r"U[0-9a-f]{32}")
# "Specifies the UUID in hexadecimal format (e.g., 123e4567-e89b-12d3-a456-426614174000)".
RETRY_KEY = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
MULTICAST = "/v2/bot/message/multicast"
PUSH = "/v2/bot/message/push"
# The APIs that take a retry key; any other answers 400 to one.
RETRY_KEY_APIS = (PUSH, MULTICAST)
HOLD_TIMEOUT = 120.0


@functools.cache
def _parsed(path: Path) -> tuple[Dict[str, Any], Dict[str, Any]]:
    """A spec and its copy with discriminators resolved, parsed once per process (read only)."""
    spec: Dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec, OpenApi._with_discriminators(spec)


class OpenApi:
    """JSON validation against one OpenAPI 3.0 document's component schemas."""

    def __init__(self, path: Path) -> None:
        self.spec, self._resolvable = _parsed(path)

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
    # The status the fake answered with (None while the answer is still being decided).
    status: int | None = None


@dataclass
class Delivery:
    """One multicast LINE accepted: its retry key and what it delivered to whom."""

    retry_key: str
    to: List[str]
    messages: List[Dict[str, Any]]
    request_id: str


@dataclass
class Fault:
    """An answer the fake gives to multicast calls instead of accepting them normally.

    Attributes:
        status: The HTTP status answered (e.g. 429, 500).
        times: How many calls get it.
        after: How many multicast calls are answered normally first.
        accept: Accept (deliver) the call anyway and only answer `status`: the answer was lost.
        retry_after: The `Retry-After` header's seconds, if any.
    """

    status: int
    times: int = 1
    after: int = 0
    accept: bool = False
    retry_after: int | None = None


class Hold:
    """A multicast call kept waiting: `reached` is set once it arrived, `release()` answers it."""

    def __init__(self, after: int, accept: bool) -> None:
        self.after = after
        self.accept = accept
        self.reached = threading.Event()
        self._released = threading.Event()
        self.call: Call | None = None

    def release(self) -> None:
        """Let the held call be answered (to a sender that may be gone by then)."""
        self._released.set()

    def wait_released(self, timeout: float = HOLD_TIMEOUT) -> None:
        """Block the handling thread until `release()` (or `timeout`)."""
        self._released.wait(timeout)


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
        PUSH,
        MULTICAST,
        "/v2/bot/chat/loading/start",
        "/v2/bot/richmenu",
    )
    RICH_MENU_ID = "richmenu-0123456789abcdef0123456789abcdef"

    def __init__(self, access_token: str, expired_reply_tokens: frozenset = frozenset()) -> None:
        self.api = OpenApi(SPECS / "messaging-api.yml")
        self.access_token = access_token
        self.expired = expired_reply_tokens
        self.calls: List[Call] = []
        # Multicast: accepted retry keys (key -> request id), what was delivered, and faults.
        self.accepted: Dict[str, str] = {}
        self.delivered: List[Delivery] = []
        self._faults: List[Fault] = []
        self._holds: List[Hold] = []
        self._multicasts = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer, *extra = fake.handle(self.path, dict(self.headers), raw)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    for name, value in (extra[0] if extra else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the caller is gone (e.g. a sender killed mid-call)
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLineApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release_all()
        self.server.shutdown()
        self.server.server_close()

    def fail_multicast(
        self, status: int, *, times: int = 1, after: int = 0, accept: bool = False,
        retry_after: int | None = None,
    ) -> None:  # fmt: skip
        """Answer `times` multicast calls with `status`, after `after` normal ones (see `Fault`).

        `after` counts the valid multicast calls from now on whose key was not accepted yet
        (a 409 is no call LINE would fail).
        """
        with self._lock:
            fault = Fault(status, times, self._multicasts + after, accept, retry_after)
            self._faults.append(fault)

    def hold_multicast(self, *, after: int = 0, accept: bool = True) -> Hold:
        """Keep the multicast call after the next `after` ones waiting until `Hold.release()`.

        With `accept` (the default) LINE has accepted and delivered it already: a sender killed
        while it waits never learns so, and its retry with the same key must get 409.
        """
        with self._lock:
            hold = Hold(self._multicasts + after, accept)
            self._holds.append(hold)
        return hold

    def release_all(self) -> None:
        """Release every hold (nothing stays blocked when a test ends)."""
        with self._lock:
            holds, self._holds = list(self._holds), []
        for hold in holds:
            hold.release()

    def deliveries_to(self, user_id: str) -> List[Delivery]:
        """The accepted multicasts that reached `user_id`."""
        with self._lock:
            return [d for d in self.delivered if user_id in d.to]

    def _multicast(self, call: Call) -> tuple[int, Any, Dict[str, str]]:
        """Answer one valid multicast call: retry key, faults, holds, delivery."""
        key = call.headers["x-line-retry-key"].lower()
        request_id = str(uuid.uuid4())
        with self._lock:
            if key in self.accepted:
                headers = {
                    "x-line-request-id": request_id,
                    "x-line-accepted-request-id": self.accepted[key],
                }
                return 409, {"message": "The retry key is already accepted"}, headers
            number = self._multicasts  # calls with a key not accepted yet, as faults count
            self._multicasts += 1
            fault = next((f for f in self._faults if f.after <= number < f.after + f.times), None)
            hold = next((h for h in self._holds if h.after == number), None)
            if (fault is None or fault.accept) and (hold is None or hold.accept):
                self.accepted[key] = request_id
                messages = list(call.body["messages"])
                self.delivered.append(Delivery(key, list(call.body["to"]), messages, request_id))
        if hold is not None:
            hold.call = call
            hold.reached.set()
            hold.wait_released()
        headers = {"x-line-request-id": request_id}
        if fault is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            message = "Too many requests" if fault.status == 429 else "Internal server error"
            return fault.status, {"message": message}, headers
        if hold is not None and not hold.accept:
            return 500, {"message": "Internal server error"}, headers
        return 200, {}, headers

    def handle(self, path: str, headers: Dict[str, str], raw: bytes) -> tuple[Any, ...]:
        """Check one call, record it and answer: (status, JSON body[, response headers])."""
        call, answer = self._handle(path, headers, raw)
        call.status = answer[0]
        return answer

    def _handle(self, path: str, headers: Dict[str, str], raw: bytes) -> tuple[Call, tuple]:
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
            call = Call(path, lowered, None, problems)
            with self._lock:
                self.calls.append(call)
            return call, (400, {"message": "; ".join(problems)}) if problems else (200, {})
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
        if path == PUSH:
            try:
                uuid.UUID(lowered.get("x-line-retry-key", ""))
            except ValueError:
                problems.append("push without a UUID X-Line-Retry-Key")
        if path == MULTICAST:
            # LINE does not require the key; the notice sender must always send one (issue 17).
            if not RETRY_KEY.fullmatch(lowered.get("x-line-retry-key", "")):
                problems.append("multicast without a UUID X-Line-Retry-Key")
            if isinstance(body, dict) and isinstance(body.get("to"), list):
                if any(not (isinstance(u, str) and USER_ID.fullmatch(u)) for u in body["to"]):
                    problems.append("multicast to something that is not a user id")
                if len(set(map(str, body["to"]))) != len(body["to"]):
                    problems.append("multicast names a user twice")
        elif "x-line-retry-key" in lowered and path not in RETRY_KEY_APIS:
            problems.append(f"X-Line-Retry-Key on {path}, which does not take one")
        call = Call(path, lowered, body, problems)
        with self._lock:
            self.calls.append(call)
        if problems:
            return call, (400, {"message": "; ".join(problems)})
        if path == MULTICAST:
            return call, self._multicast(call)
        if path == "/v2/bot/message/reply" and body.get("replyToken") in self.expired:
            return call, (400, {"message": "Invalid reply token"})
        if path == "/v2/bot/chat/loading/start":
            return call, (202, {})
        if path == "/v2/bot/richmenu":
            return call, (200, {"richMenuId": self.RICH_MENU_ID})
        sent = {"sentMessages": [{"id": str(i)} for i, _ in enumerate(body["messages"])]}
        return call, (200, sent)

    def sent(self, path: str | None = None) -> List[Call]:
        """The recorded calls (to one path)."""
        with self._lock:
            return [c for c in self.calls if path is None or c.path == path]


def multicast_counts(deliveries: List[Delivery]) -> Counter:
    """How many accepted multicasts reached each user id."""
    return Counter(user for delivery in deliveries for user in delivery.to)
