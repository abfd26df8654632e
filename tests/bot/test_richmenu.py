"""The LINE rich menu: valid for LINE, answered by our channel, registered by the script."""

from __future__ import annotations

import json

import requests

from bot.channels.line_messages import postback_payload
from scripts import line_richmenu
from tests.line_fake import SPECS, FakeLineApi, OpenApi

TOKEN = "richmenu-test-token"


def test_the_menu_conforms_to_lines_schema() -> None:
    api = OpenApi(SPECS / "messaging-api.yml")
    menu = line_richmenu.load_menu()
    assert api.errors(menu, api.request_schema("/v2/bot/richmenu")) == []
    assert len(menu["areas"]) == 7


def test_every_area_sends_one_of_our_button_payloads() -> None:
    for area in line_richmenu.load_menu()["areas"]:
        action = area["action"]
        assert postback_payload(action["data"]) == action["data"]
        assert len(action["label"]) <= 20


def test_the_areas_cover_the_menu_without_overlap() -> None:
    menu = line_richmenu.load_menu()
    covered = sum(a["bounds"]["width"] * a["bounds"]["height"] for a in menu["areas"])
    assert covered == menu["size"]["width"] * menu["size"]["height"]


def test_the_drawn_image_is_a_png_of_the_menus_size() -> None:
    png = line_richmenu.draw_image(line_richmenu.load_menu())
    assert png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (2500, 1686)


def test_registration_creates_uploads_and_sets_the_default() -> None:
    with FakeLineApi(TOKEN) as fake:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        image = line_richmenu.draw_image(line_richmenu.load_menu())
        menu_id = line_richmenu.register(image, session, fake.url, fake.url)
        calls = fake.sent()
    assert menu_id == FakeLineApi.RICH_MENU_ID
    assert [c.path for c in calls] == [
        "/v2/bot/richmenu",
        f"/v2/bot/richmenu/{menu_id}/content",
        f"/v2/bot/user/all/richmenu/{menu_id}",
    ]
    assert all(c.problems == [] for c in calls)
    assert json.dumps(calls[0].body, ensure_ascii=False).count("postback") == 7
