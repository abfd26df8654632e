"""A generated, labelled set of resident messages carrying personal details (issue 19).

Pure Python, standard library only, deterministic: the Rasa side (`bot.privacy`, its tests and
`bench/privacy.py`) and the consent service's tests (the staff console's masking) import it from
their own environments, so nothing here may import Rasa, Sudachi or the backend.

`cases()` gives sentences as residents type them (polite and casual, one to three details each,
around the questions the assistant answers); each `Case` lists every `Detail` in it: its kind
(the values of `bot.privacy.DetailKind`), the raw text, and the `parts` that must all be gone
from the masked text for the detail to count as found (a surname and a given name separately,
a town and its block number, each figure of a health value).

`nlu_sentences()` gives every example sentence of `data/**/*.yml` and `tests/nlu/test_nlu.yml`
with entity annotations stripped: none of them is personal, so masking must leave them unchanged.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SEED = 19_2026
KINDS = (
    "name",
    "address",
    "phone",
    "email",
    "postal_code",
    "birth_date",
    "my_number",
    "insurance_number",
    "health_value",
)


@dataclass(frozen=True)
class Detail:
    """One personal detail inside a case's text."""

    kind: str
    raw: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    """A resident's message and the personal details in it."""

    text: str
    details: tuple[Detail, ...] = field(default_factory=tuple)
    question: str = ""  # the question around the details ("": none), for the NLU's reading


def missed(detail: Detail, masked_text: str) -> bool:
    """Whether any part of `detail` survives in `masked_text` (then the detail was missed)."""
    return any(part in masked_text for part in detail.parts)


# ---------------------------------------------------------------------------------------------
# Vocabulary.

