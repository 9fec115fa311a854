"""`petmatch bench matching`: comment precision and recall of the real pipeline on scenarios
built from an identity-labelled folder, with the comments counted on the fake VK.

Each scenario (one seed) takes N identities: for two thirds of them a lost post and a found
post with different photos (some posts carry two photos, some lost posts are reposted in a
community of another city), for the rest a lost post or a found post only (animals the bot
must not match). Lost posts are 2–10 days old, found posts under 2 days. The pipeline runs
with the daily cap, the minimum gap and quiet hours switched off and with the match threshold
at 0, so that every decision the bot would make at *any* threshold reaches the fake VK; a
comment counts at threshold t when the confidence of its match is ≥ t (acceptance does not
depend on the threshold otherwise: the best candidate and the margin are the same). The
headline numbers are at the operating threshold (the calibration's, or
`matching.threshold`).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import storage
from bot.config import Settings
from bot.demo import (
    CITY_GROUP,
    FOUND_GROUP,
    LOST_GROUP,
    DemoPost,
    _add_groups,
    _read,
    _seed,
    demo_environment,
)
from bot.storage import pipeline as store

__all__ = [
    "BenchComment",
    "BenchResult",
    "ScenarioOutcome",
    "folder_identities",
    "matching_scenario",
    "run_matching_bench",
    "wilson_interval",
]

_LINK_RE = re.compile(r"wall(-?\d+)_(\d+)")


@dataclass(frozen=True)
class BenchComment:
    """One comment that arrived on the fake VK, with the confidence of its match."""

    seed: int
    confidence: float
    correct: bool


@dataclass
class ScenarioOutcome:
    seed: int
    pairs: int  # lost/found pairs of one animal (lost and found communities)
    comments: list[BenchComment] = field(default_factory=list)
    correct_pairs_by_conf: list[float] = field(default_factory=list)  # best right comment
    animals: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class BenchResult:
    threshold: float
    outcomes: list[ScenarioOutcome]

    @property
    def pairs(self) -> int:
        return sum(o.pairs for o in self.outcomes)

    def at(self, threshold: float) -> dict[str, Any]:
        """Comments, right, wrong, missed pairs, precision and recall at `threshold`."""
        comments = [c for o in self.outcomes for c in o.comments if c.confidence >= threshold]
        right = sum(c.correct for c in comments)
        found_pairs = sum(
            sum(conf >= threshold for conf in o.correct_pairs_by_conf) for o in self.outcomes
        )
        precision = right / len(comments) if comments else None
        recall = found_pairs / self.pairs if self.pairs else None
        return {
            "threshold": threshold,
            "comments": len(comments),
            "correct_comments": right,
            "wrong_comments": len(comments) - right,
            "missed_pairs": self.pairs - found_pairs,
            "precision": precision,
            "precision_ci95": wilson_interval(right, len(comments)),
            "recall": recall,
            "recall_ci95": wilson_interval(found_pairs, self.pairs),
        }

    def curve(self) -> list[dict[str, Any]]:
        """Precision and recall at every confidence a comment had (the PR curve)."""
        levels = sorted({c.confidence for o in self.outcomes for c in o.comments})
        return [self.at(t) for t in levels]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenarios": len(self.outcomes),
            "pairs": self.pairs,
            "animals": sum(o.animals for o in self.outcomes),
            "operating": self.at(self.threshold),
            "curve": [
                {k: row[k] for k in ("threshold", "comments", "precision", "recall")}
                for row in self.curve()
            ],
            "failures": [f for o in self.outcomes for f in o.failures],
        }


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def folder_identities(folder: Path) -> dict[str, list[Path]]:
    """Image paths per identity (sub-folder, or file-name part before the first `_`)."""
    from reid.evaluation import list_labelled_images

    by_identity: dict[str, list[Path]] = {}
    for item in list_labelled_images(folder):
        by_identity.setdefault(item.identity, []).append(item.path)
    return by_identity


def matching_scenario(
    by_identity: dict[str, list[Path]],
    *,
    identities: int,
    seed: int,
    species_word: str = "собака",
    read: Callable[[Path], bytes] = _read,
) -> list[DemoPost]:
    """Lost and found posts for `identities` random animals (see the module docstring)."""
    rng = random.Random(seed)
    eligible = sorted(i for i, paths in by_identity.items() if len(paths) >= 2)
    if len(eligible) < 2:
        raise ValueError("fewer than two identities have two or more photos")
    chosen = rng.sample(eligible, min(identities, len(eligible)))
    pair_count = max(1, (2 * len(chosen)) // 3)
    posts: list[DemoPost] = []
    for n, identity in enumerate(chosen):
        photos = list(by_identity[identity])
        rng.shuffle(photos)
        paired = n < pair_count
        lost_only = not paired and n % 2 == 0
        lost_photos = photos[:1]
        rest = photos[1:]
        if len(rest) >= 3 and rng.random() < 0.3:
            lost_photos, rest = photos[:2], photos[2:]
        lost_at = rng.uniform(48, 240)
        lost_text = f"Пропала {species_word}! Москва, помогите найти, объявление {seed}-{n}."
        if paired or lost_only:
            posts.append(
                DemoPost(
                    LOST_GROUP,
                    lost_text,
                    tuple(read(p) for p in lost_photos),
                    identity,
                    hours_ago=lost_at,
                )
            )
            if rng.random() < 0.15:
                # A repost in another city's community: never a match for Moscow posts.
                posts.append(
                    DemoPost(
                        CITY_GROUP,
                        lost_text.replace("Москва", "Казань"),
                        (read(lost_photos[0]),),
                        identity,
                        hours_ago=lost_at - 1,
                    )
                )
        if not lost_only:
            found_photos = rest[:2] if len(rest) >= 2 and rng.random() < 0.3 else rest[:1]
            posts.append(
                DemoPost(
                    FOUND_GROUP,
                    f"Найдена {species_word} в Москве, ищем хозяев! Объявление {seed}-{n}.",
                    tuple(read(p) for p in found_photos),
                    identity,
                    hours_ago=rng.uniform(1, 47),
                )
            )
    return posts


def _true_pairs(posts: Sequence[DemoPost]) -> int:
    lost = {p.identity for p in posts if p.group_id == LOST_GROUP and p.identity}
    found = {p.identity for p in posts if p.group_id == FOUND_GROUP and p.identity}
    return len(lost & found)


def run_matching_bench(
    base: Settings,
    by_identity: dict[str, list[Path]],
    *,
    work_dir: Path,
    vision: Any,
    threshold: float,
    identities: int,
    seeds: Sequence[int],
    species_word: str = "собака",
    now: datetime | None = None,
    on_scenario: Callable[[ScenarioOutcome], None] | None = None,
) -> BenchResult:
    """Run one scenario per seed through the real pipeline on a fake VK; see the docstring."""
    from dataclasses import replace

    open_policy = vision.match_policy.model_copy(update={"threshold": 0.0})
    open_vision = replace(vision, match_policy=open_policy)
    settings = base.model_copy(
        update={"commenting": base.commenting.model_copy(update={"daily_cap": 1_000_000})}
    )
    outcomes = []
    for seed in seeds:
        posts = matching_scenario(
            by_identity, identities=identities, seed=seed, species_word=species_word
        )
        outcome = _run_scenario(settings, posts, work_dir, open_vision, seed, now)
        outcomes.append(outcome)
        if on_scenario is not None:
            on_scenario(outcome)
    return BenchResult(threshold=threshold, outcomes=outcomes)


def _run_scenario(
    settings: Settings,
    posts: Sequence[DemoPost],
    work_dir: Path,
    vision: Any,
    seed: int,
    now: datetime | None,
) -> ScenarioOutcome:
    from bot.pipeline import Pipeline
    from bot.polling import poll_cycle
    from bot.vk.gateway import VkApiGateway

    now = now or datetime.now(UTC)
    outcome = ScenarioOutcome(seed=seed, pairs=_true_pairs(posts))
    with demo_environment(settings, work_dir / f"seed-{seed}") as (vk, run_settings):
        truth = _seed(vk, posts, now)
        engine = storage.open_database(run_settings.database_url)
        storage.upgrade_database(engine)
        sessions = storage.session_factory(engine)
        with VkApiGateway(run_settings.vk) as gateway:
            _add_groups(sessions, gateway, now)
            poll_cycle(sessions, gateway, run_settings, now=now)
            report = Pipeline(run_settings, sessions, gateway, vision=vision).process_pending(
                now=now
            )
        outcome.animals = report.animals
        outcome.failures.extend(report.failures)
        confidence = _match_confidences(sessions)
        engine.dispose()
        best_right: dict[frozenset, float] = {}
        for comment in vk.comments:
            target = (comment["owner_id"], comment["post_id"])
            found = _LINK_RE.search(comment["text"])
            other = None if found is None else (int(found.group(1)), int(found.group(2)))
            pair = frozenset((target, other))
            correct = truth.get(target) is not None and truth.get(target) == truth.get(other)
            conf = confidence.get(pair, 0.0)
            outcome.comments.append(BenchComment(seed=seed, confidence=conf, correct=correct))
            groups = {key[0] for key in pair if key is not None}
            if correct and groups == {-LOST_GROUP, -FOUND_GROUP}:
                identity = truth[target]
                best_right[frozenset([identity])] = max(
                    conf, best_right.get(frozenset([identity]), 0.0)
                )
        outcome.correct_pairs_by_conf = list(best_right.values())
    return outcome


def _match_confidences(sessions: Any) -> dict[frozenset, float]:
    """{(lost post key, found post key): confidence} of the accepted matches."""
    out: dict[frozenset, float] = {}
    with storage.session_scope(sessions) as session:
        for match in store.list_matches(session, accepted_only=True, limit=1_000_000):
            keys = []
            for pk in (match.lost_post_pk, match.found_post_pk):
                post = storage.get_post_by_pk(session, pk)
                keys.append((post.owner_id, post.post_id))
            out[frozenset(keys)] = max(match.confidence, out.get(frozenset(keys), 0.0))
    return out


def plot_curve(result: BenchResult, path: Path, title: str) -> Path:
    """The precision–recall curve over the threshold, the operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result.curve()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([r["recall"] for r in curve], [r["precision"] for r in curve], marker=".")
    op = result.at(result.threshold)
    if op["precision"] is not None:
        ax.plot(
            [op["recall"]],
            [op["precision"]],
            "r*",
            markersize=12,
            label=f"threshold {result.threshold:.3f}",
        )
        ax.legend(loc="lower left")
    ax.set_xlabel("recall (true pairs commented)")
    ax.set_ylabel("precision (right comments / comments)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
