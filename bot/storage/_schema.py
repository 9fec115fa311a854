"""ORM models. Alembic owns the schema (`bot/migrations/versions`); these mirror it.

Rows never leave `bot.storage`: public functions return the frozen records of `records.py`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL gets the same."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vk_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    screen_name: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(1024))
    city: Mapped[str | None] = mapped_column(String(255))
    comments_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    shadow_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor_post_id: Mapped[int] = mapped_column(BigInteger, default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    accessible: Mapped[bool] = mapped_column(Boolean, default=True)
    inaccessible_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str | None] = mapped_column(String(8))  # lost | found | mixed (NULL)


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("origin_owner_id", "origin_post_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin_owner_id: Mapped[int] = mapped_column(BigInteger)
    origin_post_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("owner_id", "post_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[int] = mapped_column(BigInteger)
    date: Mapped[datetime] = mapped_column(UtcDateTime)
    edited: Mapped[datetime | None] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text, default="")
    is_pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    marked_as_ads: Mapped[bool] = mapped_column(Boolean, default=False)
    can_comment: Mapped[bool] = mapped_column(Boolean, default=True)
    origin_owner_id: Mapped[int | None] = mapped_column(BigInteger)
    origin_post_id: Mapped[int | None] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    stage: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PhotoRow(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("vk_owner_id", "vk_photo_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vk_owner_id: Mapped[int] = mapped_column(BigInteger)
    vk_photo_id: Mapped[int] = mapped_column(BigInteger)
    source_url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    phash: Mapped[str | None] = mapped_column(String(16), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(Integer)
    file_path: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("photos.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PostPhotoRow(Base):
    __tablename__ = "post_photos"
    __table_args__ = (
        UniqueConstraint("post_id", "position"),
        UniqueConstraint("post_id", "photo_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer)


class VkCallRow(Base):
    __tablename__ = "vk_calls"
    __table_args__ = (UniqueConstraint("day", "method"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)


class PauseRow(Base):
    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(128), index=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
