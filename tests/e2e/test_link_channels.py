"""Linking the web chat and LINE end to end (issue #14): a consent given in the web chat (a real
browser) is listed on LINE after the resident types, on LINE, the one-time code the web chat
showed; both chats then list the same consents. A wrong, an expired and a reused code link
nothing (checked in the consent service itself); unlinking from LINE separates them again."""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from typing import Any, Dict, List

import pytest
import requests

from tests.e2e.conftest import CONSENT_TOKEN, PSEUDONYM_KEY, Assistant
from tests.e2e.test_line import REPLY, body_of, calls_for, post, reply_texts, sign, text_event
from tests.e2e.test_line import user_id as line_user_id
from tests.e2e.test_receipt_codes import consent_in_the_browser, type_message
from tests.line_fake import SPECS, FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e
LINK_CODE = re.compile(r"連携コードは ([0-9]{4}-[0-9]{4}) です")
AUTH = {"Authorization": f"Bearer {CONSENT_TOKEN}"}


def subject(channel: str, sender: str) -> str:
    return hmac.new(
        PSEUDONYM_KEY.encode(), f"{channel}:{sender}".encode(), hashlib.sha256
    ).hexdigest()


def service(assistant: Assistant, path: str) -> Any:
    response = requests.get(f"{assistant.consent.url}/v1{path}", headers=AUTH, timeout=10)
    response.raise_for_status()
    return response.json()


def consents_of(assistant: Assistant, who: str) -> List[Dict[str, Any]]:
    return list(service(assistant, f"/subjects/{who}/consents"))


def linked(assistant: Assistant, who: str) -> bool:
    return bool(service(assistant, f"/subjects/{who}/links")["linked"])


class LineResident:
    """One LINE user talking to the assistant through the fake platform."""

    def __init__(self, assistant: Assistant, fake_line: FakeLineApi) -> None:
        self.assistant, self.fake_line = assistant, fake_line
        self.user = line_user_id()
        # The LINE channel gives Rasa a pseudonym of the user id as the sender (bot/channels/
        # line.py); the subject is the contract's pseudonym of that sender.
        self.subject = subject("line", subject("line", self.user))
        self.schema = OpenApi(SPECS / "webhook.yml")

    def say(self, text: str) -> str:
        message = text_event(self.user, text)
        body = body_of([message], self.schema)
        assert post(self.assistant, body, sign(body)).status_code == 200
        [reply] = calls_for(self.fake_line, REPLY, message["replyToken"])
        assert reply.problems == []
        return reply_texts(reply)


def test_web_and_line_linked_by_a_one_time_code_list_the_same_consents(
    assistant: Assistant, browser: Any, fake_line: FakeLineApi
) -> None:
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    receipt_code = consent_in_the_browser(page, assistant)
    line = LineResident(assistant, fake_line)
    assert "まだ同意の記録はありません" in line.say("同意した内容を確認したいです")

    issued = type_message(page, "LINEとWebをつなげたい", expect="1回だけ")
    match = LINK_CODE.search(issued)
    assert match, issued
    assert "1回だけ" in issued and "LINE" in issued
    code = match.group(1)

    # A wrong code links nothing.
    wrong = "0000-0000" if code != "0000-0000" else "0000-0001"
    assert "見つかりませんでした" in line.say(f"連携コード {wrong}")
    assert not linked(assistant, line.subject)

    done = line.say(f"連携コード {code}")
    assert "Webチャットとつながりました" in done
    assert linked(assistant, line.subject)
    on_line = line.say("同意した内容を確認したいです")
    on_web = type_message(page, "同意した内容を確認したいです", expect=receipt_code)
    assert receipt_code in on_line and receipt_code in on_web
    [web_consent] = consents_of(assistant, line.subject)
    assert (web_consent["receipt_code"], web_consent["channel"]) == (receipt_code, "web")
    assert web_consent["via_link"] is True

    # The same code again, from another LINE account: used, nothing linked.
    stranger = LineResident(assistant, fake_line)
    assert "すでに使われています" in stranger.say(f"連携コード {code}")
    assert not linked(assistant, stranger.subject)
    assert consents_of(assistant, stranger.subject) == []

    # Undone from LINE: each lists only its own consents again.
    assert "連携を解除しました" in line.say("連携を解除")
    assert consents_of(assistant, line.subject) == []
    assert "まだ同意の記録はありません" in line.say("同意した内容を確認したいです")
    assert receipt_code in type_message(page, "同意した内容を確認したいです", expect=receipt_code)
    context.close()


def test_an_expired_code_links_nothing(assistant: Assistant, fake_line: FakeLineApi) -> None:
    sender = f"e2e-link-{line_user_id()[:9]}"
    answer = "\n".join(a.get("text", "") for a in assistant.say(sender, "連携コードを発行して"))
    match = LINK_CODE.search(answer)
    assert match, answer
    # As far as the service can tell, a minute after the code expired (ten minutes after it was
    # issued; long after, it is deleted and would be unknown).
    database = assistant.consent.env["CONSENT_DATABASE_URL"].removeprefix("sqlite+pysqlite:///")
    with sqlite3.connect(database) as connection:
        changed = connection.execute(
            "UPDATE link_codes SET expires_at = datetime(expires_at, '-11 minutes') "
            "WHERE subject_id = ?",
            (subject("rest", sender),),
        ).rowcount
    assert changed == 1
    line = LineResident(assistant, fake_line)
    assert "有効期限が過ぎています" in line.say(f"連携コード {match.group(1)}")
    assert not linked(assistant, line.subject)
    assert not linked(assistant, subject("rest", sender))