SURNAMES = [
    # (kanji, katakana, hiragana)
    ("佐藤", "サトウ", "さとう"), ("鈴木", "スズキ", "すずき"),
    ("高橋", "タカハシ", "たかはし"), ("田中", "タナカ", "たなか"),
    ("伊藤", "イトウ", "いとう"), ("渡辺", "ワタナベ", "わたなべ"),
    ("山本", "ヤマモト", "やまもと"), ("中村", "ナカムラ", "なかむら"),
    ("小林", "コバヤシ", "こばやし"), ("加藤", "カトウ", "かとう"),
    ("吉田", "ヨシダ", "よしだ"), ("山田", "ヤマダ", "やまだ"),
    ("佐々木", "ササキ", "ささき"), ("山口", "ヤマグチ", "やまぐち"),
    ("松本", "マツモト", "まつもと"), ("井上", "イノウエ", "いのうえ"),
    ("木村", "キムラ", "きむら"), ("林", "ハヤシ", "はやし"),
    ("斎藤", "サイトウ", "さいとう"), ("清水", "シミズ", "しみず"),
    ("山崎", "ヤマザキ", "やまざき"), ("森", "モリ", "もり"),
    ("池田", "イケダ", "いけだ"), ("橋本", "ハシモト", "はしもと"),
    ("阿部", "アベ", "あべ"), ("石川", "イシカワ", "いしかわ"),
    ("山下", "ヤマシタ", "やました"), ("中島", "ナカジマ", "なかじま"),
    ("石井", "イシイ", "いしい"), ("小川", "オガワ", "おがわ"),
    ("前田", "マエダ", "まえだ"), ("岡田", "オカダ", "おかだ"),
    ("長谷川", "ハセガワ", "はせがわ"), ("藤田", "フジタ", "ふじた"),
    ("後藤", "ゴトウ", "ごとう"), ("近藤", "コンドウ", "こんどう"),
    ("村上", "ムラカミ", "むらかみ"), ("遠藤", "エンドウ", "えんどう"),
    ("青木", "アオキ", "あおき"), ("坂本", "サカモト", "さかもと"),
    ("福田", "フクダ", "ふくだ"), ("太田", "オオタ", "おおた"),
    ("西村", "ニシムラ", "にしむら"), ("藤井", "フジイ", "ふじい"),
    ("岡本", "オカモト", "おかもと"), ("松田", "マツダ", "まつだ"),
    ("中川", "ナカガワ", "なかがわ"), ("原田", "ハラダ", "はらだ"),
]  # fmt: skip
GIVEN_NAMES = [
    ("太郎", "タロウ", "たろう"), ("花子", "ハナコ", "はなこ"),
    ("一郎", "イチロウ", "いちろう"), ("健太", "ケンタ", "けんた"),
    ("翔太", "ショウタ", "しょうた"), ("美咲", "ミサキ", "みさき"),
    ("陽子", "ヨウコ", "ようこ"), ("和子", "カズコ", "かずこ"),
    ("洋子", "ヨウコ", "ようこ"), ("幸子", "サチコ", "さちこ"),
    ("恵子", "ケイコ", "けいこ"), ("誠", "マコト", "まこと"),
    ("浩", "ヒロシ", "ひろし"), ("隆", "タカシ", "たかし"),
    ("大輔", "ダイスケ", "だいすけ"), ("直樹", "ナオキ", "なおき"),
    ("由美", "ユミ", "ゆみ"), ("裕子", "ユウコ", "ゆうこ"),
    ("明美", "アケミ", "あけみ"), ("真由美", "マユミ", "まゆみ"),
    ("達也", "タツヤ", "たつや"), ("健一", "ケンイチ", "けんいち"),
    ("正夫", "マサオ", "まさお"), ("清", "キヨシ", "きよし"),
    ("節子", "セツコ", "せつこ"), ("京子", "キョウコ", "きょうこ"),
    ("久美子", "クミコ", "くみこ"), ("博", "ヒロシ", "ひろし"),
    ("茂", "シゲル", "しげる"), ("実", "ミノル", "みのる"),
    ("悠真", "ユウマ", "ゆうま"), ("結衣", "ユイ", "ゆい"),
    ("蓮", "レン", "れん"), ("陽菜", "ヒナ", "ひな"),
    ("美穂", "ミホ", "みほ"), ("智子", "トモコ", "ともこ"),
]  # fmt: skip
# Real town names of Funabashi (船橋市の町名).
TOWNS = [
    "本町", "湊町", "宮本", "前原西", "前原東", "習志野台", "高根台", "夏見", "夏見台", "薬円台",
    "二和東", "二和西", "飯山満町", "西船", "海神", "山手", "三咲", "北本町", "東船橋", "市場",
    "印内", "葛飾町", "本中山", "古作", "米ケ崎町", "咲が丘", "馬込西", "坪井東", "芝山",
    "高野台", "前貝塚町", "藤原", "丸山", "金杉", "新高根", "習志野", "七林町", "大穴北",
    "田喜野井", "滝不動", "旭町", "行田", "若松", "日の出", "栄町", "浜町", "南本町", "宮本",
]  # fmt: skip
EMAIL_USERS = ["taro", "hanako.y", "k.sato", "yamada1955", "mikan_77", "ichiro-s", "h.suzuki"]
EMAIL_DOMAINS = ["example.com", "example.jp", "mail.example.ne.jp", "docomo.ne.jp", "gmail.com"]
AGES = ["75歳", "68歳", "80歳", "42歳"]

_FULL = str.maketrans("0123456789-", "０１２３４５６７８９－")


ROMAJI_NAMES = [("Yamada", "Taro"), ("Sato", "Hanako"), ("Suzuki", "Kenji"), ("Tanaka", "Yumi")]
_KANJI_DIGITS = "〇一二三四五六七八九"
ZERO_WIDTH = "\u200b"


def _kanji_number(value: int) -> str:
    """1-99 as written in kanji numerals: 3 → 三, 10 → 十, 32 → 三十二."""
    tens, ones = divmod(value, 10)
    text = ("" if tens < 2 else _KANJI_DIGITS[tens]) + ("十" if tens else "")
    return text + (_KANJI_DIGITS[ones] if ones else "")


def _kanji_digits(digits: str) -> str:
    """Digits one by one in kanji numerals: 090 → 〇九〇."""
    return "".join(_KANJI_DIGITS[int(d)] for d in digits)


def _zero_width(rng: random.Random, text: str, detail: Detail) -> tuple[str, Detail]:
    """`text` with a zero-width space inside it, the detail's parts as they now read."""
    if len(text) < 2:
        return text, detail
    at = rng.randint(1, len(text) - 1)
    noisy = text[:at] + ZERO_WIDTH + text[at:]
    parts: list[str] = []
    for part in detail.parts:
        where = text.find(part)
        if where < 0 or not where < at < where + len(part):
            parts.append(part)
            continue
        cut = at - where
        parts.append(part[:cut] + ZERO_WIDTH + part[cut:])
        parts.extend(half for half in (part[:cut], part[cut:]) if len(half) >= 2)
    return noisy, Detail(detail.kind, noisy, tuple(parts))


