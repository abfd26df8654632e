"""The LINE channel's part in notices (issue 17): the sealed recipient in every message's
metadata, and `unfollow` handed to Rasa as `/line_unfollowed` with nothing sent to LINE."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.core.channels.channel import UserMessage

from bot.notice_seal import generate_keypair
from tests.bot.test_channel_line import Line, event, settings, user
from tests.bot.test_notice_seal import open_sealed


class Recording(Line):
    """A channel that keeps every UserMessage Rasa got and whether the API showed loading."""

    def __init__(self, **values: Any) -> None:
        super().__init__(settings(**values))
        self.messages: List[UserMessage] = []
        self.loading: List[str] = []

        async def show_loading(chat_id: str) -> None:
            self.loading.append(chat_id)

        self.api.show_loading = show_loading  # type: ignore[method-assign]

    async def _on_new_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        await super()._on_new_message(message)


def unfollow(resident: str) -> Dict[str, Any]:
    return event(resident, type="unfollow", message=None, replyToken=None)


async def test_every_message_carries_the_sealed_recipient() -> None:
    private, public = generate_keypair()
    line = Recording(notice_public_key=public)
    resident = user()
    assert await line.handle(event(resident))
    assert await line.handle(event(resident))
    first, second = (m.metadata["notice_recipient"] for m in line.messages)
    assert open_sealed(first, private) == resident == open_sealed(second, private)
    assert first != second  # randomised: nothing stable about the resident in the tracker
    assert all(resident not in str(m.metadata) for m in line.messages)


async def test_without_a_notice_key_there_is_no_recipient() -> None:
    line = Recording()
    assert await line.handle(event(user()))
    assert not (line.messages[0].metadata or {}).get("notice_recipient")


async def test_unfollow_reaches_rasa_and_nothing_goes_to_line() -> None:
    private, public = generate_keypair()
    line = Recording(notice_public_key=public)
    resident = user()
    assert await line.handle(unfollow(resident))
    assert [m.text for m in line.messages] == ["/line_unfollowed"]
    assert open_sealed(line.messages[0].metadata["notice_recipient"], private) == resident
    assert line.api.calls == []  # no reply, no push
    assert line.loading == []


async def test_unfollow_is_not_held_back_by_the_rate_limit() -> None:
    line = Recording(rate_limit_messages=1)
    resident = user()
    assert await line.handle(event(resident))
    assert await line.handle(event(resident))  # over the limit: told to wait
    assert await line.handle(unfollow(resident))
    assert [m.text for m in line.messages][-1] == "/line_unfollowed"
