"""domain.yml's responses are ordered by topic, like data/nlu/ (issue 20).

The `responses:` section is cut into sections, each opened by exactly one header line
`  # ---- <topic> (data/nlu/<file>.yml) ----…`, in the order `ls data/nlu` gives the topic files
(every file there except the `written_*` registers and files without intents, such as
synonyms.yml). A topic without responses has no section. The last section,
`  # ---- said by actions and channels (no intent in data/nlu/) ----…`, holds what only actions
and channels say: answers to the intents channels send (never typed), fallback, the second-question
offers, and so on.

A response that a rule or story utters right after an intent lies in the section of a file that
defines that intent (an intent defined in two topic files may use either); after an intent that no
topic file defines (one only channels send), in the last section. Responses that only actions
utter are placed by the action's feature; that is a judgement this test does not check.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

HEADER = re.compile(r"^  # ---- (?P<title>.*?) -{4,}\s*$")
TOPIC_FILE = re.compile(r"\(data/nlu/(?P<stem>[a-z0-9_]+)\.yml\)")
RESPONSE_KEY = re.compile(r"^  (?P<name>utter_[A-Za-z0-9_]+):")
LAST = "said by actions and channels"
REGISTER_PREFIX = "written_"

# One section: the topic file's stem (None for the last section) and its responses in order.
Section = Tuple[str | None, List[str]]


def topic_files(nlu_dir: Path) -> List[str]:
    """The topic files of data/nlu in `ls` order (stems): no registers, no intent-less files."""
    topics = []
    for path in sorted(nlu_dir.glob("*.yml")):
        if path.stem.startswith(REGISTER_PREFIX):
            continue
        entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []
        if any(isinstance(entry, dict) and "intent" in entry for entry in entries):
            topics.append(path.stem)
    return topics


def intent_topics(nlu_dir: Path, topics: List[str]) -> Dict[str, Set[str]]:
    """Each intent and the topic files that define it."""
    found: Dict[str, Set[str]] = {}
    for stem in topics:
        doc = yaml.safe_load((nlu_dir / f"{stem}.yml").read_text(encoding="utf-8"))
        for entry in doc.get("nlu") or []:
            if isinstance(entry, dict) and "intent" in entry:
                found.setdefault(str(entry["intent"]), set()).add(stem)
    return found


def uttered_after_intents(data_dir: Path) -> List[Tuple[str, str, str]]:
    """(intent, response, where) for each rule/story step `action: utter_…` after an intent."""
    pairs = []
    for path in sorted(data_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("rules", "stories"):
            for flow in doc.get(key) or []:
                steps = flow.get("steps") or []
                for before, after in pairwise(steps):
                    action = str(after.get("action", ""))
                    if "intent" in before and action.startswith("utter_"):
                        name = flow.get("rule") or flow.get("story")
                        pairs.append((str(before["intent"]), action, f"{path.name}: {name}"))
    return pairs


def sections_of(domain_text: str) -> Tuple[List[Section], List[str]]:
    """The sections of the `responses:` block, and the problems met while reading them."""
    lines = domain_text.splitlines()
    start = lines.index("responses:")
    sections: List[Section] = []
    problems: List[str] = []
    previous_header = False
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if re.match(r"^\S", line):
            break  # the next top-level key
        header = HEADER.match(line)
        if header:
            if previous_header:
                problems.append(f"line {number}: a header right after another header")
            title = header.group("title")
            topic = TOPIC_FILE.search(title)
            if topic:
                sections.append((topic.group("stem"), []))
            elif title.startswith(LAST):
                sections.append((None, []))
            else:
                problems.append(f"line {number}: header names no data/nlu file: {line.strip()}")
            previous_header = True
            continue
        if line.strip():
            previous_header = False
        key = RESPONSE_KEY.match(line)
        if key:
            if not sections:
                problems.append(f"line {number}: {key.group('name')} comes before any header")
                continue
            sections[-1][1].append(key.group("name"))
    return sections, problems


def order_problems(sections: List[Section], topics: List[str]) -> List[str]:
    """Headers out of data/nlu's order, unknown topic files, or the last section not last."""
    problems = []
    stems = [stem for stem, _ in sections]
    if not stems or stems[-1] is not None or stems.count(None) != 1:
        problems.append(f"exactly one section '{LAST} …' must close the responses")
    named = [stem for stem in stems if stem is not None]
    problems += [f"data/nlu/{stem}.yml is not a topic file" for stem in named if stem not in topics]
    known = [stem for stem in named if stem in topics]
    positions = [topics.index(stem) for stem in known]
    if positions != sorted(set(positions)):
        problems.append(f"sections {known} are not in data/nlu's order {topics} (or repeat)")
    problems += [f"the section of {stem} is empty" for stem, names in sections if not names]
    return problems


