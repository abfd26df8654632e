"""The Rasa side and the consent service cannot import each other: they talk over HTTP only."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from tests.conftest import PROJECT_ROOT

BACKEND_PYTHON = PROJECT_ROOT / ".venv-backend" / "bin" / "python"


def test_the_consent_service_is_not_importable_here() -> None:
    assert importlib.util.find_spec("consent_service") is None


@pytest.mark.skipif(not BACKEND_PYTHON.exists(), reason="make venv-backend builds it")
@pytest.mark.parametrize("module", ["actions", "bot", "rasa", "rasa_sdk"])
def test_the_rasa_side_is_not_importable_from_the_backend(module: str) -> None:
    result = subprocess.run(
        [str(BACKEND_PYTHON), "-c", f"import {module}"],
        cwd=PROJECT_ROOT / "backend",
        env={"PYTHONPATH": str(PROJECT_ROOT / "backend"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0
    assert b"ModuleNotFoundError" in result.stderr
