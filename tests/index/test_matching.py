"""Matching: table-driven cases for time windows, distance, threshold and margin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from index import Candidate, PartitionKey
from index.matching import (
    AnimalHit,
    MatchPolicy,
    PostRef,
    decide,
    distance_factor,
    explain,
    hits_from_candidates,
    rank_post_candidates,
    time_factor,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# A simple monotone curve: similarity 0.5 → 0, 0.9 → 0.95, 1.0 → 1.
POLICY = MatchPolicy(
    threshold=0.8,
    margin=0.05,
    time_window_days=60,
    reverse_gap_days=2,
    max_distance_km=50,
    time_decay=0.1,
    distance_decay=0.1,
    curve_xs=(0.5, 0.9, 1.0),
    curve_ys=(0.0, 0.95, 1.0),
)
NO_DECAY = POLICY.model_copy(update={"time_decay": 0.0, "distance_decay": 0.0})


def post(post_id: str, kind: str, days: float = 0.0, animals: tuple[int, ...] = ()) -> PostRef:
    return PostRef(
        post_id=post_id, kind=kind, published_at=T0 + timedelta(days=days), animal_ids=animals
    )


def hit(q: int, c: int, post_id: str, sim: float) -> AnimalHit:
    return AnimalHit(
        query_animal_id=q, candidate_animal_id=c, candidate_post_id=post_id, similarity=sim
    )


@pytest.mark.parametrize(
    ("found_after_lost_days", "excluded", "factor"),
    [
        (0.0, False, 1.0),
        (30.0, False, 0.95),
        (60.0, False, 0.9),
        (60.5, True, 0.0),
        (-1.0, False, 0.95),  # found posted a day before lost: within the reverse gap
        (-2.0, False, 0.9),
        (-2.5, True, 0.0),
        (-30.0, True, 0.0),
    ],
)
def test_time_window(found_after_lost_days, excluded, factor):
    got, gap, why = time_factor(T0, T0 + timedelta(days=found_after_lost_days), POLICY)
    assert gap == pytest.approx(found_after_lost_days)
    assert got == pytest.approx(factor)
    assert (why is not None) == excluded


@pytest.mark.parametrize(
    ("distance", "excluded", "factor"),
    [
        (0.0, False, 1.0),
        (25.0, False, 0.95),
        (50.0, False, 0.9),
        (51.0, True, 0.0),
        (None, False, 0.9),
    ],
)
def test_distance(distance, excluded, factor):
    got, why = distance_factor(distance, POLICY)
    assert got == pytest.approx(factor)
    assert (why is not None) == excluded


def test_curve_must_be_monotone():
    with pytest.raises(ValidationError, match="non-decreasing"):
        MatchPolicy(threshold=0.5, curve_xs=(0.0, 0.5, 1.0), curve_ys=(0.1, 0.9, 0.5))
    with pytest.raises(ValidationError, match="strictly increasing"):
        MatchPolicy(threshold=0.5, curve_xs=(0.0, 0.0), curve_ys=(0.1, 0.9))
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        MatchPolicy(threshold=0.5, curve_xs=(0.0, 1.0), curve_ys=(0.1, 1.5))


@pytest.mark.parametrize(
    ("similarity", "confidence"),
    [(0.2, 0.0), (0.5, 0.0), (0.7, 0.475), (0.9, 0.95), (0.95, 0.975), (1.0, 1.0)],
)
def test_confidence_interpolates_the_curve(similarity, confidence):
    assert POLICY.confidence(similarity) == pytest.approx(confidence)


# (case, candidate posts as (id, kind, days after the lost query, distance km, best sim),
#  expected accepted post or None, a phrase the deciding reasons must contain)
DECISIONS = [
    (
        "clear winner",
        [("f1", "found", 3, 2.0, 0.97), ("f2", "found", 3, 2.0, 0.7)],
        "f1",
        "≥ threshold",
    ),
    ("below threshold", [("f1", "found", 3, 2.0, 0.8)], None, "< threshold"),
    (
        "two look-alikes",
        [("f1", "found", 3, 2.0, 0.96), ("f2", "found", 3, 2.0, 0.95)],
        None,
        "margin",
    ),
    (
        "best one too late",
        [("f1", "found", 90, 2.0, 0.99), ("f2", "found", 3, 2.0, 0.95)],
        "f2",
        "≥ threshold",
    ),
    (
        "best one too far",
        [("f1", "found", 3, 300.0, 0.99), ("f2", "found", 3, 2.0, 0.6)],
        None,
        "< threshold",
    ),
    ("found long before lost", [("f1", "found", -10, 1.0, 0.99)], None, None),
    ("found just before lost", [("f1", "found", -1, 1.0, 0.99)], "f1", "the only candidate"),
    ("same kind never matches", [("l2", "lost", 1, 1.0, 0.99)], None, None),
    ("no candidates", [], None, None),
]


@pytest.mark.parametrize(
    ("case", "rows", "expected", "phrase"), DECISIONS, ids=[d[0] for d in DECISIONS]
)
def test_decide(case, rows, expected, phrase):
    query = post("l1", "lost", 0, animals=(1,))
    posts = {pid: post(pid, kind, days) for pid, kind, days, _, _ in rows}
    distances = {pid: dist for pid, _, _, dist, _ in rows}
    hits = [hit(1, 100 + n, pid, sim) for n, (pid, _, _, _, sim) in enumerate(rows)]
    candidates = rank_post_candidates(query, hits, posts, distances, POLICY)
    assert len(candidates) == len(rows)
    match = decide(candidates, POLICY)
    assert (match.candidate_post_id if match else None) == expected
    verdicts = explain(candidates, POLICY)
    assert sum(c.accepted for c in verdicts) == (expected is not None)
    if phrase is not None:
        best = next(c for c in verdicts if c.eligible)
        assert any(phrase in r for r in best.reasons), best.reasons
    for c in verdicts:
        assert c.reasons  # every candidate says why
        assert 0.0 <= c.confidence <= 1.0


def test_ineligible_candidates_explain_themselves():
    query = post("l1", "lost", 0, animals=(1,))
    rows = {"late": post("late", "found", 80), "far": post("far", "found", 1)}
    hits = [hit(1, 10, "late", 0.99), hit(1, 11, "far", 0.99)]
    ranked = rank_post_candidates(query, hits, rows, {"late": 1.0, "far": 120.0}, POLICY)
    reasons = {c.post_id: " ".join(c.reasons) for c in ranked}
    assert "beyond the 60-day window" in reasons["late"]
    assert "beyond 50 km" in reasons["far"]
    assert not any(c.eligible for c in ranked)
    assert decide(ranked, POLICY) is None


def test_post_score_is_best_pair_and_counts_agreeing_animals():
    """Query post with 3 animals (photos); two of them agree with f1, one agrees with f2."""
    query = post("l1", "lost", 0, animals=(1, 2, 3))
    posts = {"f1": post("f1", "found", 2), "f2": post("f2", "found", 2)}
    hits = [
        hit(1, 10, "f1", 0.93),
        hit(1, 11, "f1", 0.97),  # a second photo of the same found animal scores higher
        hit(2, 10, "f1", 0.91),
        hit(3, 10, "f1", 0.55),
        hit(3, 20, "f2", 0.88),
    ]
    ranked = rank_post_candidates(query, hits, posts, {"f1": 0.0, "f2": 0.0}, NO_DECAY)
    f1 = next(c for c in ranked if c.post_id == "f1")
    assert f1.similarity == pytest.approx(0.97)
    assert (f1.pairs[0].query_animal_id, f1.pairs[0].candidate_animal_id) == (1, 11)
    assert [p.query_animal_id for p in f1.pairs] == [1, 2, 3]
    assert (f1.agreeing, f1.query_animals) == (2, 3)
    assert ranked[0].post_id == "f1"
    match = decide(ranked, NO_DECAY)
    assert match is not None
    assert (match.lost_post_id, match.found_post_id) == ("l1", "f1")
    assert match.pairs[0].candidate_animal_id == 11
    assert any("2 of 3 animals agree" in r for r in match.reasons)


def test_found_query_against_lost_posts():
    query = post("f9", "found", 5, animals=(7,))
    posts = {"l1": post("l1", "lost", 0)}
    match = decide(
        rank_post_candidates(query, [hit(7, 1, "l1", 0.98)], posts, {"l1": 3.0}, POLICY), POLICY
    )
    assert match is not None
    assert (match.lost_post_id, match.found_post_id) == ("l1", "f9")
    # Same numbers as a lost query: the window is measured from lost to found either way.
    gap = rank_post_candidates(query, [hit(7, 1, "l1", 0.98)], posts, {}, POLICY)[0].gap_days
    assert gap == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("margin_on", "accepted"),
    # Confidences 0.985 vs 0.95 (gap 0.035 < 0.05) but similarities 0.97 vs 0.90 (gap 0.07).
    [("confidence", False), ("similarity", True)],
)
def test_margin_on_confidence_or_similarity(margin_on, accepted):
    policy = NO_DECAY.model_copy(update={"margin_on": margin_on})
    query = post("l1", "lost", 0, animals=(1,))
    posts = {"a": post("a", "found", 1), "b": post("b", "found", 1)}
    hits = [hit(1, 1, "a", 0.97), hit(1, 2, "b", 0.90)]
    ranked = rank_post_candidates(query, hits, posts, {"a": 0.0, "b": 0.0}, policy)
    assert (decide(ranked, policy) is not None) == accepted


def test_hits_from_candidates_skips_unknown_vectors():
    key = PartitionKey(species="dog", kind="found", city="Казань")
    results = [
        [
            Candidate(id=5, similarity=0.9, partition=key),
            Candidate(id=6, similarity=0.5, partition=key),
        ],
        [Candidate(id=7, similarity=0.8, partition=key)],
    ]
    hits = hits_from_candidates([1, 2], results, {5: "p5", 7: "p7"})
    assert [(h.query_animal_id, h.candidate_animal_id, h.candidate_post_id) for h in hits] == [
        (1, 5, "p5"),
        (2, 7, "p7"),
    ]
    with pytest.raises(ValueError):
        hits_from_candidates([1], results, {})


@pytest.mark.parametrize(
    ("query_kind", "other_kind", "lost_id"),
    [("unknown", "found", "q"), ("unknown", "lost", "o"), ("lost", "unknown", "q"),
     ("found", "unknown", "o")],
)
def test_an_unknown_side_takes_the_opposite_of_the_known_one(query_kind, other_kind, lost_id):
    query = post("q", query_kind, 3 if lost_id == "o" else 0, animals=(7,))
    posts = {"o": post("o", other_kind, 0 if lost_id == "o" else 3)}
    ranked = rank_post_candidates(query, [hit(7, 1, "o", 0.98)], posts, {"o": 1.0}, POLICY)
    assert ranked[0].eligible and ranked[0].side_uncertain
    assert ranked[0].gap_days == pytest.approx(3.0)
    assert any("side uncertain" in r for r in ranked[0].reasons)
    # Recorded for a person to review, never acted on by default.
    assert decide(ranked, POLICY) is None
    assert any("kept for review" in r for r in explain(ranked, POLICY)[0].reasons)
    allowed = POLICY.model_copy(update={"accept_unknown_side": True})
    match = decide(ranked, allowed)
    assert match is not None and match.lost_post_id == lost_id


def test_two_unknown_sides_are_never_paired():
    query = post("q", "unknown", 0, animals=(7,))
    ranked = rank_post_candidates(
        query, [hit(7, 1, "o", 0.99)], {"o": post("o", "unknown", 1)}, {"o": 0.0}, POLICY
    )
    assert not ranked[0].eligible and "both posts are unknown" in ranked[0].reasons
