"""ORM models of the pipeline tables (migration 0002). Rows never leave `bot.storage`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage._schema import Base, UtcDateTime


class PostLabelRow(Base):
    __tablename__ = "post_labels"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), index=True)
    species: Mapped[str] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(255))
    city_source: Mapped[str] = mapped_column(String(16))
    district: Mapped[str | None] = mapped_column(String(255))
    evidence: Mapped[str] = mapped_column(Text)
    labelled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CaseResolutionRow(Base):
    __tablename__ = "case_resolutions"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    resolved_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SegmentationRow(Base):
    __tablename__ = "segmentations"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    backend: Mapped[str] = mapped_column(String(64))
    animals: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AnimalRow(Base):
    __tablename__ = "animals"
    __table_args__ = (UniqueConstraint("photo_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    species: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[str] = mapped_column(String(64))
    crop_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EmbeddingRow(Base):
    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("animal_id", "model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    animal_id: Mapped[int] = mapped_column(ForeignKey("animals.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MatchRow(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("lost_case_id", "found_case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lost_case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    found_case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    lost_post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    found_post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    lost_photo_position: Mapped[int] = mapped_column(Integer)
    found_photo_position: Mapped[int] = mapped_column(Integer)
    similarity: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float, index=True)  # 0006: the review queue
    accepted: Mapped[bool] = mapped_column(Boolean, index=True)
    reasons: Mapped[str] = mapped_column(Text)
    model_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CommentRow(Base):
    __tablename__ = "comments"
    __table_args__ = (UniqueConstraint("lost_case_id", "found_case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), unique=True)
    lost_case_id: Mapped[int] = mapped_column(Integer)
    found_case_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[int] = mapped_column(BigInteger)
    guid: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text)
    vk_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
