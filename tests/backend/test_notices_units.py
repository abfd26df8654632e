"""Notices (issue 17): sealing, quiet hours, the topic catalogue and `notices keygen`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from consent_service import __main__ as cli
from consent_service.catalog.notice_topics import read_topics, topics_path
from consent_service.config import SenderSecrets, Settings
from consent_service.notices import seal
from consent_service.notices.quiet_hours import in_quiet_hours, next_allowed

# A fixed vector made by this module's `seal` (docs/notices.md): the Rasa side's
# bot/notice_seal.py must produce values this opens, and open this itself.
VECTOR_PRIVATE = "WH0987JDctGV_i0uRweBSNzmtopIFA1evqPzny4Zj1I"
VECTOR_PUBLIC = "NDh6bQJZ3TSenZBMv62jQ0liB1lpvGM59Rr5uiNyqiU"
VECTOR_USER_ID = "U4af4980629f2a5b6c7d8e9f00112233a"
VECTOR_SEALED = (
    "Gyu0j3i8PLRSdSZMDmfHA16eWIQZkiuQm58JF4YlrliXPbJzrXk5_NRlXkXtgSn9IogDkFzf5XQ5Pix4a24qItMZQWOk"
    "x5b35WPrtg_qmVK_mOXwNtFNCJnwS_bS"
)
JST = dt.timezone(dt.timedelta(hours=9))


def test_the_fixed_vector_opens() -> None:
    assert seal.public_key_of(VECTOR_PRIVATE) == VECTOR_PUBLIC
    assert seal.open_sealed(VECTOR_SEALED, VECTOR_PRIVATE) == VECTOR_USER_ID


def test_sealing_is_randomised_and_opens_only_with_the_private_key() -> None:
    private, public = seal.generate_keypair()
    first, second = seal.seal(VECTOR_USER_ID, public), seal.seal(VECTOR_USER_ID, public)
    assert first != second
    assert VECTOR_USER_ID not in first
    assert seal.open_sealed(first, private) == seal.open_sealed(second, private) == VECTOR_USER_ID
    other_private, _ = seal.generate_keypair()
    with pytest.raises(seal.SealError):
        seal.open_sealed(first, other_private)
    tampered = first[:-2] + ("AA" if first[-2:] != "AA" else "BB")
    with pytest.raises(seal.SealError):
        seal.open_sealed(tampered, private)
    with pytest.raises(seal.SealError):
        seal.open_sealed("abc", private)


def test_the_wire_format_is_eph_pub_nonce_and_box() -> None:
    raw = seal.b64decode(VECTOR_SEALED)
    assert "=" not in VECTOR_SEALED
    assert len(raw) == 32 + 12 + len(VECTOR_USER_ID.encode()) + 16


def test_keygen_prints_a_pair_that_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["notices", "keygen"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"NOTICE_PRIVATE_KEY", "NOTICE_PUBLIC_KEY"}
    sealed = seal.seal("Uxyz", lines["NOTICE_PUBLIC_KEY"])
    assert seal.open_sealed(sealed, lines["NOTICE_PRIVATE_KEY"]) == "Uxyz"


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ((20, 59), False),
        ((21, 0), True),
        ((23, 30), True),
        ((0, 0), True),
        ((7, 59), True),
        ((8, 0), False),
        ((12, 0), False),
    ],
)
def test_quiet_hours_wrap_midnight_in_japan_time(local: tuple[int, int], quiet: bool) -> None:
    when = dt.datetime(2026, 12, 1, *local, tzinfo=JST).astimezone(dt.UTC)
    assert in_quiet_hours(when, "21:00-08:00") is quiet


def test_next_allowed_is_the_end_of_the_quiet_hours() -> None:
    late = dt.datetime(2026, 12, 1, 22, 15, tzinfo=JST).astimezone(dt.UTC)
    assert next_allowed(late, "21:00-08:00") == dt.datetime(2026, 12, 2, 8, 0, tzinfo=JST)
    early = dt.datetime(2026, 12, 2, 6, 0, tzinfo=JST).astimezone(dt.UTC)
    assert next_allowed(early, "21:00-08:00") == dt.datetime(2026, 12, 2, 8, 0, tzinfo=JST)
    noon = dt.datetime(2026, 12, 2, 12, 0, tzinfo=JST).astimezone(dt.UTC)
    assert next_allowed(noon, "21:00-08:00") == noon
    assert next_allowed(noon, "12:00-13:00") == dt.datetime(2026, 12, 2, 13, 0, tzinfo=JST)
    assert not in_quiet_hours(late, "00:00-00:00")
    with pytest.raises(ValueError):
        in_quiet_hours(noon, "9pm-8am")
    with pytest.raises(ValueError):
        in_quiet_hours(dt.datetime(2026, 12, 2, 12, 0), "21:00-08:00")


def test_the_shipped_topics_are_the_contracts() -> None:
    path = topics_path(Settings.model_fields["consent_catalog_path"].default)
    spec = read_topics(path)
    assert [t.topic_id for t in sorted(spec.topics, key=lambda t: t.sort_order)] == [
        "checkups",
        "vaccination",
        "disaster",
        "healthy_ageing",
    ]
    assert {t.title_ja for t in spec.topics} == {
        "健診・保健指導",
        "予防接種",
        "防災・避難",
        "介護予防・健康づくり",
    }
    assert all(t.max_per_month == 2 for t in spec.topics)
    assert "お知らせをやめる" in spec.stop_line_ja


def test_the_topics_file_refuses_a_repeated_topic(tmp_path: Path) -> None:
    source = topics_path(Settings.model_fields["consent_catalog_path"].default)
    text = source.read_text(encoding="utf-8").replace("topic_id: disaster", "topic_id: checkups")
    (tmp_path / "notice_topics.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="listed twice"):
        read_topics(tmp_path / "notice_topics.yml")


def test_only_send_notices_reads_the_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    private, _ = seal.generate_keypair()
    monkeypatch.setenv("NOTICE_PRIVATE_KEY", private)
    settings = Settings(_env_file=None, consent_api_token="t" * 43)
    # The service's settings (serve, the console, every other command) never hold it.
    assert private not in repr(settings.model_dump())
    assert not any("private" in name for name in Settings.model_fields)
    assert SenderSecrets(_env_file=None).private_key() == private
    monkeypatch.delenv("NOTICE_PRIVATE_KEY")
    with pytest.raises(ValueError, match="NOTICE_PRIVATE_KEY"):
        SenderSecrets(_env_file=None).private_key()
    assert settings.notice_link_hosts() == frozenset({"www.city.funabashi.lg.jp"})
    assert settings.notice_batch_size == 500
    with pytest.raises(ValueError):
        Settings(_env_file=None, consent_api_token="t" * 43, notice_batch_size=501)
