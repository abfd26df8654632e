"""The topics of the health notices (notice_topics.yml beside the offers catalogue)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from consent_service.notices.tables import NoticeTopic

FILE_NAME = "notice_topics.yml"
# LINE's limit on one text message; the sender appends the stop line to every notice.
MAX_STOP_LINE = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoticeTopicSpec(_Strict):
    """One topic residents may subscribe to."""

    topic_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title_ja: str = Field(min_length=1, max_length=100)
    description_ja: str = Field(min_length=1, max_length=500)
    max_per_month: int = Field(ge=1, le=31)
    sort_order: int = 0


class NoticeTopicsSpec(_Strict):
    """The whole notice_topics.yml."""

    stop_line_ja: str = Field(min_length=1, max_length=MAX_STOP_LINE)
    topics: list[NoticeTopicSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> NoticeTopicsSpec:
        ids = [t.topic_id for t in self.topics]
        if len(ids) != len(set(ids)):
            raise ValueError("notice topics: a topic_id is listed twice")
        return self


def topics_path(catalog_path: Path) -> Path:
    """The topics file that belongs to a catalogue file (beside it)."""
    return catalog_path.parent / FILE_NAME


def read_topics(path: Path) -> NoticeTopicsSpec:
    """Read and validate a notice_topics.yml.

    Args:
        path: The YAML file.

    Returns:
        The topics and the stop line.
    """
    return NoticeTopicsSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_topics(session: Session, path: Path) -> NoticeTopicsSpec:
    """Insert or update the topics, inside the caller's transaction (none is deleted).

    Args:
        session: The open session.
        path: The YAML file.

    Returns:
        What was loaded.
    """
    spec = read_topics(path)
    for topic in spec.topics:
        session.merge(
            NoticeTopic(
                topic_id=topic.topic_id,
                title_ja=topic.title_ja,
                description_ja=topic.description_ja,
                max_per_month=topic.max_per_month,
                sort_order=topic.sort_order,
            )
        )
    session.flush()
    return spec
