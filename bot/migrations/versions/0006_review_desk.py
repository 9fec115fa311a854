"""Review desk: desk accounts, the reviewers' decisions on candidate pairs, and an index
that lets the queue take its most promising pairs first.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=False)  # naive UTC; bot.storage converts


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("match_id", sa.Integer, sa.ForeignKey("matches.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("lost_case_id", sa.Integer, nullable=False),
        sa.Column("found_case_id", sa.Integer, nullable=False),
        # The reviewer's name stays when the account is removed: who decided is history.
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False, index=True),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("similarity", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False, index=True),
    )
    op.create_index("ix_matches_confidence", "matches", ["confidence"])


def downgrade() -> None:
    op.drop_index("ix_matches_confidence", table_name="matches")
    op.drop_table("reviews")
    op.drop_table("users")
