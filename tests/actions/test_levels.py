from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet

from actions.levels import (
    DATA_ITEMS,
    LEVEL3_ITEMS,
    ActionExplainDataItemLevel,
    ActionExplainDataLevels,
    normalise_level,
)
from tests.actions.conftest import responses, tracker_for, user_event
from tests.conftest import CONTRACT_DATA_ITEMS
from tests.conftest import LEVEL3_ITEMS as CONTRACT_LEVEL3


def test_action_knows_exactly_the_contract_items() -> None:
    assert sorted(DATA_ITEMS) == sorted(CONTRACT_DATA_ITEMS)
    assert sorted(LEVEL3_ITEMS) == sorted(CONTRACT_LEVEL3)


@pytest.mark.parametrize("item", CONTRACT_DATA_ITEMS)
def test_item_level_names_the_item_asked_about(dispatcher, item: str) -> None:
    tracker = tracker_for(
        user_event("…はレベルいくつ？", "ask_data_item_level", [("data_item", item)])
    )
    events = ActionExplainDataItemLevel().run(dispatcher, tracker, {})
    assert responses(dispatcher) == [f"utter_item_level_{item}"]
    assert events == [SlotSet("data_item", item)]


def test_item_level_answers_several_items_once_each_in_order(dispatcher) -> None:
    entities = [("data_item", "genetic"), ("data_item", "weight"), ("data_item", "genetic")]
    tracker = tracker_for(user_event("遺伝子と体重と遺伝子", "ask_data_item_level", entities))
    ActionExplainDataItemLevel().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_item_level_genetic", "utter_item_level_weight"]


def test_item_level_caps_the_number_of_answers(dispatcher) -> None:
    entities = [("data_item", item) for item in CONTRACT_DATA_ITEMS[:6]]
    tracker = tracker_for(user_event("たくさん", "ask_data_item_level", entities))
    ActionExplainDataItemLevel().run(dispatcher, tracker, {})
    assert len(dispatcher.messages) == 3


@pytest.mark.parametrize(
    "entities",
    [[], [("data_item", "けつあつう")], [("data_level", "2")]],
    ids=["no entity", "value outside the catalogue", "other entity"],
)
def test_item_level_asks_which_item_when_none_is_known(dispatcher, entities) -> None:
    tracker = tracker_for(user_event("これはレベルいくつ", "ask_data_item_level", entities))
    events = ActionExplainDataItemLevel().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_ask_which_item"]
    assert events == []


def test_item_asked_earlier_does_not_answer_a_new_question(dispatcher) -> None:
    earlier = user_event("血圧は？", "ask_data_item_level", [("data_item", "blood_pressure")])
    now = user_event("じゃあこれは？", "ask_data_item_level")
    tracker = tracker_for(earlier, now, slots={"data_item": "blood_pressure"})
    ActionExplainDataItemLevel().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_ask_which_item"]


@pytest.mark.parametrize(
    ("value", "level"),
    [("2", "2"), ("２", "2"), ("レベル２", "2"), ("れべる0", "0"), ("3", "3"), ("4", None),
     ("12", None), ("レベル", None)],
)  # fmt: skip
def test_normalise_level(value: str, level: str | None) -> None:
    assert normalise_level(value) == level


def test_data_levels_without_a_level_gives_the_overview(dispatcher) -> None:
    tracker = tracker_for(user_event("レベル分けを教えて", "ask_data_levels"))
    assert ActionExplainDataLevels().run(dispatcher, tracker, {}) == []
    assert responses(dispatcher) == ["utter_data_levels"]


@pytest.mark.parametrize("level", ["0", "1", "2", "3"])
def test_data_levels_with_a_level_gives_its_detail(dispatcher, level: str) -> None:
    tracker = tracker_for(user_event("レベル", "ask_data_levels", [("data_level", level)]))
    events = ActionExplainDataLevels().run(dispatcher, tracker, {})
    assert responses(dispatcher) == [f"utter_data_level_{level}"]
    assert events == [SlotSet("data_level", level)]


def test_data_levels_ignores_an_unknown_level(dispatcher) -> None:
    tracker = tracker_for(user_event("レベル5", "ask_data_levels", [("data_level", "レベル5")]))
    ActionExplainDataLevels().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_data_levels"]
