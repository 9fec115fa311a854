"""The review desk's storage: which pairs the queue holds and why, decisions, confirmed
identities, and the refit of the calibration from reviews; plus the `users` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from bot import storage
from bot.review_calibration import ReviewCalibrationError, refit_with_reviews
from bot.storage import pipeline as store
from bot.storage import reviews
from tests.bot._web_world import SEED_NOW, WebWorld, build_world


@pytest.fixture
def world(fake_vk: Any, database_url: str, tmp_path: Any) -> Iterator[WebWorld]:
    built = build_world(fake_vk, database_url, tmp_path / "var")
    yield built
    built.sessions.kw["bind"].dispose()


def _queue(session: Any, **overrides: Any) -> dict[int, reviews.Bucket]:
    args = {"review_threshold": 0.3, "sample_every": 1, "user_id": None, **overrides}
    items, total = reviews.review_queue(session, **args)
    assert total == len(items)
    return {item.match.id: item.bucket for item in items}


def _accept(session: Any, match_id: int) -> store.MatchRecord:
    m = store.get_match(session, match_id)
    return store.upsert_match(
        session, lost_case_id=m.lost_case_id, found_case_id=m.found_case_id,
        lost_post_pk=m.lost_post_pk, found_post_pk=m.found_post_pk,
        lost_photo_position=m.lost_photo_position, found_photo_position=m.found_photo_position,
        similarity=m.similarity, confidence=m.confidence, accepted=True, reasons=m.reasons,
        model_id=m.model_id, now=SEED_NOW,
    )


def _comment(session: Any, match: store.MatchRecord, state: store.CommentState) -> None:
    store.create_comment(
        session, match, owner_id=-1, post_id=match.id, guid=f"{match.id:032d}", text="t",
        state=state, reason="r", now=SEED_NOW,
    )


def test_the_queue_holds_uncertain_held_and_sampled_pairs(world: WebWorld) -> None:
    ryzhik, sharik, murka = (world.matches[k] for k in ("ryzhik", "sharik", "murka"))
    with storage.session_scope(world.sessions) as session:
        _comment(session, _accept(session, ryzhik), store.CommentState.SHADOW)
        _comment(session, _accept(session, sharik), store.CommentState.POSTED)
        assert _queue(session) == {
            ryzhik: reviews.Bucket.HELD,
            sharik: reviews.Bucket.SAMPLE,
            murka: reviews.Bucket.UNCERTAIN,
        }
        # One automatic comment in N is sampled; below the review threshold is not shown.
        assert sharik not in _queue(session, sample_every=10**6)
        assert murka not in _queue(session, review_threshold=0.9999)


def test_a_resolved_case_leaves_the_queue(world: WebWorld) -> None:
    murka = world.matches["murka"]
    with storage.session_scope(world.sessions) as session:
        match = store.get_match(session, murka)
        store.resolve_case(session, match.lost_case_id, match.lost_post_pk, now=SEED_NOW)
        assert murka not in _queue(session)


def test_held_comment_states_other_than_posted_or_pending_are_held(world: WebWorld) -> None:
    ryzhik = world.matches["ryzhik"]
    with storage.session_scope(world.sessions) as session:
        _comment(session, _accept(session, ryzhik), store.CommentState.PENDING)
        assert ryzhik not in _queue(session)  # going out now: nothing for a person to do


def test_decisions_confirmed_identities_and_reviewed_pairs(world: WebWorld) -> None:
    with storage.session_scope(world.sessions) as session:
        anna = reviews.find_user(session, "anna")
        boss = reviews.find_user(session, "boss")
        ryzhik = store.get_match(session, world.matches["ryzhik"])
        sharik = store.get_match(session, world.matches["sharik"])
        uncertain = reviews.Bucket.UNCERTAIN
        reviews.record_review(session, ryzhik, user=anna, decision=reviews.Decision.SKIP,
                              bucket=uncertain, now=SEED_NOW)
        assert reviews.latest_decision(session, ryzhik.id) is None
        assert ryzhik.id not in _queue(session, user_id=anna.id)  # skipped: not for anna
        assert ryzhik.id in _queue(session, user_id=boss.id)
        reviews.record_review(session, ryzhik, user=boss, decision=reviews.Decision.SAME_MANUAL,
                              bucket=uncertain, now=SEED_NOW)
        reviews.record_review(session, sharik, user=boss, decision=reviews.Decision.DIFFERENT,
                              bucket=uncertain, now=SEED_NOW)
        assert ryzhik.id not in _queue(session, user_id=boss.id)
        groups = reviews.confirmed_case_groups(session)
        photos = reviews.confirmed_pair_photos(session)
        pairs = reviews.reviewed_pairs(session, model_id=ryzhik.model_id)
        assert reviews.reviewed_pairs(session, model_id="another-model") == []
    assert groups == [sorted([ryzhik.lost_case_id, ryzhik.found_case_id])]
    assert [name for name, _ in photos] == [f"pair-{min(groups[0])}"]
    assert len(photos[0][1]) == 2 and all(p.is_file() for p in photos[0][1])
    assert sorted((m, same) for m, _, same in pairs) == sorted(
        [(ryzhik.id, True), (sharik.id, False)]
    )


def test_removing_an_account_keeps_its_decisions(world: WebWorld) -> None:
    with storage.session_scope(world.sessions) as session:
        anna = reviews.find_user(session, "anna")
        match = store.get_match(session, world.matches["murka"])
        reviews.record_review(session, match, user=anna, decision=reviews.Decision.DIFFERENT,
                              bucket=reviews.Bucket.UNCERTAIN, now=SEED_NOW)
        assert reviews.remove_user(session, "anna")
        assert not reviews.remove_user(session, "anna")
    with storage.session_scope(world.sessions) as session:
        (review,) = reviews.reviews_of_match(session, match.id)
    assert review.reviewer == "anna" and review.user_id is None


# ---- calibration from reviews ----------------------------------------------------------------


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.2
    sims = np.where(same, rng.normal(0.8, 0.08, n), rng.normal(0.45, 0.1, n)).clip(-1, 1)
    return sims, same


@pytest.fixture
def current() -> Any:
    from reid.calibration import fit_calibration

    sims, same = _synthetic(2000, 1)
    return fit_calibration(sims, same, model_id="m@1", target_precision=0.95)


def test_refit_refuses_too_few_or_one_sided_reviews(current: Any) -> None:
    fit_sims, fit_same = _synthetic(500, 2)
    few = [(i, 0.7, i % 2 == 0) for i in range(49)]
    with pytest.raises(ReviewCalibrationError, match=r"49 reviewed pairs.*at least 50"):
        refit_with_reviews(current, few, fit_sims, fit_same)
    one_sided = [(i, 0.7, True) for i in range(80)]
    with pytest.raises(ReviewCalibrationError, match="both answers"):
        refit_with_reviews(current, one_sided, fit_sims, fit_same)


def test_refit_combines_reviews_with_the_fitting_pairs_and_judges_on_held_back(
    current: Any,
) -> None:
    fit_sims, fit_same = _synthetic(500, 3)
    # Reviews from the uncertain band: above 0.68 they are the same animal, below not.
    band = np.linspace(0.55, 0.8, 120)
    reviewed = [(i, float(s), bool(s > 0.68)) for i, s in enumerate(band)]
    refit, report = refit_with_reviews(current, reviewed, fit_sims, fit_same, holdout_percent=30)
    assert report["reviewed"] == 120 and report["fit_reviews"] + report["held_back"] == 120
    assert 20 <= report["held_back"] <= 55
    assert refit.pairs == fit_sims.size + report["fit_reviews"]
    assert refit.model_id == current.model_id and refit.method == current.method
    for side in ("before", "after"):
        assert set(report[side]) >= {"threshold", "precision", "recall", "different_above"}
    assert report["after"]["precision"] is not None and report["after"]["precision"] >= 0.9


# ---- the users commands ------------------------------------------------------------------------


def test_users_add_list_remove(database_url: str, tmp_path: Any, monkeypatch: Any) -> None:
    from bot.cli import app

    monkeypatch.setenv("PETMATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("PETMATCH_VAR_DIR", str(tmp_path / "var"))
    secret = tmp_path / "pw"
    secret.write_text("a long enough password\n")
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "anna", "--role", "admin",
                                "--password-file", str(secret)])
    assert added.exit_code == 0, added.output
    again = runner.invoke(app, ["users", "add", "anna", "--password-file", str(secret)])
    assert again.exit_code == 1 and "already exists" in again.output
    bad_role = runner.invoke(app, ["users", "add", "bob", "--role", "king"])
    assert bad_role.exit_code == 1 and "admin or volunteer" in bad_role.output
    short = runner.invoke(app, ["users", "add", "bob"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    listed = runner.invoke(app, ["users", "list", "--json"])
    (row,) = json.loads(listed.output)
    assert (row["name"], row["role"]) == ("anna", "admin")
    assert "password" not in listed.output
    assert runner.invoke(app, ["users", "remove", "anna"]).exit_code == 0
    missing = runner.invoke(app, ["users", "remove", "anna"])
    assert missing.exit_code == 1 and "no account" in missing.output


def test_calibrate_from_reviews_refuses_without_enough_reviews(
    database_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """Too few reviews: one clear line, before any photo of the fitting set is embedded."""
    from bot.cli import app
    from reid import efficientnet_lite0_path

    models_dir = Path(__file__).resolve().parents[2] / "var" / "models"
    if not efficientnet_lite0_path(models_dir).is_file():
        pytest.skip(f"needs the exported EfficientNet-Lite0 in {models_dir} (models prepare)")
    monkeypatch.setenv("PETMATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("PETMATCH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("PETMATCH_MODELS_DIR", str(models_dir))
    result = CliRunner().invoke(app, ["calibrate", "--from-reviews", "--dry-run"])
    assert result.exit_code == 1
    assert "0 reviewed pairs" in result.output and "at least 50" in result.output


def test_records_are_frozen(world: WebWorld) -> None:
    with storage.session_scope(world.sessions) as session:
        user = reviews.find_user(session, "anna")
    with pytest.raises(AttributeError):
        user.name = "eve"  # type: ignore[misc]
    assert replace(user, name="eve").name == "eve"


def test_dataset_from_reviews_says_when_nothing_is_confirmed(
    database_url: str, tmp_path: Any, monkeypatch: Any
) -> None:
    from bot.cli import app

    monkeypatch.setenv("PETMATCH_DATABASE_URL", database_url)
    monkeypatch.setenv("PETMATCH_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    result = runner.invoke(app, ["dataset", "build", "--from-reviews", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no confirmed pairs yet" in result.output
    both = runner.invoke(app, ["dataset", "build", "--from-reviews", "--from-db",
                               "--out", str(tmp_path)])
    assert both.exit_code == 1 and "exactly one of" in both.output
