from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        "CONSENT_API_TOKEN=from-file\nCITY_CONTACT_NAME=ファイルの課\nCITY_CONTACT_PHONE=1\n",
        encoding="utf-8",
    )
    return path


def test_values_come_from_the_env_file(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENT_API_TOKEN", raising=False)
    settings = Settings(_env_file=env_file)
    assert settings.consent_api_token is not None
    assert settings.consent_api_token.get_secret_value() == "from-file"
    assert settings.city_contact_name == "ファイルの課"


def test_the_environment_wins_over_the_env_file(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENT_API_TOKEN", "from-env")
    settings = Settings(_env_file=env_file)
    assert settings.consent_api_token is not None
    assert settings.consent_api_token.get_secret_value() == "from-env"


def test_secrets_are_not_shown_in_repr(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENT_API_TOKEN", raising=False)
    assert "from-file" not in repr(Settings(_env_file=env_file))


def test_contact_needs_name_phone_and_hours(
    env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CITY_CONTACT_NAME", "CITY_CONTACT_PHONE", "CITY_CONTACT_HOURS"):
        monkeypatch.delenv(name, raising=False)
    assert not Settings(_env_file=env_file).has_city_contact()
    monkeypatch.setenv("CITY_CONTACT_HOURS", "平日")
    assert Settings(_env_file=env_file).has_city_contact()


def test_line_api_base_url_defaults_to_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LINE_API_BASE_URL", raising=False)
    assert Settings(_env_file=tmp_path / "none").line_api_base_url == "https://api.line.me"
