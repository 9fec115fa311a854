"""A pair whose two texts contradict each other (sex, solid colour) is never commented on
automatically: its confidence is lowered and the reason named. Written posts, not real ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import storage
from bot.pipeline import Pipeline
from bot.polling import poll_cycle
from bot.storage import pipeline as store
from tests.bot._fake_vision import add_groups, animal_jpeg, fake_vision, pipeline_settings

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, outside quiet hours
LOST, FOUND = 711, 712


def _run(fake_vk, sessions, database_url, tmp_path, lost_text: str, found_text: str):
    add_groups(fake_vk, sessions, {LOST: "Москва", FOUND: "Москва"}, now=NOW)
    fake_vk.add_post(
        LOST,
        text=lost_text,
        date=int((NOW - timedelta(hours=30)).timestamp()),
        photos=[animal_jpeg("murka")],
    )
    fake_vk.add_post(
        FOUND,
        text=found_text,
        date=int((NOW - timedelta(hours=2)).timestamp()),
        photos=[animal_jpeg("murka", shift=5)],
    )
    settings = pipeline_settings(fake_vk, database_url, tmp_path / "var")
    from tests.bot.fakevk_fixtures import open_gateway

    with open_gateway(settings.vk) as gateway:
        poll_cycle(sessions, gateway, settings, now=NOW)
        Pipeline(settings, sessions, gateway, vision=fake_vision()).process_pending(now=NOW)
    with storage.session_scope(sessions) as session:
        return store.list_matches(session)


def test_agreeing_texts_leave_the_pair_to_the_photos(fake_vk, sessions, database_url, tmp_path):
    matches = _run(
        fake_vk,
        sessions,
        database_url,
        tmp_path,
        "Пропала кошка, девочка, рыжая, Москва",
        "Нашли кошку, девочка, рыжая, Москва, ищем хозяев",
    )
    assert any(m.accepted for m in matches)
    assert len(fake_vk.comments) == 1


@pytest.mark.parametrize(
    ("lost_text", "found_text", "named"),
    [
        (
            "Пропал кот, мальчик, рыжий, Москва",
            "Нашли кошку, девочка, рыжая, Москва, ищем хозяев",
            "sex",
        ),
        (
            "Пропала кошка, чёрная, Москва",
            "Нашли кошку, белая, Москва, ищем хозяев",
            "colour",
        ),
    ],
)
def test_contradicting_texts_are_never_commented_automatically(
    fake_vk, sessions, database_url, tmp_path, lost_text, found_text, named
):
    matches = _run(fake_vk, sessions, database_url, tmp_path, lost_text, found_text)
    assert matches and not any(m.accepted for m in matches)
    assert fake_vk.comments == []
    best = max(matches, key=lambda m: m.confidence)
    assert any(f"disagree on {named}" in r for r in best.reasons)
    assert any("not commented automatically" in r for r in best.reasons)
