"""The production profile (scripts/prod.py) under faults, driven the way LINE drives it.

Each module gets its own stack on free ports: two Rasa replicas and two action servers behind
nginx, the tracker store and the consent database on throw-away PostgreSQL databases (the tracker
store through a throw-away role with a password), a throw-away Redis requiring a password
(`redis-server --requirepass`: the password must really reach the lock store and the channels'
shared state), and a local LINE platform (tests/line_fake.py) that checks every call against
LINE's OpenAPI description. `LinePlatform` delivers signed webhooks through nginx as LINE does
with redelivery on: an unanswered or failed delivery is sent again (same `webhookEventId`,
`isRedelivery: true`).

Needs PostgreSQL, redis-server, nginx and a trained model: with CI=true all are mandatory;
elsewhere a missing one skips these tests with a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from scripts import harness
from scripts.prod import ROOT, Ports, ProdStack
from tests.line_fake import FakeLineApi

LINE_SECRET = "reliability-line-secret"
LINE_TOKEN = "reliability-line-token"
# At least 43 varied characters: the servers refuse weaker keys (bot/startup.py).
PSEUDONYM_KEY = "reliability-pseudonym-key-0123456789abcdefghijk"
CONSENT_TOKEN = "reliability-consent-token-" + "0" * 32  # 32 bytes, as the service demands
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MODEL = ROOT / "models" / "assistant.tar.gz"
ANSWER_SECONDS = 60.0
RECORDED = "同意を記録しました"
# The apology of a consent service that stayed out of reach through the client's retries
# (domain.yml, utter_consent_service_unavailable and its kin): a resident tries again.
UNREACHABLE = "いまシステムにつながらず"
VITALS = '/give_consent{"offer_id": "city_health_vitals"}'
WEB_ORIGIN = "https://chat.example.test"  # the city's page (production refuses local origins)


_reachable = harness.port_open


def require_services() -> None:
    """Fail (CI) or skip (elsewhere) when a part the profile needs is missing."""
    missing = []
    if not _reachable("127.0.0.1", 5432):
        missing.append("PostgreSQL on 127.0.0.1:5432")
    if shutil.which("redis-server") is None:
        missing.append("redis-server (Debian package redis-server)")
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        missing.append("nginx (make nginx-deps)")
    if not MODEL.exists():
        missing.append("a trained model (make model)")
    if not RABBITMQ_SERVER.exists():
        missing.append("rabbitmq-server (Debian package rabbitmq-server)")
    if missing:
        message = "the production profile needs " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + "; `make test-reliability` installs and starts what it can")


@dataclass
class Answer:
    """What the assistant sent LINE for one event."""

    texts: List[str] = field(default_factory=list)
    postbacks: List[str] = field(default_factory=list)  # the buttons' payloads
    # payload -> the postback data LINE sends back (signed for the resident)
    data: Dict[str, str] = field(default_factory=dict)


class LinePlatform:
    """Plays LINE: signed webhooks through nginx, redelivered until acknowledged."""

    def __init__(self, url: str, fake: FakeLineApi) -> None:
        """Deliver to `url` (nginx); answers are read from `fake`."""
        self.url, self.fake = url, fake

    @staticmethod
    def event(user: str, **fields: Any) -> Dict[str, Any]:
        """A LINE event from `user` (a message or a postback)."""
        return {
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": user},
            "webhookEventId": uuid.uuid4().hex.upper()[:26],
            "deliveryContext": {"isRedelivery": False},
            "replyToken": uuid.uuid4().hex,
            **fields,
        }

    def text_event(self, user: str, message: str) -> Dict[str, Any]:
        """A typed text message."""
        body = {
            "type": "text",
            "id": str(uuid.uuid4().int)[:18],
            "text": message,
            "quoteToken": "q",
        }
        return self.event(user, type="message", message=body)

    def postback_event(self, user: str, data: str) -> Dict[str, Any]:
        """A press of one of the assistant's buttons."""
        return self.event(user, type="postback", postback={"data": data})

    def deliver(self, events: List[Dict[str, Any]], attempts: int = 90) -> int:
        """POST the events until a 2xx comes back; return the number of attempts."""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                for event in events:
                    event["deliveryContext"] = {"isRedelivery": True}
            body = json.dumps({"destination": "U" + "0" * 32, "events": events},
                              ensure_ascii=False).encode()  # fmt: skip
            signature = base64.b64encode(
                hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()
            ).decode()
            try:
                response = requests.post(
                    f"{self.url}/webhooks/line/webhook",
                    data=body,
                    headers={"Content-Type": "application/json", "X-Line-Signature": signature},
                    timeout=70,
                )
                if response.status_code < 300:
                    return attempt
                assert response.status_code >= 500, response.text  # 4xx: our request is wrong
            except requests.RequestException:
                pass
            time.sleep(1.0)
        raise AssertionError(f"not acknowledged after {attempts} deliveries")

    @staticmethod
    def _answer(body: Dict[str, Any]) -> Answer:
        answer = Answer()
        for message in body.get("messages", []):
            answer.texts.append(message.get("text", ""))
            for item in (message.get("quickReply") or {}).get("items", []):
                data = item["action"].get("data", "")
                payload = data.rpartition("#")[0] or data
                answer.postbacks.append(payload)
                answer.data[payload] = data
        return answer

    def wait_answer(self, event: Dict[str, Any], user_pushes_before: int) -> Answer:
        """Wait for the answer to `event`: its reply, or the next push to its user."""
        user = event["source"]["userId"]
        deadline = time.monotonic() + ANSWER_SECONDS
        while time.monotonic() < deadline:
            replies = [
                c for c in self.fake.sent("/v2/bot/message/reply")
                if (c.body or {}).get("replyToken") == event["replyToken"]
            ]  # fmt: skip
            pushes = self.pushes_to(user)
            if replies:
                return self._answer(replies[0].body)
            if len(pushes) > user_pushes_before:
                return self._answer(pushes[user_pushes_before].body)
            time.sleep(0.1)
        raise AssertionError(f"no answer within {ANSWER_SECONDS:.0f} s")

    def pushes_to(self, user: str) -> List[Any]:
        """Push calls to `user`, oldest first."""
        return [
            c for c in self.fake.sent("/v2/bot/message/push") if (c.body or {}).get("to") == user
        ]

    def replies_for(self, reply_token: str) -> int:
        """How many replies used `reply_token`."""
        return sum(
            1 for c in self.fake.sent("/v2/bot/message/reply")
            if (c.body or {}).get("replyToken") == reply_token
        )  # fmt: skip


