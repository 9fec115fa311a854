"""Vision workers: shared files in the database, and a record of each post's vision run.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=False)  # naive UTC; bot.storage converts


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "vision_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "post_id",
            sa.Integer,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("finished_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vision_runs")
    op.drop_table("stored_files")
