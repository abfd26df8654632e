"""Shared fixtures and the names fixed by docs/contract.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CONTRACT_INTENTS = [
    "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "help", "request_staff",
    "out_of_scope", "ask_info_bank", "ask_data_levels", "ask_data_item_level", "ask_benefits",
    "ask_points", "ask_purposes", "ask_recipients", "ask_ethics_board", "ask_family_doctor",
    "ask_security", "ask_mynaportal", "ask_location_data", "ask_cost", "ask_medical_advice",
    "ask_disaster_support", "ask_childcare_support", "ask_elderly_support", "ask_allergy_menu",
    "ask_fitness", "subscribe_notifications", "give_consent", "withdraw_consent", "list_consents",
]  # fmt: skip

CONTRACT_DATA_ITEMS = [
    "steps", "weight", "body_fat", "body_temperature", "blood_pressure", "pulse",
    "health_checkup", "medical_history", "vaccination", "claims", "other_test_results",
    "gut_bacteria", "oral_bacteria", "genetic", "location", "statistics",
]  # fmt: skip

LEVEL3_ITEMS = ["other_test_results", "gut_bacteria", "oral_bacteria", "genetic"]


@pytest.fixture(scope="session")
def ginza() -> Any:
    """GiNZA's spaCy pipeline, loaded once for the whole test session."""
    spacy = pytest.importorskip("spacy")
    return spacy.load("ja_ginza")
