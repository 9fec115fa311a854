"""What several vision workers share through the database: stored files (photos, crops),
and posts claimed with `SELECT … FOR UPDATE SKIP LOCKED`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from bot.storage import _convert
from bot.storage._problems_schema import PostRetryRow
from bot.storage._schema import PhotoRow, PostPhotoRow, PostRow
from bot.storage._worker_schema import StoredFileRow, VisionRunRow
from bot.storage.records import PhotoState, Post, PostState

__all__ = [
    "VISION_READY_STAGE",
    "claim_post_for_vision",
    "count_vision_runs",
    "put_stored_file",
    "read_stored_file",
    "record_vision_run",
]

#: `posts.stage` after the text stage: the post waits for the vision stage (its photos may
#: still be pending: with workers, the worker downloads them).
VISION_READY_STAGE = "text"


def put_stored_file(session: Session, name: str, data: bytes, *, now: datetime) -> None:
    """Write (or overwrite) the file `name` in one statement: two workers storing the same
    photo at once (a post and its repost) must not collide on the name."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = {"name": name, "data": data, "bytes": len(data), "created_at": now}
    statement = insert(StoredFileRow).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[StoredFileRow.name],
        set_={
            "data": statement.excluded.data,
            "bytes": statement.excluded.bytes,
            "created_at": statement.excluded.created_at,
        },
    )
    session.execute(statement)


def read_stored_file(session: Session, name: str) -> bytes:
    """The bytes of file `name`; FileNotFoundError when there is none."""
    data = session.scalar(select(StoredFileRow.data).where(StoredFileRow.name == name))
    if data is None:
        raise FileNotFoundError(f"no stored file {name!r} in the database")
    return bytes(data)


def claim_post_for_vision(
    session: Session, *, now: datetime | None = None, photo_retry_after: timedelta | None = None
) -> Post | None:
    """Lock the oldest post that waits for the vision stage, skipping posts other workers
    hold and, given `now`, posts whose next look after a local error is not due yet and
    posts with a photo whose download failed less than `photo_retry_after` ago (it is tried
    again after that, as the poll cycle of a single process would). The claiming worker
    downloads the photos still pending. The lock lasts until `session` ends: a worker that
    dies mid-post drops its connection, and the post is free to be claimed again."""
    conditions = [
        PostRow.state == PostState.PROCESSING,
        PostRow.stage == VISION_READY_STAGE,
    ]
    if now is not None:
        conditions.append(
            ~exists().where(PostRetryRow.post_id == PostRow.id, PostRetryRow.next_attempt_at > now)
        )
        if photo_retry_after is not None:
            conditions.append(
                ~exists().where(
                    PostPhotoRow.post_id == PostRow.id,
                    PhotoRow.id == PostPhotoRow.photo_id,
                    PhotoRow.state == PhotoState.PENDING,
                    PhotoRow.attempts > 0,
                    PhotoRow.updated_at > now - photo_retry_after,
                )
            )
    row = session.scalars(
        select(PostRow)
        .where(*conditions)
        .order_by(PostRow.date, PostRow.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=PostRow)
    ).first()
    return None if row is None else _convert.post(row)


def record_vision_run(session: Session, post_pk: int, worker: str, *, now: datetime) -> None:
    session.add(VisionRunRow(post_id=post_pk, worker=worker[:128], finished_at=now))
    session.flush()


def count_vision_runs(session: Session) -> dict[int, int]:
    """Finished vision runs per post id."""
    rows = session.execute(
        select(VisionRunRow.post_id, func.count()).group_by(VisionRunRow.post_id)
    )
    return {post_id: count for post_id, count in rows}
