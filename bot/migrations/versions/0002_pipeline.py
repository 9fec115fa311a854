"""Pipeline tables: post labels, case resolutions, segmentations, animals, embeddings,
matches and comments.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=False)  # naive UTC; bot.storage converts


def upgrade() -> None:
    op.create_table(
        "post_labels",
        sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("species", sa.String(16), nullable=False),
        sa.Column("city", sa.String(255)),
        sa.Column("city_source", sa.String(16), nullable=False),
        sa.Column("district", sa.String(255)),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("labelled_at", TS, nullable=False),
    )
    op.create_table(
        "case_resolutions",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("resolved_at", TS, nullable=False),
    )
    op.create_table(
        "segmentations",
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("animals", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "animals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, sa.ForeignKey("photos.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("species", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("box", sa.String(64), nullable=False),
        sa.Column("crop_path", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("photo_id", "position"),
    )
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("animal_id", sa.Integer, sa.ForeignKey("animals.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False, index=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("animal_id", "model_id"),
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("lost_case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("found_case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("lost_post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("found_post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("lost_photo_position", sa.Integer, nullable=False),
        sa.Column("found_photo_position", sa.Integer, nullable=False),
        sa.Column("similarity", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False, index=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("lost_case_id", "found_case_id"),
        sa.CheckConstraint("lost_case_id <> found_case_id", name="ck_matches_two_cases"),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("match_id", sa.Integer, sa.ForeignKey("matches.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        # Once per (lost case, found case) pair, ever: the database refuses a second one.
        sa.Column("lost_case_id", sa.Integer, nullable=False),
        sa.Column("found_case_id", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("guid", sa.String(64), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("vk_comment_id", sa.BigInteger),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("posted_at", TS),
        sa.UniqueConstraint("lost_case_id", "found_case_id"),
    )


def downgrade() -> None:
    for table in (
        "comments", "matches", "embeddings", "animals", "segmentations",
        "case_resolutions", "post_labels",
    ):
        op.drop_table(table)