class Resident:
    """One simulated resident on LINE."""

    def __init__(self, platform: LinePlatform) -> None:
        """A new LINE user."""
        self.platform = platform
        self.user = "U" + uuid.uuid4().hex
        self.turns = 0
        self.buttons: Dict[str, str] = {}  # of the latest answer: payload -> postback data

    def _send(self, event: Dict[str, Any]) -> Answer:
        before = len(self.platform.pushes_to(self.user))
        self.platform.deliver([event])
        self.turns += 1
        answer = self.platform.wait_answer(event, before)
        self.buttons = answer.data
        return answer

    def say(self, message: str) -> Answer:
        """Type a message; return the assistant's answer."""
        return self._send(self.platform.text_event(self.user, message))

    def press(self, data: str) -> Answer:
        """Press the latest answer's button of payload `data` (else send `data` as it is)."""
        return self._send(self.platform.postback_event(self.user, self.buttons.get(data, data)))

    def until_reachable(self, step: Callable[[], Answer], tries: int = 10) -> Answer:
        """Take `step` again, a second apart, while the answer is the service's apology.

        A resident told "いまシステムにつながらず…少し時間をおいて" does as told; each apology is
        still an answer, so nothing the resident typed went unanswered.
        """
        answer = step()
        for _ in range(tries):
            if not any(UNREACHABLE in t for t in answer.texts):
                return answer
            time.sleep(1)
            answer = step()
        return answer

    def up_to_read_back(self) -> None:
        """Ask to consent, choose the level-1 offer and reach the read-back question."""
        offers = self.until_reachable(lambda: self.say("同意の手続きをしたいです"))
        assert VITALS in offers.postbacks, offers
        explained = self.until_reachable(lambda: self.press(VITALS))
        assert any("この内容で同意を記録してよろしいですか" in t for t in explained.texts), (
            explained
        )


