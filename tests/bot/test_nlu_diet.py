"""The trained model predicts the same whether DIET is loaded Rasa's way or the fast way.

`bot.nlu.diet.FastLoadingDIET` skips tracing DIET's training step when the server starts; this
loads models/assistant.tar.gz both ways and compares every prediction on the held-out messages.
Needs the trained model, so it runs in the e2e phase of `make test` (after `make model`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
import yaml
from rasa.core.agent import Agent
from rasa.nlu.classifiers.diet_classifier import DIET

from bot.nlu.diet import FastLoadingDIETClassifier
from tests.conftest import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"

pytestmark = pytest.mark.e2e


def _texts() -> List[str]:
    data = yaml.safe_load((PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml").read_text("utf-8"))
    texts = []
    for block in data["nlu"]:
        for line in str(block.get("examples", "")).splitlines():
            if line.strip().startswith("- "):
                texts.append(line.strip()[2:])
    return texts


def _predict(texts: List[str]) -> List[Dict[str, Any]]:
    agent = Agent.load(str(MODEL))

    async def parse_all() -> List[Dict[str, Any]]:
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(parse_all())


def test_fast_loading_predicts_exactly_what_rasas_loading_predicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not MODEL.exists():
        pytest.fail("No trained model: run `make model` first.")
    texts = _texts()
    fast = _predict(texts)
    monkeypatch.setattr(FastLoadingDIETClassifier, "model_class", staticmethod(lambda: DIET))
    stock = _predict(texts)
    for mine, theirs in zip(fast, stock, strict=True):
        assert mine["intent"]["name"] == theirs["intent"]["name"], mine["text"]
        assert mine["intent"]["confidence"] == pytest.approx(
            theirs["intent"]["confidence"], abs=1e-5
        )
        assert [e["value"] for e in mine["entities"]] == [e["value"] for e in theirs["entities"]]
        ranking = [(r["name"], round(r["confidence"], 5)) for r in mine["intent_ranking"]]
        expected = [(r["name"], round(r["confidence"], 5)) for r in theirs["intent_ranking"]]
        assert [name for name, _ in ranking] == [name for name, _ in expected], mine["text"]
