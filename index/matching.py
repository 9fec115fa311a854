"""From animal-level hits to a post-level decision; pure, time and thresholds are arguments.

    hits (query animal → candidate animal of some post, cosine similarity)
      └─ rank_post_candidates(query, hits, posts, distances_km, policy) -> [PostCandidate]
           one per candidate post: best pair, how many query animals agree, the calibrated
           confidence times a time factor and a distance factor, gates with reasons
      └─ explain(candidates, policy) -> [PostCandidate]   accepted or not, and why
      └─ decide(candidates, policy) -> Match | None       the accepted one, if any

The confidence curve comes from the model's calibration (`reid.Calibration.xs/ys`); the
bot copies it into `MatchPolicy(curve_xs=..., curve_ys=..., threshold=...)`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from index._types import Candidate

__all__ = [
    "AnimalHit",
    "AnimalPair",
    "Match",
    "MatchPolicy",
    "PostCandidate",
    "PostRef",
    "decide",
    "distance_factor",
    "explain",
    "hits_from_candidates",
    "rank_post_candidates",
    "time_factor",
]

log = logging.getLogger("petmatch.index")

# `unknown`: the post describes an animal but its text does not say which side it is on;
# it is matched against both sides and never commented on automatically (see
# `MatchPolicy.accept_unknown_side`).
PostKind = Literal["lost", "found", "unknown"]
_DAY = 86_400.0


class MatchPolicy(BaseModel):
    """Thresholds, windows and the calibration curve that turn similarities into decisions."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(ge=0.0, le=1.0, description="minimum calibrated confidence")
    margin: float = Field(0.05, ge=0.0, le=1.0, description="best minus second best")
    # Similarity by default: an isotonic curve is a staircase, so two candidates on one
    # step tie in confidence and a step edge can split near-equal similarities.
    margin_on: Literal["confidence", "similarity"] = "similarity"
    time_window_days: float = Field(60.0, gt=0)
    reverse_gap_days: float = Field(2.0, ge=0)
    max_distance_km: float = Field(50.0, gt=0)
    time_decay: float = Field(
        0.1, ge=0.0, le=1.0, description="share of confidence lost at the end of the window"
    )
    distance_decay: float = Field(
        0.1, ge=0.0, le=1.0, description="share of confidence lost at max_distance_km"
    )
    agree_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="a query animal agrees when its best pair reaches this"
    )
    accept_unknown_side: bool = Field(
        False,
        description="accept a match where one post's side is unknown (else it is recorded, "
        "with the uncertainty in its reasons, for a person to review)",
    )
    curve_xs: tuple[float, ...] = Field(min_length=2)
    curve_ys: tuple[float, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _check_curve(self) -> MatchPolicy:
        xs, ys = np.asarray(self.curve_xs), np.asarray(self.curve_ys)
        if xs.shape != ys.shape:
            raise ValueError("curve_xs and curve_ys must have the same length")
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise ValueError("the calibration curve must be finite")
        if np.any(np.diff(xs) <= 0):
            raise ValueError("curve_xs must be strictly increasing")
        if np.any(np.diff(ys) < 0):
            raise ValueError("curve_ys must be non-decreasing (a monotone calibration)")
        if ys.min() < 0 or ys.max() > 1:
            raise ValueError("curve_ys are probabilities and must lie in [0, 1]")
        return self

    def confidence(self, similarity: float) -> float:
        """Calibrated probability that a pair with this cosine similarity is the same animal."""
        return float(np.interp(similarity, self.curve_xs, self.curve_ys))


class PostRef(BaseModel):
    """What matching needs to know about a post."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    kind: PostKind
    published_at: datetime
    animal_ids: tuple[int, ...] = ()


class AnimalHit(BaseModel):
    """A query animal's vector found a candidate animal's vector in the index."""

    model_config = ConfigDict(frozen=True)

    query_animal_id: int
    candidate_animal_id: int
    candidate_post_id: str
    similarity: float = Field(ge=-1.0, le=1.0)


class AnimalPair(BaseModel):
    """The best pair for one query animal against one candidate post."""

    model_config = ConfigDict(frozen=True)

    query_animal_id: int
    candidate_animal_id: int
    similarity: float
    confidence: float


class PostCandidate(BaseModel):
    """A candidate post for the query post, with its score and the reasons behind it."""

    model_config = ConfigDict(frozen=True)

    query_post_id: str
    post_id: str
    kind: PostKind
    similarity: float
    calibrated: float = Field(description="confidence of the best pair before the factors")
    time_factor: float
    distance_factor: float
    confidence: float
    gap_days: float = Field(description="days from the lost post to the found post")
    distance_km: float | None
    agreeing: int = Field(description="query animals whose best pair reaches agree_confidence")
    query_animals: int
    pairs: tuple[AnimalPair, ...]
    eligible: bool
    accepted: bool = False
    reasons: tuple[str, ...]
    query_kind: PostKind | None = None
    side_uncertain: bool = Field(False, description="one of the two posts does not say its side")

    @property
    def query_is_lost(self) -> bool:
        """Whether the query post is the lost one of the pair (an unknown side takes the
        opposite of the known one)."""
        if self.kind == "unknown":
            return self.query_kind == "lost"
        return self.kind == "found"


class Match(BaseModel):
    """An accepted lost↔found pair: what matched, how sure, and why."""

    model_config = ConfigDict(frozen=True)

    query_post_id: str
    candidate_post_id: str
    lost_post_id: str
    found_post_id: str
    confidence: float
    similarity: float
    pairs: tuple[AnimalPair, ...]
    agreeing: int
    query_animals: int
    reasons: tuple[str, ...]


def time_factor(
    lost_at: datetime, found_at: datetime, policy: MatchPolicy
) -> tuple[float, float, str | None]:
    """(factor, gap in days, reason it is excluded or None); factor 0 means no match."""
    gap = (found_at - lost_at).total_seconds() / _DAY
    if gap < -policy.reverse_gap_days:
        return (
            0.0,
            gap,
            (
                f"found post is {-gap:.1f} days older than the lost one "
                f"(allowed {policy.reverse_gap_days:g})"
            ),
        )
    if gap > policy.time_window_days:
        return (
            0.0,
            gap,
            (f"found {gap:.1f} days after lost, beyond the {policy.time_window_days:g}-day window"),
        )
    if gap >= 0:
        return 1.0 - policy.time_decay * gap / policy.time_window_days, gap, None
    # Within the reverse-gap allowance: reposts and late "lost" posts happen.
    share = -gap / policy.reverse_gap_days if policy.reverse_gap_days else 1.0
    return 1.0 - policy.time_decay * share, gap, None


def distance_factor(distance_km: float | None, policy: MatchPolicy) -> tuple[float, str | None]:
    """(factor, reason it is excluded or None); an unknown distance costs the full decay."""
    if distance_km is None:
        return 1.0 - policy.distance_decay, None
    if distance_km < 0:
        raise ValueError(f"distance_km must be non-negative, got {distance_km}")
    if distance_km > policy.max_distance_km:
        return 0.0, f"{distance_km:.0f} km apart, beyond {policy.max_distance_km:g} km"
    return 1.0 - policy.distance_decay * distance_km / policy.max_distance_km, None


def hits_from_candidates(
    query_animal_ids: Sequence[int],
    results: Sequence[Sequence[Candidate]],
    post_of: Mapping[int, str],
) -> list[AnimalHit]:
    """Glue: `FaissIndex.search` results (one list per query animal) to `AnimalHit`s.

    `post_of` maps a stored vector id to its post id; ids it lacks (deleted since) are
    skipped.
    """
    if len(query_animal_ids) != len(results):
        raise ValueError(f"{len(query_animal_ids)} query animals for {len(results)} result lists")
    hits = []
    for animal_id, found in zip(query_animal_ids, results, strict=True):
        for cand in found:
            post_id = post_of.get(cand.id)
            if post_id is None:
                continue
            hits.append(
                AnimalHit(
                    query_animal_id=animal_id,
                    candidate_animal_id=cand.id,
                    candidate_post_id=post_id,
                    similarity=cand.similarity,
                )
            )
    return hits


def rank_post_candidates(
    query: PostRef,
    hits: Sequence[AnimalHit],
    posts: Mapping[str, PostRef],
    distances_km: Mapping[str, float | None],
    policy: MatchPolicy,
) -> list[PostCandidate]:
    """One `PostCandidate` per candidate post, eligible ones first, best first.

    A post's similarity is its best pair over all animals of both posts; `agreeing` counts
    the query's animals whose own best pair with that post reaches `agree_confidence`.
    `distances_km` holds the distance to each candidate post (missing or None: unknown).
    """
    by_post: dict[str, dict[int, AnimalHit]] = {}
    for hit in hits:
        best = by_post.setdefault(hit.candidate_post_id, {})
        prev = best.get(hit.query_animal_id)
        if prev is None or hit.similarity > prev.similarity:
            best[hit.query_animal_id] = hit
    n_query = len(set(query.animal_ids) | {h.query_animal_id for h in hits})
    ranked = []
    for post_id, per_animal in by_post.items():
        post = posts.get(post_id)
        if post is None:
            log.warning("post %s was hit but is unknown; skipped", post_id)
            continue
        ranked.append(
            _score_post(query, post, per_animal, distances_km.get(post_id), n_query, policy)
        )
    ranked.sort(key=_rank_key)
    return ranked


def explain(candidates: Sequence[PostCandidate], policy: MatchPolicy) -> list[PostCandidate]:
    """The candidates, best first, each marked accepted or not with the reasons why."""
    ordered = sorted(candidates, key=_rank_key)
    eligible = [c for c in ordered if c.eligible]
    out: list[PostCandidate] = []
    best = eligible[0] if eligible else None
    second = eligible[1] if len(eligible) > 1 else None
    for cand in ordered:
        if not cand.eligible:
            out.append(cand)
            continue
        if best is not None and cand is not best:
            out.append(_with(cand, False, f"not the best candidate ({best.post_id} scores higher)"))
            continue
        reasons = []
        ok = True
        if cand.confidence >= policy.threshold:
            reasons.append(f"confidence {cand.confidence:.3f} ≥ threshold {policy.threshold:.3f}")
        else:
            ok = False
            reasons.append(f"confidence {cand.confidence:.3f} < threshold {policy.threshold:.3f}")
        if cand.side_uncertain and not policy.accept_unknown_side:
            ok = False
            reasons.append("side uncertain: kept for review, not commented automatically")
        if second is None:
            reasons.append("the only candidate")
        else:
            field = policy.margin_on
            gap = getattr(cand, field) - getattr(second, field)
            verdict = "≥" if gap >= policy.margin else "<"
            ok = ok and gap >= policy.margin
            reasons.append(
                f"{field} margin {gap:.3f} over {second.post_id} {verdict} {policy.margin:.3f}"
            )
        out.append(_with(cand, ok, *reasons))
    return out


def decide(candidates: Sequence[PostCandidate], policy: MatchPolicy) -> Match | None:
    """The match to act on: the best candidate when it clears the threshold and the margin."""
    for cand in explain(candidates, policy):
        if cand.accepted:
            lost, found = (
                (cand.query_post_id, cand.post_id)
                if cand.query_is_lost
                else (cand.post_id, cand.query_post_id)
            )
            return Match(
                query_post_id=cand.query_post_id,
                candidate_post_id=cand.post_id,
                lost_post_id=lost,
                found_post_id=found,
                confidence=cand.confidence,
                similarity=cand.similarity,
                pairs=cand.pairs,
                agreeing=cand.agreeing,
                query_animals=cand.query_animals,
                reasons=cand.reasons,
            )
    return None


def _score_post(
    query: PostRef,
    post: PostRef,
    per_animal: Mapping[int, AnimalHit],
    distance_km: float | None,
    n_query: int,
    policy: MatchPolicy,
) -> PostCandidate:
    pairs = sorted(
        (
            AnimalPair(
                query_animal_id=h.query_animal_id,
                candidate_animal_id=h.candidate_animal_id,
                similarity=h.similarity,
                confidence=policy.confidence(h.similarity),
            )
            for h in per_animal.values()
        ),
        key=lambda p: (-p.similarity, p.query_animal_id),
    )
    top = pairs[0]
    agreeing = sum(p.confidence >= policy.agree_confidence for p in pairs)
    reasons = [
        f"best pair {top.query_animal_id}↔{top.candidate_animal_id}: similarity "
        f"{top.similarity:.3f}, calibrated {top.confidence:.3f}",
        f"{agreeing} of {n_query} animals agree",
    ]
    eligible = True
    if query.kind == post.kind:
        eligible = False
        reasons.append(f"both posts are {post.kind}")
        t_factor, gap = 0.0, (post.published_at - query.published_at).total_seconds() / _DAY
    else:
        query_lost = query.kind == "lost" or post.kind == "found"
        lost, found = (query, post) if query_lost else (post, query)
        if "unknown" in (query.kind, post.kind):
            unsure = query if query.kind == "unknown" else post
            side = "lost" if unsure is lost else "found"
            reasons.append(
                f"side uncertain: {unsure.post_id} does not say lost or found; read as {side}"
            )
        t_factor, gap, why = time_factor(lost.published_at, found.published_at, policy)
        if why:
            eligible = False
            reasons.append(why)
        else:
            reasons.append(f"found {gap:.1f} days after lost (time factor {t_factor:.2f})")
    d_factor, why = distance_factor(distance_km, policy)
    if why:
        eligible = False
        reasons.append(why)
    elif distance_km is None:
        reasons.append(f"distance unknown (distance factor {d_factor:.2f})")
    else:
        reasons.append(f"{distance_km:.1f} km apart (distance factor {d_factor:.2f})")
    confidence = top.confidence * t_factor * d_factor if eligible else 0.0
    return PostCandidate(
        query_post_id=query.post_id,
        post_id=post.post_id,
        kind=post.kind,
        similarity=top.similarity,
        calibrated=top.confidence,
        time_factor=t_factor,
        distance_factor=d_factor,
        confidence=confidence,
        gap_days=gap,
        distance_km=distance_km,
        agreeing=agreeing,
        query_animals=n_query,
        pairs=tuple(pairs),
        eligible=eligible,
        reasons=tuple(reasons),
        query_kind=query.kind,
        side_uncertain="unknown" in (query.kind, post.kind),
    )


def _rank_key(c: PostCandidate) -> tuple[bool, float, int, float, str]:
    return (not c.eligible, -c.confidence, -c.agreeing, -c.similarity, c.post_id)


def _with(cand: PostCandidate, accepted: bool, *reasons: str) -> PostCandidate:
    return cand.model_copy(update={"accepted": accepted, "reasons": (*cand.reasons, *reasons)})
