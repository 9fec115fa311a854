"""Partial failures: malformed items skipped while polling (`problems`) and posts whose
processing could not look at their photos yet (`post_retries`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=False)  # naive UTC; bot.storage converts


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("group_vk_id", sa.BigInteger, index=True),
        sa.Column("owner_id", sa.BigInteger),
        # The item's id as VK sent it: it may be no integer at all.
        sa.Column("post_ref", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("excerpt", sa.Text, nullable=False),
        # The same bad item read again (a pinned post, an edit) is counted, not repeated.
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("seen_count", sa.Integer, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )
    op.create_table(
        "post_retries",
        sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False, index=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("post_retries")
    op.drop_table("problems")