def _full(text: str) -> str:
    return text.translate(_FULL)


# ---------------------------------------------------------------------------------------------
# Detail makers: each returns (surface text, Detail).


def _name(rng: random.Random) -> tuple[str, Detail]:
    surname = rng.choice(SURNAMES)
    given = rng.choice(GIVEN_NAMES)
    script = rng.choices([0, 1, 2], weights=[6, 2, 2])[0]
    shape = rng.choice(["full", "full", "full_space", "surname", "full", "romaji"])
    if shape == "romaji":  # written in Latin letters, given name first
        surname_latin, given_latin = rng.choice(ROMAJI_NAMES)
        text = f"{given_latin} {surname_latin}"
        return text, Detail("name", text, (given_latin, surname_latin))
    if shape == "surname":
        text = surname[script]
        parts: tuple[str, ...] = (surname[script],)
    else:
        space = " " if shape == "full_space" else ""
        if script and shape == "full_space" and rng.random() < 0.5:
            space = "　"
        text = surname[script] + space + given[script]
        parts = (surname[script], given[script])
    if rng.random() < 0.05:
        return _zero_width(rng, text, Detail("name", text, parts))
    return text, Detail("name", text, parts)


def _block(rng: random.Random) -> str:
    a, b, c = rng.randint(1, 9), rng.randint(1, 40), rng.randint(1, 30)
    forms = [
        f"{a}-{b}-{c}", f"{a}-{b}", f"{a}丁目{b}番{c}号", f"{a}丁目{b}-{c}", f"{a}丁目{b}番地",
        f"{b}番地{c}", f"{a}－{b}－{c}", f"{b}番{c}号",
    ]  # fmt: skip
    block = rng.choice(forms)
    if rng.random() < 0.08:  # in kanji numerals: 一丁目二番三号
        return f"{_kanji_number(a)}丁目{_kanji_number(b)}番{_kanji_number(c)}号"
    return _full(block) if rng.random() < 0.2 else block


def _address(rng: random.Random) -> tuple[str, Detail]:
    town = rng.choice(TOWNS)
    block = _block(rng)
    prefix = rng.choice(["", "", "船橋市", "千葉県船橋市", "船橋市 "])
    text = prefix + town + block
    return text, Detail("address", town + block, (town + block, town, block))


def _phone(rng: random.Random) -> tuple[str, Detail]:
    def digits(n: int) -> str:
        return "".join(str(rng.randint(0, 9)) for _ in range(n))

    kind = rng.choice(["land", "mobile", "mobile", "ip"])
    if kind == "land":
        groups = ["047", digits(3), digits(4)]
    elif kind == "mobile":
        groups = [rng.choice(["090", "080", "070"]), digits(4), digits(4)]
    else:
        groups = ["050", digits(4), digits(4)]
    form = rng.choice(
        ["hyphen", "hyphen", "plain", "paren", "space", "full", "long_dash", "intl", "dot", "kanji"]
    )
    if form == "hyphen":
        text = "-".join(groups)
    elif form == "plain":
        text = "".join(groups)
    elif form == "paren":
        text = f"{groups[0]}({groups[1]}){groups[2]}"
    elif form == "space":
        text = " ".join(groups)
    elif form == "full":
        text = _full("-".join(groups))
    elif form == "long_dash":
        text = "ー".join(groups)
    elif form == "dot":
        text = ".".join(groups)
    elif form == "kanji":  # 〇九〇の一二三四の五六七八
        groups = [_kanji_digits(g) for g in groups]
        text = "の".join(groups)
    else:
        text = "+81-" + groups[0][1:] + "-" + groups[1] + "-" + groups[2]
    shown = [_full(g) for g in groups] if form == "full" else groups
    detail = Detail("phone", text, (text, *shown[1:]))
    if form in ("hyphen", "plain") and rng.random() < 0.1:
        return _zero_width(rng, text, detail)
    return text, detail