def placement_problems(
    sections: List[Section],
    pairs: List[Tuple[str, str, str]],
    defined_in: Dict[str, Set[str]],
) -> List[str]:
    """Responses uttered right after an intent that lie outside that intent's file's section."""
    section_of: Dict[str, str | None] = {}
    for stem, names in sections:
        for name in names:
            section_of[name] = stem
    problems = []
    for intent, response, where in pairs:
        if response not in section_of:
            problems.append(f"{response} ({where}) is in no section")
            continue
        allowed: Set[str | None] = set(defined_in.get(intent, set())) or {None}
        if section_of[response] not in allowed:
            wanted = sorted(f"data/nlu/{s}.yml" for s in allowed if s) or [LAST]
            problems.append(
                f"{response} follows intent {intent} ({where}) but lies in the section of "
                f"{section_of[response] or LAST}, not {' or '.join(wanted)}"
            )
    return problems


@pytest.fixture(scope="module")
def domain_text() -> str:
    return (PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def topics() -> List[str]:
    return topic_files(PROJECT_ROOT / "data" / "nlu")


@pytest.fixture(scope="module")
def defined_in(topics: List[str]) -> Dict[str, Set[str]]:
    return intent_topics(PROJECT_ROOT / "data" / "nlu", topics)


@pytest.fixture(scope="module")
def pairs() -> List[Tuple[str, str, str]]:
    found = uttered_after_intents(PROJECT_ROOT / "data")
    assert found, "no rule utters a response after an intent: the check would check nothing"
    return found


def test_topic_files_are_found(topics: List[str]) -> None:
    assert {"consent", "conversation", "scheme"} <= set(topics)
    assert not [t for t in topics if t.startswith(REGISTER_PREFIX) or t == "synonyms"]


def test_sections_follow_data_nlu_order(domain_text: str, topics: List[str]) -> None:
    sections, problems = sections_of(domain_text)
    assert problems + order_problems(sections, topics) == []


def test_every_response_lies_in_a_section(domain_text: str) -> None:
    sections, _ = sections_of(domain_text)
    in_sections = [name for _, names in sections for name in names]
    responses = yaml.safe_load(domain_text)["responses"]
    assert sorted(in_sections) == sorted(responses)


def test_responses_after_an_intent_lie_in_its_files_section(
    domain_text: str, pairs: List[Tuple[str, str, str]], defined_in: Dict[str, Set[str]]
) -> None:
    sections, _ = sections_of(domain_text)
    assert placement_problems(sections, pairs, defined_in) == []


# ---- the checks can fail ------------------------------------------------------------------


def _chunks(domain_text: str) -> Tuple[List[str], List[List[str]]]:
    """The lines up to the first header, then one list of lines per section."""
    lines = domain_text.splitlines()
    first = next(i for i, line in enumerate(lines) if HEADER.match(line))
    chunks: List[List[str]] = []
    for line in lines[first:]:
        if HEADER.match(line):
            chunks.append([])
        chunks[-1].append(line)
    return lines[:first], chunks


def _stem(chunk: List[str]) -> str | None:
    """The topic file a section's header names, or None for the last section."""
    topic = TOPIC_FILE.search(chunk[0])
    return topic.group("stem") if topic else None


def test_two_swapped_sections_are_found(domain_text: str, topics: List[str]) -> None:
    head, chunks = _chunks(domain_text)
    chunks[0], chunks[1] = chunks[1], chunks[0]
    swapped = "\n".join(head + [line for chunk in chunks for line in chunk])
    assert yaml.safe_load(swapped) == yaml.safe_load(domain_text)  # the same domain, reordered
    sections, problems = sections_of(swapped)
    assert problems == []
    assert any("not in data/nlu's order" in p for p in order_problems(sections, topics))


def test_a_missing_or_misplaced_last_section_is_found(domain_text: str, topics: List[str]) -> None:
    head, chunks = _chunks(domain_text)
    moved = chunks[-1:] + chunks[:-1]
    text = "\n".join(head + [line for chunk in moved for line in chunk])
    sections, _ = sections_of(text)
    assert any("must close the responses" in p for p in order_problems(sections, topics))


def test_a_response_in_another_topics_section_is_found(
    domain_text: str, pairs: List[Tuple[str, str, str]], defined_in: Dict[str, Set[str]]
) -> None:
    intent, response, _ = pairs[0]
    head, chunks = _chunks(domain_text)
    home = next(i for i, chunk in enumerate(chunks) if f"  {response}:" in chunk)
    allowed = defined_in.get(intent, set())
    other = next(
        i
        for i, chunk in enumerate(chunks)
        if i != home and _stem(chunk) is not None and _stem(chunk) not in allowed
    )
    # Cut the response's block (its key and the indented lines under it) and paste it into
    # the other section, right under the header.
    block_start = chunks[home].index(f"  {response}:")
    block_end = block_start + 1
    while block_end < len(chunks[home]) and chunks[home][block_end].startswith("    "):
        block_end += 1
    block = chunks[home][block_start:block_end]
    del chunks[home][block_start:block_end]
    chunks[other][1:1] = block
    text = "\n".join(head + [line for chunk in chunks for line in chunk])
    assert yaml.safe_load(text) == yaml.safe_load(domain_text)
    sections, _ = sections_of(text)
    assert any(
        p.startswith(f"{response} follows intent {intent}")
        for p in placement_problems(sections, pairs, defined_in)
    )
