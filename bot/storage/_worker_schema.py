"""ORM models of the worker tables (migration 0005). Rows never leave `bot.storage`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage._schema import Base, UtcDateTime


class StoredFileRow(Base):
    """A photo or crop kept in the database, so every machine reads what another wrote."""

    __tablename__ = "stored_files"

    name: Mapped[str] = mapped_column(String(512), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VisionRunRow(Base):
    """One finished vision stage: which worker finished which post, and when."""

    __tablename__ = "vision_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str] = mapped_column(String(128))
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime)