def _email(rng: random.Random) -> tuple[str, Detail]:
    text = f"{rng.choice(EMAIL_USERS)}{rng.randint(1, 99)}@{rng.choice(EMAIL_DOMAINS)}"
    if rng.random() < 0.1:
        text = text.translate(str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}))
    return text, Detail("email", text, (text, text.split("@")[0].split("＠")[0]))


def _postal(rng: random.Random) -> tuple[str, Detail]:
    code = f"27{rng.randint(3, 4)}-{rng.randint(0, 9999):04d}"
    form = rng.choice(["mark", "mark", "label", "full", "plain_label", "space"])
    if form == "mark":
        text, raw = f"〒{code}", code
    elif form == "label":
        text, raw = f"郵便番号は{code}", code
    elif form == "full":
        raw = _full(code)
        text = f"〒{raw}"
    elif form == "space":
        raw = code.replace("-", " ")
        text = f"郵便番号は{raw}"
        return text, Detail("postal_code", raw, (raw, *raw.split()))
    else:
        raw = code.replace("-", "")
        text = f"郵便番号{raw}"
    return text, Detail("postal_code", raw, (raw,))


_ERAS = [("昭和", "S", 1925), ("平成", "H", 1988)]


def _birth(rng: random.Random) -> tuple[str, Detail]:
    era, letter, base = rng.choice(_ERAS)
    year = rng.randint(5, 60) if era == "昭和" else rng.randint(2, 25)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    western = base + year
    forms = [
        f"{era}{year}年{month}月{day}日", f"{letter}{year}.{month}.{day}",
        f"{western}/{month}/{day}",
        f"{western}年{month}月{day}日", f"{western}-{month:02d}-{day:02d}",
        f"{era}{year}年{month}月{day}日", f"{letter}{year}/{month}/{day}",
    ]  # fmt: skip
    raw = rng.choice(forms)
    if rng.random() < 0.15:
        raw = _full(raw)
    elif rng.random() < 0.1:  # 昭和三十年五月六日
        raw = f"{era}{_kanji_number(year)}年{_kanji_number(month)}月{_kanji_number(day)}日"
        parts = (raw, f"{_kanji_number(year)}年", f"{_kanji_number(month)}月{_kanji_number(day)}日")
        return raw, Detail("birth_date", raw, parts)
    return raw, Detail("birth_date", raw, (raw,))


def _my_number(rng: random.Random) -> tuple[str, Detail]:
    groups = ["".join(str(rng.randint(0, 9)) for _ in range(4)) for _ in range(3)]
    if rng.random() < 0.15:
        groups = [_full(g) for g in groups]
    raw = rng.choice(["", " ", "-", "　"]).join(groups)
    return raw, Detail("my_number", raw, (raw, *groups))


def _insurance(rng: random.Random) -> tuple[str, Detail]:
    mark = str(rng.randint(1000, 99_999_999))
    number = str(rng.randint(1, 99_999))
    form = rng.randint(0, 5)
    if form == 0:
        text = f"保険証の記号は{mark}、番号は{number}"
        parts: tuple[str, ...] = (mark, number)
    elif form == 1:
        text = f"記号{mark} 番号{number}"
        parts = (mark, number)
    elif form == 2:
        text = f"被保険者番号は{mark}"
        parts = (mark,)
    elif form == 3:
        text = f"保険者番号 {mark}"
        parts = (mark,)
    elif form == 4:
        text = f"記号：{mark}・番号：{number}"
        parts = (mark, number)
    else:
        text = f"保険証の番号は{mark}-{number}"
        parts = (f"{mark}-{number}", mark)
    return text, Detail("insurance_number", text, parts)