@dataclass
class Stack:
    """The running production profile and what it talks to."""

    stack: ProdStack
    line: LinePlatform
    consent_db_url: str
    rasa_db_url: str = ""
    rabbitmq: ThrowAwayRabbitMQ | None = None

    def consents(self) -> Dict[str, int]:
        """Active consents per subject in the consent database."""
        engine = create_engine(self.consent_db_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT subject_id, COUNT(*) FROM consents GROUP BY subject_id")
                ).all()
            return {str(subject): int(count) for subject, count in rows}
        finally:
            engine.dispose()


@contextmanager
def redis_with_password(folder: Path) -> Iterator[Dict[str, str]]:
    """A throw-away Redis on a free port that refuses clients without its password."""
    port = harness.free_port()
    password = secrets.token_urlsafe(24)
    process = harness.run_ready(harness.Spec(
        "redis-server",
        [str(shutil.which("redis-server")), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", str(folder)],
        folder / "redis.log", truncate_log=True, ready=harness.PortReady(port), timeout=30,
    ))  # fmt: skip
    try:
        yield {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_PASSWORD": password}
    finally:
        process.stop()


RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # Debian's, without its `su`


class ThrowAwayRabbitMQ:
    """A RabbitMQ node of its own (port, data folder), which a test may kill and start again.

    The machine's RabbitMQ is a service the tests must not stop, so the production profile's
    tests get a node of their own: the event broker of the replicas and the consumer's source.
    Its data folder survives a kill (durable queues and persistent messages come back).
    """

    def __init__(self, folder: Path) -> None:
        """Choose the ports and the folders (the log in `folder`); nothing starts yet."""
        self.folder = folder
        self.port, dist = (harness.free_port() for _ in range(2))
        self.folder.mkdir(parents=True, exist_ok=True)
        # The node's data: a folder of its own that its user can reach (pytest's are private).
        self.data = Path(tempfile.mkdtemp(prefix="reliability-rabbitmq-"))
        folder = self.data
        (folder / "enabled_plugins").write_text("[].")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"rel{uuid.uuid4().hex[:10]}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(folder),
            "RABBITMQ_MNESIA_DIR": str(folder / "db"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(folder / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(folder / "plugins"),
            "RABBITMQ_LOG_BASE": str(folder),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(folder / "none"),
        }
        self.as_root = os.geteuid() == 0  # Debian's node then runs as its `rabbitmq` user
        if self.as_root:
            shutil.chown(folder, "rabbitmq", "rabbitmq")  # its parent, /tmp, is reachable
            self.env["HOME"] = "/var/lib/rabbitmq"  # its Erlang cookie
        self.process: harness.Process | None = None

    @property
    def settings(self) -> Dict[str, str]:
        """RABBITMQ_URL and RABBITMQ_PORT (default vhost; guest/guest on loopback)."""
        return {"RABBITMQ_URL": "amqp://127.0.0.1/%2F", "RABBITMQ_PORT": str(self.port)}

    def start(self) -> None:
        """Start the node and wait for its AMQP port."""
        user = "rabbitmq" if self.as_root else None
        self.process = harness.run_ready(harness.Spec(
            "RabbitMQ", [str(RABBITMQ_SERVER)], self.folder / "node.log", env=self.env,
            ready=harness.PortReady(self.port), timeout=120, user=user, group=user,
        ))  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the node and everything it started (its own process group)."""
        if self.process is not None:
            self.process.kill(signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        """Stop the node (killed: nothing of it is kept) and delete its data."""
        self.kill()
        shutil.rmtree(self.data, ignore_errors=True)


@contextmanager
def rabbitmq_node(folder: Path) -> Iterator[ThrowAwayRabbitMQ]:
    """A started ThrowAwayRabbitMQ, stopped afterwards."""
    node = ThrowAwayRabbitMQ(folder)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    suffix = uuid.uuid4().hex[:10]
    rasa_db, consent_db = f"rel_rasa_{suffix}", f"rel_consent_{suffix}"
    # The tracker store's own role, with a password (the profile refuses an empty one).
    rasa_role, rasa_password = f"rel_rasa_role_{suffix}", secrets.token_urlsafe(24)
    # pre-ping: a module restarts PostgreSQL, which closes the pooled connection
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE \"{rasa_role}\" LOGIN PASSWORD '{rasa_password}'"))
    try:
        with (
            redis_with_password(tmp_path_factory.mktemp("redis")) as redis,
            rabbitmq_node(tmp_path_factory.mktemp("rabbitmq")) as rabbitmq,
            FakeLineApi(LINE_TOKEN) as fake,
        ):
            env = {
                **os.environ,
                **redis,
                **rabbitmq.settings,
                "RASA_DB_USER": rasa_role,
                "RASA_DB_PASSWORD": rasa_password,
                "CONSENT_API_TOKEN": CONSENT_TOKEN,
                "STAFF_TOTP_KEY": secrets.token_urlsafe(32),
                "SUBJECT_PSEUDONYM_KEY": PSEUDONYM_KEY,
                "CONSENT_AUDIT_KEY": secrets.token_urlsafe(32),
                "LINE_CHANNEL_SECRET": LINE_SECRET,
                "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
                "LINE_API_BASE_URL": fake.url,
                "LINE_API_DATA_BASE_URL": fake.url,
                "REDIS_KEY_PREFIX": f"rel-{suffix}",
                "LINE_EVENT_CLAIM_SECONDS": "5",
                "WEBCHAT_ALLOWED_ORIGINS": WEB_ORIGIN,
                "CONSENT_API_READ_TIMEOUT": "3",
                "CITY_CONTACT_NAME": "テスト用の窓口",
                "CITY_CONTACT_PHONE": "0000-00-0000",
                "CITY_CONTACT_HOURS": "平日",
            }
            env.pop("REDIS_URL", None)  # built by the profile from the throw-away Redis
            stack = ProdStack(
                Ports.free(), tmp_path_factory.mktemp("prod"), env, MODEL, rasa_db, consent_db
            )
            try:
                stack.start()
                yield Stack(
                    stack,
                    LinePlatform(stack.public_url, fake),
                    f"postgresql://postgres@127.0.0.1:5432/{consent_db}",
                    f"postgresql://postgres@127.0.0.1:5432/{rasa_db}",
                    rabbitmq,
                )
            finally:
                stack.stop()
    finally:
        roles = [rasa_role, *(f"{consent_db}_{kind}" for kind in ("owner", "app", "ro"))]
        for attempt in range(5):  # PostgreSQL may be restarting (another test's fault drill)
            try:
                with admin.connect() as connection:
                    for name in (rasa_db, consent_db):
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    for role in roles:  # ours and the consent database's (scripts/prod.py)
                        connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
                break
            except OperationalError:
                if attempt == 4:
                    raise
                time.sleep(3)
        admin.dispose()


def wait_until(condition: Any, seconds: float = 60.0) -> None:
    """Poll `condition()` until true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    """Whether `url` answers 2xx now."""
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
