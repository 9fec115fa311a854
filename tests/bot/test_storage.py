"""The storage contract, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import storage
from bot.storage import (
    AlreadyRunningError,
    DatabaseNotMigratedError,
    PhotoState,
    PostChange,
    PostState,
)
from bot.vk.models import PhotoRef, WallPost

GROUP = -100


def wall_post(post_id: int, *, owner_id: int = GROUP, photos: int = 0, **fields) -> WallPost:
    base = {
        "owner_id": owner_id,
        "post_id": post_id,
        "date": datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        "text": f"Пропала собака, пост {post_id}",
        "photos": tuple(
            PhotoRef(owner_id=owner_id, photo_id=post_id * 10 + i, url=f"http://x/{post_id}_{i}.jpg")
            for i in range(photos)
        ),
    }
    base.update(fields)
    return WallPost(**base)


# --- migrations -------------------------------------------------------------------------


def test_unmigrated_database_is_refused_until_upgraded(empty_database_url: str) -> None:
    engine = storage.open_database(empty_database_url)
    try:
        with pytest.raises(DatabaseNotMigratedError, match="run `petmatch db upgrade`"):
            storage.ensure_migrated(engine)
        assert storage.current_revision(engine) is None
        storage.upgrade_database(engine)
        storage.ensure_migrated(engine)
        assert storage.current_revision(engine) == storage.head_revision()
        storage.downgrade_database(engine, "base")
        with pytest.raises(DatabaseNotMigratedError):
            storage.ensure_migrated(engine)
    finally:
        engine.dispose()


def test_sqlite_file_gets_its_folder_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = storage.open_database(f"sqlite:///{tmp_path / 'deep' / 'var' / 'p.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (tmp_path / "deep" / "var" / "p.db").exists()
    finally:
        engine.dispose()


# --- groups -----------------------------------------------------------------------------


def test_group_upsert_find_and_remove(sessions: sessionmaker[Session], now: datetime) -> None:
    with storage.session_scope(sessions) as session:
        group, created = storage.upsert_group(
            session, vk_id=100, screen_name="poteryashki", title="Потеряшки", now=now, city="Москва"
        )
        assert created and group.owner_id == -100 and group.city == "Москва"
        assert not group.comments_enabled and group.cursor_post_id == 0
    with storage.session_scope(sessions) as session:
        again, created = storage.upsert_group(
            session, vk_id=100, screen_name="poteryashki2", title="П", now=now,
            comments_enabled=True,
        )
        assert not created and again.id == group.id
        assert again.city == "Москва" and again.comments_enabled
        assert again.screen_name == "poteryashki2"
        for ref in ("poteryashki2", "https://vk.com/poteryashki2", "100", "-100", "club100",
                    "https://vk.com/public100/"):
            found = storage.find_group(session, ref)
            assert found is not None and found.vk_id == 100, ref
        assert storage.find_group(session, "nobody") is None
        assert storage.remove_group(session, 100)
        assert not storage.remove_group(session, 100)
        assert storage.list_groups(session) == []


def test_duplicate_group_is_refused_by_the_database(sessions, now: datetime) -> None:
    session = sessions()
    try:
        storage.upsert_group(session, vk_id=7, screen_name="a", title="a", now=now)
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(
                text(
                    "INSERT INTO groups (vk_id, screen_name, title, created_at) "
                    "VALUES (7, 'b', 'b', :now)"
                ),
                {"now": now.replace(tzinfo=None)},
            )
            session.flush()
    finally:
        session.rollback()
        session.close()


def test_cursor_only_moves_forward_and_inaccessible_groups_wait(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        group, _ = storage.upsert_group(session, vk_id=5, screen_name="g", title="g", now=now)
        assert storage.advance_cursor(session, group.id, 50, now).cursor_post_id == 50
        assert storage.advance_cursor(session, group.id, 40, now).cursor_post_id == 50
        closed = storage.mark_group_inaccessible(
            session, group.id, "group is private", now, timedelta(hours=24)
        )
        assert not closed.accessible and closed.inaccessible_since == now
        assert closed.next_check_at == now + timedelta(hours=24)
        later = storage.mark_group_inaccessible(
            session, group.id, "still private", now + timedelta(hours=25), timedelta(hours=24)
        )
        assert later.inaccessible_since == now  # since when, not since the last check
        assert storage.groups_due(session, now + timedelta(hours=30)) == []
        assert [g.vk_id for g in storage.groups_due(session, now + timedelta(hours=50))] == [5]
        reopened = storage.advance_cursor(session, group.id, 60, now + timedelta(hours=50))
        assert reopened.accessible and reopened.next_check_at is None
        assert reopened.last_error is None


# --- posts and cases --------------------------------------------------------------------


def test_new_post_gets_a_case_and_pending_photos(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        post, change = storage.upsert_post(session, wall_post(1, photos=2), now=now)
        assert change is PostChange.NEW and post.state is PostState.PENDING
        assert post.date == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # aware UTC round trip
        photos = storage.photos_of_post(session, post.id)
        assert [p.vk_photo_id for p in photos] == [10, 11]
        assert all(p.state is PhotoState.PENDING for p in photos)
        again, change = storage.upsert_post(session, wall_post(1, photos=2), now=now)
        assert change is PostChange.UNCHANGED and again.id == post.id
        assert storage.count_posts(session) == 1
        assert storage.count_photos(session) == 2


def test_reposts_of_one_original_share_one_case(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        repost_a, _ = storage.upsert_post(
            session, wall_post(5, owner_id=-200, origin_owner_id=-100, origin_post_id=1), now=now
        )
        repost_b, _ = storage.upsert_post(
            session, wall_post(9, owner_id=-300, origin_owner_id=-100, origin_post_id=1), now=now
        )
        original, _ = storage.upsert_post(session, wall_post(1, owner_id=-100), now=now)
        other, _ = storage.upsert_post(session, wall_post(2, owner_id=-100), now=now)
        assert repost_a.case_id == repost_b.case_id == original.case_id != other.case_id
        assert {p.post_id for p in storage.posts_of_case(session, original.case_id)} == {1, 5, 9}


def test_edit_that_grows_resets_the_post_to_pending(sessions, now) -> None:
    first_edit = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    with storage.session_scope(sessions) as session:
        post, _ = storage.upsert_post(session, wall_post(1, photos=1), now=now)
        storage.set_post_state(session, post.id, PostState.DONE, now=now, stage="matching")
        edited, change = storage.upsert_post(
            session, wall_post(1, photos=2, edited=first_edit, text="Нашлась!"), now=now
        )
        assert change is PostChange.EDITED
        assert edited.state is PostState.PENDING and edited.stage is None
        assert edited.text == "Нашлась!" and edited.edited == first_edit
        assert len(storage.photos_of_post(session, post.id)) == 2
        same, change = storage.upsert_post(
            session, wall_post(1, photos=2, edited=first_edit, text="другое"), now=now
        )
        assert change is PostChange.UNCHANGED and same.text == "Нашлась!"
        assert [p.id for p in storage.pending_posts(session)] == [post.id]


def test_the_same_photo_twice_in_a_post_is_linked_once(sessions, now) -> None:
    ref = PhotoRef(owner_id=GROUP, photo_id=1, url="http://x/1.jpg")
    with storage.session_scope(sessions) as session:
        post, _ = storage.upsert_post(session, wall_post(1, photos=0).model_copy(
            update={"photos": (ref, ref)}), now=now)
        assert len(storage.photos_of_post(session, post.id)) == 1


def test_duplicate_post_is_refused_by_the_database(sessions, now) -> None:
    session = sessions()
    try:
        post, _ = storage.upsert_post(session, wall_post(1), now=now)
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(
                text(
                    "INSERT INTO posts (owner_id, post_id, date, text, case_id, state, "
                    "first_seen_at, updated_at) VALUES (:o, 1, :n, '', :c, 'pending', :n, :n)"
                ),
                {"o": GROUP, "n": now.replace(tzinfo=None), "c": post.case_id},
            )
    finally:
        session.rollback()
        session.close()


# --- photos -----------------------------------------------------------------------------


def stored(session: Session, photo_pk: int, sha: str, now: datetime, **extra):
    return storage.record_photo_stored(
        session, photo_pk, sha256=sha, phash="ffff0000ffff0000", width=10, height=20,
        size=123, file_path=Path(f"/photos/{sha}.jpg"), now=now, **extra,
    )


def test_identical_bytes_from_two_vk_photos_are_stored_once(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        a, _ = storage.upsert_post(session, wall_post(1, photos=1), now=now)
        b, _ = storage.upsert_post(session, wall_post(2, photos=2), now=now)
        pa = storage.photos_of_post(session, a.id)[0]
        pb0, pb1 = storage.photos_of_post(session, b.id)
        kept = stored(session, pa.id, "a" * 64, now)
        assert kept.state is PhotoState.STORED
        assert kept.file_path == Path("/photos/" + "a" * 64 + ".jpg")
        merged_into = stored(session, pb0.id, "a" * 64, now)
        assert merged_into.id == pa.id
        assert storage.get_photo(session, pb0.id).state is PhotoState.MERGED
        assert [p.id for p in storage.photos_of_post(session, b.id)] == [pa.id, pb1.id]
        # the post links to the survivor once even if it had both
        merged_again = stored(session, pb1.id, "a" * 64, now)
        assert merged_again.id == pa.id
        assert [p.id for p in storage.photos_of_post(session, b.id)] == [pa.id]
        assert storage.find_photo_by_sha256(session, "a" * 64).id == pa.id
        assert storage.stored_phashes(session) == [(pa.id, "ffff0000ffff0000")]
        assert [p.id for p in storage.pending_photos(session)] == []
        # a later post naming a merged VK photo links straight to the survivor
        c, _ = storage.upsert_post(session, wall_post(3).model_copy(update={"photos": (
            PhotoRef(owner_id=GROUP, photo_id=pb0.vk_photo_id, url="http://x/again.jpg"),)}),
            now=now)
        assert [p.id for p in storage.photos_of_post(session, c.id)] == [pa.id]


def test_duplicate_sha256_is_refused_by_the_database(sessions, now) -> None:
    session = sessions()
    try:
        a, _ = storage.upsert_post(session, wall_post(1, photos=2), now=now)
        p0, p1 = storage.photos_of_post(session, a.id)
        stored(session, p0.id, "b" * 64, now)
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(
                text("UPDATE photos SET sha256 = :s, state = 'stored' WHERE id = :i"),
                {"s": "b" * 64, "i": p1.id},
            )
    finally:
        session.rollback()
        session.close()


def test_photo_failures_retry_until_final(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        post, _ = storage.upsert_post(session, wall_post(1, photos=1), now=now)
        photo = storage.photos_of_post(session, post.id)[0]
        soft = storage.record_photo_failure(session, photo.id, "HTTP 503", now=now, final=False)
        assert soft.state is PhotoState.PENDING and soft.attempts == 1 and soft.error == "HTTP 503"
        hard = storage.record_photo_failure(session, photo.id, "not an image", now=now, final=True)
        assert hard.state is PhotoState.FAILED and hard.attempts == 2
        assert storage.pending_photos(session) == []
        assert storage.count_photos(session, PhotoState.FAILED) == 1


def test_near_duplicate_link_is_kept(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        post, _ = storage.upsert_post(session, wall_post(1, photos=2), now=now)
        p0, p1 = storage.photos_of_post(session, post.id)
        first = stored(session, p0.id, "c" * 64, now)
        second = stored(session, p1.id, "d" * 64, now, near_duplicate_of=first.id)
        assert second.duplicate_of == first.id and second.state is PhotoState.STORED


# --- VK usage and pauses ----------------------------------------------------------------


def test_vk_calls_accumulate_per_day_and_method(sessions, now) -> None:
    day = now.date()
    with storage.session_scope(sessions) as session:
        storage.add_vk_calls(session, day, {"execute": 2, "wall.get": 50})
        storage.add_vk_calls(session, day, {"execute": 1, "groups.getById": 0})
        storage.add_vk_calls(session, day + timedelta(days=1), {"execute": 7})
        counts = {c.method: c.count for c in storage.vk_calls_on(session, day)}
        assert counts == {"execute": 3, "wall.get": 50}


def test_pauses_expire(sessions, now) -> None:
    with storage.session_scope(sessions) as session:
        storage.add_pause(
            session, storage.WRITES_SCOPE, until=now + timedelta(hours=6), reason="captcha", now=now
        )
        scope = storage.method_scope("wall.get")
        storage.add_pause(session, scope, until=now + timedelta(hours=24), reason="29", now=now)
        assert storage.active_pause(session, "writes", now).reason == "captcha"
        assert storage.active_pause(session, "writes", now + timedelta(hours=7)) is None
        assert storage.active_pause(session, scope, now + timedelta(hours=7)).reason == "29"
        assert len(storage.active_pauses(session, now)) == 2


# --- single-instance lock ---------------------------------------------------------------


def test_second_instance_lock_is_refused(engine: Engine, tmp_path: Path) -> None:
    other = storage.open_database(engine.url.render_as_string(hide_password=False))
    try:
        with (
            storage.instance_lock(engine, lock_dir=tmp_path),
            pytest.raises(AlreadyRunningError),
            storage.instance_lock(other, lock_dir=tmp_path),
        ):
            pass
        with storage.instance_lock(other, lock_dir=tmp_path):
            pass  # released, so it can be taken again
    finally:
        other.dispose()