def _health(rng: random.Random) -> tuple[str, Detail]:
    high, low = rng.randint(110, 190), rng.randint(60, 110)
    a1c = f"{rng.randint(5, 9)}.{rng.randint(0, 9)}"
    later = f"{rng.randint(5, 9)}.{rng.randint(0, 9)}"
    weight = rng.randint(40, 95)
    sugar = rng.randint(80, 200)
    temp = f"{rng.randint(35, 39)}.{rng.randint(0, 9)}"
    forms: list[tuple[str, tuple[str, ...]]] = [
        (f"血圧{high}/{low}", (f"{high}/{low}",)),
        (f"血圧は{high}/{low}", (f"{high}/{low}",)),
        (f"血圧が{high}の{low}", (str(high), str(low))),
        (f"上が{high}、下が{low}", (str(high), str(low))),
        (f"上の血圧が{high}", (str(high),)),
        (f"最高血圧{high}mmHg", (str(high),)),
        (f"HbA1c {a1c}", (a1c,)),
        (f"HbA1cが{a1c}%", (a1c,)),
        (f"ヘモグロビンA1cは{a1c}", (a1c,)),
        (f"体重{weight}kg", (str(weight),)),
        (f"体重は{weight}キロ", (str(weight),)),
        (f"血糖値は{sugar}", (str(sugar),)),
        (f"空腹時血糖が{sugar}mg/dL", (str(sugar),)),
        (f"体温{temp}度", (temp,)),
        (f"熱が{temp}℃", (temp,)),
        (f"中性脂肪{sugar + 50}", (str(sugar + 50),)),
        (f"LDLコレステロールが{sugar + 20}", (str(sugar + 20),)),
        (f"γ-GTPが{rng.randint(30, 150)}", ()),
        (f"尿酸値{rng.randint(4, 9)}.{rng.randint(0, 9)}", ()),
        (f"脈拍{rng.randint(55, 100)}", ()),
        (f"腹囲{rng.randint(70, 110)}cm", ()),
        (f"BMI {rng.randint(18, 32)}.{rng.randint(0, 9)}", ()),
        (f"血圧{_full(str(high))}／{_full(str(low))}", (_full(str(high)), _full(str(low)))),
        # Several values after one term, or the term after the values.
        (f"HbA1cが{a1c}から{later}に上がった", (a1c, later)),
        (f"血糖値が{sugar}とか{sugar + 10}くらい", (str(sugar), str(sugar + 10))),
        (f"体重が{weight}→{weight - 2}kg", (str(weight), str(weight - 2))),
        (f"去年は{a1c}、今年は{later}（HbA1c）", (a1c, later)),
    ]
    text, parts = rng.choice(forms)
    if not parts:
        parts = (re.findall(r"[0-9.]+", text.replace("γ-GTP", ""))[-1],)
    return text, Detail("health_value", text, parts)


MAKERS = {
    "name": _name,
    "address": _address,
    "phone": _phone,
    "email": _email,
    "postal_code": _postal,
    "birth_date": _birth,
    "my_number": _my_number,
    "insurance_number": _insurance,
    "health_value": _health,
}

# Sentence frames per kind: "{}" is where the detail goes.
# fmt: off
FRAMES = {
    "name": [
        "{}です。",
        "{}と申します。",
        "{}といいます、よろしくお願いします。",
        "名前は{}です。",
        "わたしは{}です。",
        "私、{}って言います。",
        "{}です",
        "はじめまして、{}です。",
        "{}ですが、",
        "氏名：{}",
        "母の{}の代わりに聞いています。",
        "{}の家族です。",
    ],
    "address": [
        "住所は{}です。",
        "{}に住んでいます。",
        "{}に住んでる者ですが、",
        "今は{}です。",
        "{}在住です。",
        "自宅は{}です。",
        "{}から連絡してます。",
    ],
    "phone": [
        "電話番号は{}です。",
        "{}に電話してください。",
        "連絡先は{}です。",
        "携帯は{}",
        "{}までお願いします。",
        "TEL {}",
        "電話 {} です",
    ],
    "email": ["メールは{}です。", "{}に送ってください。", "連絡は{}へ", "アドレス：{}"],
    "postal_code": ["{}", "{}です。", "住所の{}は合っていますか。"],
    "birth_date": [
        "生年月日は{}です。",
        "{}生まれです。",
        "誕生日は{}",
        "{}生まれの母のことで",
        "生年月日：{}",
    ],
    "my_number": [
        "マイナンバーは{}です。",
        "個人番号 {} でいいですか。",
        "マイナンバー{}を送ります。",
        "マイナンバーカードの番号は{}",
        "{}がマイナンバーです。",
    ],
    "insurance_number": ["{}です。", "{}で登録できますか。", "{}", "念のため、{}です。"],
    "health_value": [
        "健診で{}でした。",
        "{}です。",
        "この前の健診の結果、{}と言われました。",
        "{}だったんだけど",
        "最近{}で心配です。",
        "{}くらいあります。",
        "先月の健診では{}。",
    ],
}
# fmt: on
# The questions residents ask around their details (the assistant's topics).
QUESTIONS = [
    "情報銀行って何ですか？",
    "健診のデータを提供したいです。",
    "レベル2のデータとは何ですか",
    "同意を取り消したいです。",
    "データはどこに預けられるの？",
    "家族の分も登録できますか",
    "提供するとどんな良いことがありますか",
    "船橋市の情報銀行に登録したい",
    "",
    "",
    "血圧のデータも提供できますか",
    "健診結果はどう使われますか",
    "LINEで登録できますか？",
]  # fmt: skip
SENTENCE_ENDS = ["", "", "よろしくお願いします。", "教えてください。", "お願いします"]


