"""Ingestion tables: groups, cases, posts, photos, post_photos, vk_calls, pauses.

Later migrations (animals, matches, comments) come from the stages that need them.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=False)  # naive UTC; bot.storage converts


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vk_id", sa.BigInteger, nullable=False),
        sa.Column("screen_name", sa.String(255), nullable=False),
        sa.Column("title", sa.String(1024), nullable=False),
        sa.Column("city", sa.String(255)),
        sa.Column("comments_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("shadow_mode", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("cursor_post_id", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_polled_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("accessible", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("inaccessible_since", TS),
        sa.Column("next_check_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("vk_id", name="uq_groups_vk_id"),
        sa.CheckConstraint("vk_id > 0", name="ck_groups_vk_id_positive"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("origin_owner_id", sa.BigInteger, nullable=False),
        sa.Column("origin_post_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("origin_owner_id", "origin_post_id", name="uq_cases_origin"),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.BigInteger, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("date", TS, nullable=False),
        sa.Column("edited", TS),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("is_pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("marked_as_ads", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("can_comment", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("origin_owner_id", sa.BigInteger),
        sa.Column("origin_post_id", sa.BigInteger),
        sa.Column(
            "case_id",
            sa.Integer,
            sa.ForeignKey("cases.id", name="fk_posts_case", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("owner_id", "post_id", name="uq_posts_owner_post"),
        sa.CheckConstraint(
            "(origin_owner_id IS NULL) = (origin_post_id IS NULL)", name="ck_posts_origin_pair"
        ),
    )
    op.create_index("ix_posts_case_id", "posts", ["case_id"])
    op.create_index("ix_posts_state", "posts", ["state"])
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("vk_owner_id", sa.BigInteger, nullable=False),
        sa.Column("vk_photo_id", sa.BigInteger, nullable=False),
        sa.Column("source_url", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("phash", sa.String(16)),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("bytes", sa.Integer),
        sa.Column("file_path", sa.Text),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "duplicate_of",
            sa.Integer,
            sa.ForeignKey("photos.id", name="fk_photos_duplicate_of", ondelete="SET NULL"),
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("vk_owner_id", "vk_photo_id", name="uq_photos_vk"),
        sa.UniqueConstraint("sha256", name="uq_photos_sha256"),
        sa.CheckConstraint(
            "state IN ('pending', 'stored', 'failed', 'merged')", name="ck_photos_state"
        ),
        sa.CheckConstraint(
            "(state = 'stored') = (sha256 IS NOT NULL)", name="ck_photos_stored_has_sha"
        ),
    )
    op.create_index("ix_photos_state", "photos", ["state"])
    op.create_index("ix_photos_phash", "photos", ["phash"])
    op.create_index("ix_photos_duplicate_of", "photos", ["duplicate_of"])
    op.create_table(
        "post_photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "post_id",
            sa.Integer,
            sa.ForeignKey("posts.id", name="fk_post_photos_post", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "photo_id",
            sa.Integer,
            sa.ForeignKey("photos.id", name="fk_post_photos_photo", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.UniqueConstraint("post_id", "position", name="uq_post_photos_position"),
        sa.UniqueConstraint("post_id", "photo_id", name="uq_post_photos_photo"),
    )
    op.create_index("ix_post_photos_photo_id", "post_photos", ["photo_id"])
    op.create_table(
        "vk_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("day", "method", name="uq_vk_calls_day_method"),
    )
    op.create_table(
        "pauses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("until", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_pauses_scope", "pauses", ["scope"])


def downgrade() -> None:
    op.drop_table("pauses")
    op.drop_table("vk_calls")
    op.drop_table("post_photos")
    op.drop_table("photos")
    op.drop_table("posts")
    op.drop_table("cases")
    op.drop_table("groups")
