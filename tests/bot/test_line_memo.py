"""The consultation memo on LINE (issue 18): a Flex message LINE's OpenAPI accepts, and its link."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict

import pytest
import yaml

from actions.memo import build_memo
from actions.offer_facts import offer_facts
from bot.channels.line import LineInput
from bot.channels.line_messages import memo_flex, to_line_messages
from bot.settings import Settings
from bot.shared_state import MemoryState
from bot.webchat.memo import TOKEN, kept_memo, memo_store
from tests.actions.test_consent_notice import LEVEL2
from tests.conftest import PROJECT_ROOT
from tests.line_fake import SPECS, OpenApi, documented_limit_problems

URL = "https://chat.example.test/webhooks/socketio/memo/" + "A" * 43


@pytest.fixture(scope="module")
def messaging_api() -> OpenApi:
    return OpenApi(SPECS / "messaging-api.yml")


@pytest.fixture(scope="module")
def memo() -> Dict[str, Any]:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return build_memo(domain, offer_facts(domain, LEVEL2, "2026-11-30"), dt.date(2026, 12, 1))


@pytest.mark.parametrize("url", [URL, None])
def test_the_flex_memo_is_a_valid_reply(messaging_api: OpenApi, memo, url) -> None:
    answers = [
        {"text": "相談メモを作りました。"},
        {"custom": {"doctor_memo": memo, **({"doctor_memo_url": url} if url else {})}},
        {
            "text": "どうするか選べます。",
            "buttons": [{"title": "このまま進める", "payload": "/affirm"}],
        },
    ]
    [batch] = to_line_messages(answers)
    [flex] = [m for m in batch if m["type"] == "flex"]
    body = {"replyToken": "t", "messages": batch}
    assert messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/reply")) == []
    assert documented_limit_problems(body) == []
    assert messaging_api.component_errors(flex, "FlexMessage") == []
    shown = str(flex["contents"]["body"])
    for section in memo["sections"]:
        assert section["heading"] in shown and all(line in shown for line in section["lines"])
    assert memo["terms"] in shown and memo["date"] in shown
    footer = flex["contents"].get("footer")
    assert (footer["contents"][0]["action"]["uri"] == url) if url else footer is None
    assert batch[-1].get("quickReply")


def test_a_link_that_is_not_http_is_left_out(memo) -> None:
    assert "footer" not in memo_flex(memo, "javascript:alert(1)")["contents"]


async def test_the_line_channel_keeps_the_memo_and_links_the_web_page(memo) -> None:
    settings = Settings(
        _env_file=None,
        subject_pseudonym_key="k",
        redis_url="",
        webchat_allowed_origins="https://chat.example.test",
        memo_ttl_seconds=60,
    )
    channel = LineInput(settings)
    state = MemoryState()
    channel._state = state  # type: ignore[attr-defined]
    [message] = await channel._memo_links([{"custom": {"doctor_memo": dict(memo)}}])
    url = message["custom"]["doctor_memo_url"]
    prefix = "https://chat.example.test/webhooks/socketio/memo/"
    assert url.startswith(prefix) and TOKEN.fullmatch(url.removeprefix(prefix))
    # Without Redis the memo is kept for the whole process, where the web chat's page finds it.
    kept = await kept_memo(memo_store(MemoryState(), ""), url.removeprefix(prefix))
    assert kept == memo