def _detail_sentence(rng: random.Random, kind: str) -> tuple[str, Detail]:
    surface, detail = MAKERS[kind](rng)
    frame = rng.choice(FRAMES[kind])
    return frame.format(surface), detail


def cases(count: int = 2400, seed: int = SEED) -> list[Case]:
    """The generated set: `count` messages, each kind in at least count/9 * 1.5 details.

    Args:
        count: How many messages.
        seed: The random seed (the default is the measured set).

    Returns:
        The messages with their details.
    """
    rng = random.Random(seed)  # noqa: S311 (a reproducible test set, not a secret)
    result: list[Case] = []
    for index in range(count):
        first = KINDS[index % len(KINDS)]
        kinds = [first, *rng.sample(KINDS, rng.choices([0, 1, 2], weights=[4, 4, 2])[0])]
        pieces: list[str] = []
        details: list[Detail] = []
        for kind in dict.fromkeys(kinds):
            sentence, detail = _detail_sentence(rng, kind)
            if not sentence.endswith(("。", "、", "！", "？")):
                # People separate what they type: a stop, a comma, a space or a new line.
                sentence += rng.choice(["。", "、", " ", "\n"])
            pieces.append(sentence)
            details.append(detail)
        age = rng.choice(AGES)
        if rng.random() < 0.15 and not any(age[:2] in part for d in details for part in d.parts):
            pieces.append(f"{age}です。")  # ages are not masked (docs/privacy.md)
        rng.shuffle(pieces)
        question = rng.choice(QUESTIONS)
        text = "".join(pieces) + question + rng.choice(SENTENCE_ENDS)
        if rng.random() < 0.3 and not text.startswith(("氏名", "TEL")):
            text = rng.choice(["こんにちは。", "すみません、", "あの、", "もしもし "]) + text
        result.append(Case(text, tuple(details), question))
    return result


# ---------------------------------------------------------------------------------------------
# The NLU sentences (non-personal).

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_BLOCK_START = re.compile(r"^\s*-\s*(intent|synonym|lookup|regex)\s*:")


def strip_annotations(example: str) -> str:
    """An NLU example without entity annotations: "[x](y)" and "[x]{...}" become "x"."""
    return _ANNOTATION.sub(r"\1", example)


def nlu_sentences(root: Path = ROOT) -> list[str]:
    """Every example of the intents, synonyms and lookup tables in data/ and tests/nlu.

    Read line by line (no YAML library: this module is standard library only): the "- " items of
    each `examples: |` block, except those of regex features (patterns, not sentences).

    Args:
        root: The repository.

    Returns:
        The sentences, annotations stripped, in file order.
    """
    files = [*sorted((root / "data").rglob("*.yml")), root / "tests" / "nlu" / "test_nlu.yml"]
    sentences: list[str] = []
    for path in files:
        sentences.extend(_examples(path.read_text(encoding="utf-8")))
    return sentences


def _examples(text: str) -> Iterator[str]:
    kind = ""
    in_examples = False
    indent = 0
    for line in text.splitlines():
        start = _BLOCK_START.match(line)
        if start:
            kind, in_examples = start.group(1), False
            continue
        stripped = line.strip()
        if stripped.startswith("examples:") and stripped.endswith("|"):
            in_examples, indent = True, len(line) - len(line.lstrip())
            continue
        if not in_examples:
            continue
        if stripped and len(line) - len(line.lstrip()) <= indent:
            in_examples = False
            continue
        if stripped.startswith("- ") and kind != "regex":
            yield strip_annotations(stripped[2:].strip())
