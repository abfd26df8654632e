"""Register the LINE rich menu (bot/line/richmenu.json) as the default menu for all users.

    PYTHONPATH=. .venv/bin/python scripts/line_richmenu.py [--image menu.png] [--dry-run]

Creates the menu, uploads its image (drawn from the menu's own labels when no image is given),
and sets it as the default. Settings: LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL and
LINE_API_DATA_BASE_URL (image uploads go to the data API host). docs/line.md explains the steps.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import requests
from PIL import Image, ImageDraw, ImageFont

from bot.settings import get_settings

MENU = Path(__file__).resolve().parent.parent / "bot" / "line" / "richmenu.json"
FONTS = [
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
]
TIMEOUT = (3.0, 30.0)


def load_menu() -> dict[str, Any]:
    """The menu definition."""
    return dict(json.loads(MENU.read_text(encoding="utf-8")))


def draw_image(menu: dict[str, Any]) -> bytes:
    """A plain PNG with each area's label, for a city without a designed image yet."""
    size = (menu["size"]["width"], menu["size"]["height"])
    image = Image.new("RGB", size, "#00663a")
    draw = ImageDraw.Draw(image)
    font_path = next((f for f in FONTS if Path(f).exists()), None)
    for area in menu["areas"]:
        b = area["bounds"]
        left, top = b["x"] + 12, b["y"] + 12
        right, bottom = b["x"] + b["width"] - 12, b["y"] + b["height"] - 12
        draw.rectangle([left, top, right, bottom], fill="#ffffff")
        label = area["action"]["label"]
        font: Any = ImageFont.load_default()
        for points in range(120, 30, -6):  # the largest size that fits the cell
            if font_path is None:
                break
            font = ImageFont.truetype(font_path, points)
            if draw.textlength(label, font=font) <= b["width"] - 80:
                break
        center = (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        draw.text(center, label, fill="#1d1d1b", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def register(image: bytes, session: requests.Session, api: str, data_api: str) -> str:
    """Create the menu, upload the image, make it the default; return the rich menu id."""
    created = session.post(f"{api}/v2/bot/richmenu", json=load_menu(), timeout=TIMEOUT)
    created.raise_for_status()
    menu_id = str(created.json()["richMenuId"])
    uploaded = session.post(
        f"{data_api}/v2/bot/richmenu/{menu_id}/content",
        data=image,
        headers={"Content-Type": "image/png"},
        timeout=TIMEOUT,
    )
    uploaded.raise_for_status()
    default = session.post(f"{api}/v2/bot/user/all/richmenu/{menu_id}", timeout=TIMEOUT)
    default.raise_for_status()
    return menu_id


def main(argv: list[str] | None = None) -> int:
    """Run the registration (or, with --dry-run, only write the image)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", type=Path, help="a designed PNG (2500x1686) to use instead")
    parser.add_argument("--dry-run", action="store_true", help="write richmenu.png and stop")
    args = parser.parse_args(argv)
    image = args.image.read_bytes() if args.image else draw_image(load_menu())
    if args.dry_run:
        Path("richmenu.png").write_bytes(image)
        print("Wrote richmenu.png")
        return 0
    settings = get_settings()
    if settings.line_channel_access_token is None:
        print("LINE_CHANNEL_ACCESS_TOKEN is not set.", file=sys.stderr)
        return 1
    session = requests.Session()
    session.headers["Authorization"] = (
        f"Bearer {settings.line_channel_access_token.get_secret_value()}"
    )
    menu_id = register(
        image,
        session,
        settings.line_api_base_url.rstrip("/"),
        settings.line_api_data_base_url.rstrip("/"),
    )
    print(f"Rich menu {menu_id} is now the default menu.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
