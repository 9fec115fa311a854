"""The orchestrator: moves each new or edited post through text → photos → vision → index →
matching → comment. The only module that talks to VK, the database and disk for the stages.

Every stage commits its result per post and records `stage`, so a restart resumes from the
first unfinished stage, and a failure in one post (corrupt photo, no animal, unknown city)
is recorded on that post and never stops the others.

"No animal" is not "could not look": a photo that decodes to no animal is a result, but a
local I/O failure (the crops folder briefly unwritable, a photo file unreadable) is not. Such a
post stays where it was and is tried again with exponential backoff, up to
`processing.max_attempts`, then it is `failed` with the reason (`matches list` shows both).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from bot import storage
from bot.comment_stage import CommentSender
from bot.config import Settings
from bot.files import file_store, read_file
from bot.post_sides import SEARCH_KINDS, side_with_group
from bot.storage import pipeline as store
from bot.storage import problems as retries
from bot.storage.records import PhotoState, Post, PostState
from bot.vk import VkGateway

if TYPE_CHECKING:
    from index import FaissIndex
    from reid import Embedder
    from segmentation import Segmenter

logger = logging.getLogger("petmatch.pipeline")

OPPOSITE_KIND = {"lost": "found", "found": "lost"}


class CouldNotLookError(Exception):
    """The post's photos could not be looked at this time (a local I/O failure): it is tried
    again later, and never recorded as "no animal found"."""


def _is_local_io_error(exc: BaseException) -> bool:
    """An operating-system failure (no permission, no space, no file): errno is set. Pillow's
    decoding errors are OSErrors too, but without an errno."""
    return isinstance(exc, OSError) and exc.errno is not None


class Stage:
    """Values of `posts.stage` once a stage has committed its result."""

    TEXT = "text"
    VISION = "vision"
    INDEXED = "indexed"
    MATCHED = "matched"
    DONE = "done"


@dataclass
class PipelineReport:
    posts: int = 0
    labelled: dict[str, int] = field(default_factory=dict)
    photos_segmented: int = 0
    animals: int = 0
    matches: int = 0
    accepted: int = 0
    comments: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    waiting: int = 0
    retry_later: list[str] = field(default_factory=list)

    def count(self, bucket: dict[str, int], key: str) -> None:
        bucket[key] = bucket.get(key, 0) + 1


@dataclass(frozen=True)
class VisionModels:
    segmenter: Segmenter
    embedder: Embedder
    match_policy: Any  # index.matching.MatchPolicy


def build_vision(settings: Settings) -> VisionModels:
    """Load the segmenter, the embedder and the embedder's calibration (lazily imported)."""
    import reid
    import segmentation

    models_dir = settings.models_dir
    segmenter = segmentation.build_segmenter(
        settings.segmentation.backend,
        models_dir=models_dir,
        **_segmenter_args(settings),
    )
    kwargs: dict[str, Any] = {"models_dir": models_dir}
    if settings.reid.weights is not None:
        kwargs["weights"] = settings.reid.weights
    embedder = reid.build_embedder(settings.reid.model, **kwargs)
    if settings.reid.quantized:
        embedder = _quantized_embedder(embedder, settings)
    return VisionModels(segmenter, embedder, _match_policy(settings, embedder))


def _segmenter_args(settings: Settings) -> dict[str, Any]:
    if settings.segmentation.backend == "pixellib" and settings.segmentation.pointrend_weights:
        return {"weights": settings.segmentation.pointrend_weights}
    args: dict[str, Any] = {"min_crop_pixels": settings.segmentation.min_crop_pixels}
    if settings.segmentation.quantized and settings.segmentation.backend == "u2netp":
        from bot.quantize import U2NETP_INT8

        args["u2net_path"] = _need(settings.models_dir / U2NETP_INT8)
    return args


def _quantized_embedder(embedder: Any, settings: Settings) -> Any:
    """The int8 copy beside the embedder's ONNX file (`models prepare --quantize`)."""
    import reid
    from bot.quantize import int8_path

    onnx_path = getattr(embedder, "onnx_path", None)
    if onnx_path is None:
        raise ValueError(f"{settings.reid.model} has no ONNX file to quantize")
    return reid.load_onnx_embedder(
        _need(int8_path(Path(onnx_path))), batch_size=settings.reid.batch_size
    )


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"int8 model {path} is missing; run `petmatch models prepare --quantize`"
        )
    return path


def _match_policy(settings: Settings, embedder: Embedder) -> Any:
    from index.matching import MatchPolicy

    calibration = load_calibration(settings, embedder)
    threshold = settings.matching.threshold
    if threshold is None:
        if calibration.threshold is None:
            # No operating point reached the target precision: better silent than wrong.
            logger.warning(
                "calibration of %s reaches no threshold for precision %.2f; the bot will not "
                "comment until a better model or calibration is installed",
                calibration.model_id,
                calibration.target_precision,
            )
        threshold = 1.0 if calibration.threshold is None else calibration.threshold
    return MatchPolicy(
        threshold=threshold,
        margin=settings.matching.margin,
        time_window_days=settings.matching.time_window_days,
        reverse_gap_days=settings.matching.reverse_gap_days,
        max_distance_km=settings.matching.max_distance_km,
        curve_xs=tuple(calibration.xs),
        curve_ys=tuple(calibration.ys),
    )


def load_calibration(settings: Settings, embedder: Embedder) -> Any:
    """The embedder's calibration: next to its ONNX file, else the one shipped in `reid/data`.
    A calibration made for another model is refused: its probabilities would be meaningless."""
    from reid.calibration import Calibration, calibration_path, packaged_calibration

    onnx_path = getattr(embedder, "onnx_path", None)
    beside = calibration_path(onnx_path) if onnx_path is not None else None
    if beside is not None and beside.is_file():
        calibration = Calibration.load(beside)
    else:
        calibration = packaged_calibration(settings.reid.model)
    if calibration.model_id != embedder.model_id:
        raise ValueError(
            f"calibration is for {calibration.model_id!r} but the embedder is "
            f"{embedder.model_id!r}: re-run calibration for this model"
        )
    return calibration


class Pipeline:
    """Processes pending posts. Build once per run; models and the index load lazily."""

    def __init__(
        self,
        settings: Settings,
        sessions: storage.SessionFactory,
        gateway: VkGateway | None,
        *,
        vision: VisionModels | Callable[[], VisionModels] | None = None,
        dry_run: bool | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._gateway = gateway
        self._vision_source = vision if vision is not None else (lambda: build_vision(settings))
        self._vision: VisionModels | None = None
        self._index: FaissIndex | None = None
        self._index_dirty = False
        self._comments = CommentSender(settings, sessions, gateway, dry_run=dry_run)
        self._files = file_store(settings, sessions)
        self._owners: dict[tuple[int, int], Any] = {}

    @property
    def settings(self) -> Settings:
        return self._settings

    # ---- models and index ---------------------------------------------------------------

    @property
    def vision(self) -> VisionModels:
        if self._vision is None:
            source = self._vision_source
            self._vision = source() if callable(source) else source
        return self._vision

    @property
    def index(self) -> FaissIndex:
        if self._index is None:
            self._index = self._open_index()
        return self._index

    def _open_index(self) -> FaissIndex:
        """Load the saved index for the current model and reconcile it with the database;
        a missing, corrupt or other-model index is rebuilt from the database."""
        import faiss

        from index import FaissIndex, IndexLoadError

        # One query against a partition is small: OpenMP threads cost more than they give,
        # and the poll job needs the other core.
        faiss.omp_set_num_threads(1)
        embedder = self.vision.embedder
        directory = self._index_path(embedder.model_id)
        try:
            loaded = FaissIndex.load(
                directory,
                model_id=embedder.model_id,
                dim=embedder.dim,
                exact_limit=self._settings.index.exact_limit,
                target_recall=self._settings.index.target_recall,
            )
        except IndexLoadError as exc:
            logger.info("index not loaded (%s); rebuilding from the database", exc)
            return self.rebuild_index()
        with storage.session_scope(self._sessions) as session:
            entries = list(store.index_entries(session, model_id=embedder.model_id))
        missing = [(e, v) for e, v in entries if e.animal_id not in loaded]
        if len(loaded) + len(missing) != len(entries):
            logger.info("index disagrees with the database; rebuilding it")
            return self.rebuild_index()
        _add_entries(loaded, missing, embedder.model_id)
        if missing:
            self._index_dirty = True
            logger.info("index caught up with %d vectors saved after its last save", len(missing))
        return loaded

    def _index_path(self, model_id: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_id)
        return self._settings.index_dir / safe

    def rebuild_index(self) -> FaissIndex:
        """Build the index from every embedded animal in the database and save it."""
        from index import FaissIndex

        embedder = self.vision.embedder
        fresh = FaissIndex(
            embedder.model_id,
            embedder.dim,
            exact_limit=self._settings.index.exact_limit,
            target_recall=self._settings.index.target_recall,
        )
        with storage.session_scope(self._sessions) as session:
            entries = list(store.index_entries(session, model_id=embedder.model_id))
        _add_entries(fresh, entries, embedder.model_id)
        self._index = fresh
        self._index_dirty = True
        self.save_index()
        return fresh

    def catch_up_index(self) -> None:
        """Load the index now and save it if the database had vectors it lacked: after a
        crash between a database commit and an index save, the saved index is stale until
        the next load, and a run may find nothing else to do."""
        _ = self.index
        self.save_index()

    def save_index(self) -> None:
        if self._index is not None and self._index_dirty:
            self._index.save(self._index_path(self._index.model_id))
            self._index_dirty = False

    # ---- the run ------------------------------------------------------------------------

    def process_pending(
        self,
        *,
        now: datetime,
        limit: int | None = None,
        progress: Callable[[Post], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> PipelineReport:
        """Move pending posts, oldest post date first, through every stage; stops between
        posts when `should_stop()` says so."""
        report = PipelineReport()
        self._comments.retry_unfinished(now=now, record=lambda s: report.count(report.comments, s))
        with storage.session_scope(self._sessions) as session:
            posts = retries.due_pending_posts(session, now=now, limit=limit or 10_000)
        posts.sort(key=lambda p: (p.date, p.id))
        for post in posts:
            if should_stop():
                break
            try:
                self.process_post(post, now=now, report=report)
                self._forget_retry(post)
            except CouldNotLookError as exc:
                self._retry_later(post, exc, now=now, report=report)
            except Exception as exc:  # one post's failure never stops the others
                logger.exception("post %s failed", post.url)
                report.failures.append(f"{post.url}: {exc}")
                with storage.session_scope(self._sessions) as session:
                    storage.set_post_state(
                        session,
                        post.id,
                        PostState.FAILED,
                        now=now,
                        stage=post.stage,
                        error=f"{type(exc).__name__}: {exc}"[:2000],
                    )
            if progress is not None:
                progress(post)
        self.save_index()
        return report

    def _retry_later(
        self, post: Post, exc: CouldNotLookError, *, now: datetime, report: PipelineReport
    ) -> None:
        """Count a failed look; wait `base * 2**(n-1)` minutes (capped) for the next one, or
        mark the post `failed` with the reason once the attempts are spent."""
        processing = self._settings.processing
        with storage.session_scope(self._sessions) as session:
            current = storage.get_post_by_pk(session, post.id)
            previous = retries.get_post_retry(session, post.id)
            attempt = (previous.attempts if previous else 0) + 1
            minutes = min(
                processing.retry_max_minutes, processing.retry_base_minutes * 2 ** (attempt - 1)
            )
            retry = retries.schedule_post_retry(
                session,
                post.id,
                error=str(exc),
                next_attempt_at=now + timedelta(minutes=minutes),
                now=now,
            )
            if attempt >= processing.max_attempts:
                error = f"could not look at its photos after {attempt} attempts: {exc}"
                storage.set_post_state(
                    session, post.id, PostState.FAILED, now=now, stage=current.stage, error=error
                )
                logger.error("post %s failed: %s", post.url, error)
                report.failures.append(f"{post.url}: {error}")
                return
            storage.set_post_state(
                session,
                post.id,
                PostState.PROCESSING,
                now=now,
                stage=current.stage,
                error=f"could not look at its photos yet (attempt {attempt} of "
                f"{processing.max_attempts}): {exc}",
            )
        logger.warning(
            "post %s: could not look at its photos (%s); attempt %d of %d, next at %s",
            post.url,
            exc,
            attempt,
            processing.max_attempts,
            retry.next_attempt_at.isoformat(),
        )
        report.retry_later.append(f"{post.url}: {exc}")

    def look_again_later(self, post: Post, exc: CouldNotLookError, *, now: datetime) -> None:
        """For vision workers: count a look that failed on a local error and schedule the
        next one, or mark the post `failed` once the attempts are spent."""
        self._retry_later(post, exc, now=now, report=PipelineReport())

    def forget_failed_looks(self, post: Post) -> None:
        """For vision workers: the post was looked at; its retry count starts over."""
        self._forget_retry(post)

    def _forget_retry(self, post: Post) -> None:
        with storage.session_scope(self._sessions) as session:
            if retries.get_post_retry(session, post.id) is not None:
                retries.clear_post_retry(session, post.id)

    def process_post(self, post: Post, *, now: datetime, report: PipelineReport) -> None:
        report.posts += 1
        stage = post.stage
        if stage in (None, ""):
            if not self._text_stage(post, now=now, report=report):
                return
            stage = Stage.TEXT
        if stage == Stage.TEXT and self._settings.workers.enabled:
            report.waiting += 1  # `petmatch worker` processes run the vision stage
            return
        if stage == Stage.TEXT:
            if not self._vision_stage(post, now=now, report=report):
                return
            stage = Stage.VISION
        if stage == Stage.VISION:
            self._index_stage(post, now=now)
            stage = Stage.INDEXED
        if stage == Stage.INDEXED:
            self._match_stage(post, now=now, report=report)
            stage = Stage.MATCHED
        if stage == Stage.MATCHED:
            self._comment_stage(post, now=now, report=report)

    # ---- stages -------------------------------------------------------------------------

    def _text_stage(self, post: Post, *, now: datetime, report: PipelineReport) -> bool:
        """Read the post; `other` posts are stored and skipped, `resolved` closes the case."""
        import text

        with storage.session_scope(self._sessions) as session:
            group = storage.get_group(session, -post.owner_id)
            group_city = group.city if group is not None else None
            label = text.classify_post(post.text, group_city=group_city, now=now)
            kind, side_note = side_with_group(label.kind.value, group.kind if group else None)
            record = store.LabelRecord(
                post_pk=post.id,
                kind=kind,
                species=label.species.value,
                city=label.city,
                city_source=label.city_source.value,
                district=label.district,
                evidence={
                    "confidence": label.confidence,
                    "rules": [e.model_dump() for e in label.evidence],
                    "phones": list(label.phones),
                    **({"side": side_note} if side_note else {}),
                },
            )
            store.save_label(session, record, now=now)
            report.count(report.labelled, record.kind)
            if record.kind == "resolved":
                store.resolve_case(session, post.case_id, post.id, now=now)
                self._forget_case(session, post.case_id)
                storage.set_post_state(session, post.id, PostState.DONE, now=now, stage="resolved")
                return False
            if record.kind not in SEARCH_KINDS:
                self._forget_animals([a.id for a in store.animals_of_post(session, post.id)])
                storage.set_post_state(
                    session, post.id, PostState.SKIPPED, now=now, stage=f"text:{record.kind}"
                )
                return False
            if store.is_case_resolved(session, post.case_id):
                storage.set_post_state(
                    session, post.id, PostState.DONE, now=now, stage="case-resolved"
                )
                return False
            storage.set_post_state(
                session, post.id, PostState.PROCESSING, now=now, stage=Stage.TEXT
            )
        return True

    def _advance(self, post_pk: int, state: PostState, stage: str, *, now: datetime) -> None:
        """Record that a stage is done, keeping what an earlier stage noted (no animal...)."""
        with storage.session_scope(self._sessions) as session:
            error = storage.get_post_by_pk(session, post_pk).error
            storage.set_post_state(session, post_pk, state, now=now, stage=stage, error=error)

    def _forget_case(self, session: Any, case_id: int) -> None:
        """A resolved case leaves the index: nobody should be matched against it any more."""
        self._forget_animals(
            [
                a.id
                for p in storage.posts_of_case(session, case_id)
                for a in store.animals_of_post(session, p.id)
            ]
        )

    def _forget_animals(self, animal_ids: list[int]) -> None:
        """Take animals out of a loaded index; an index loaded later is reconciled with the
        database anyway."""
        if animal_ids and self._index is not None and self._index.remove(animal_ids):
            self._index_dirty = True

    def run_vision_stage(
        self, post: Post, *, now: datetime, finish: Callable[[str | None], None]
    ) -> PipelineReport:
        """The vision stage alone, for a worker: `finish(error)` records it done (in the
        worker's claiming transaction) instead of a session of its own."""
        report = PipelineReport(posts=1)
        self._vision_stage(post, now=now, report=report, finish=finish)
        return report

    def _vision_stage(
        self,
        post: Post,
        *,
        now: datetime,
        report: PipelineReport,
        finish: Callable[[str | None], None] | None = None,
    ) -> bool:
        """Cut animals out of every stored photo (once per photo) and embed them."""
        with storage.session_scope(self._sessions) as session:
            photos = storage.photos_of_post(session, post.id)
        if any(p.state is PhotoState.PENDING for p in photos):
            report.waiting += 1  # not downloaded yet (by polling, or a worker); next round
            return False
        vision = self.vision
        for photo in photos:
            if photo.state is not PhotoState.STORED or photo.file_path is None:
                continue
            with storage.session_scope(self._sessions) as session:
                if store.is_segmented(session, photo.id):
                    continue
            self._segment_photo(photo.id, Path(photo.file_path), vision, now=now, report=report)
        with storage.session_scope(self._sessions) as session:
            animals = store.animals_of_post(session, post.id)
            have = store.embeddings_of(
                session, [a.id for a in animals], model_id=vision.embedder.model_id
            )
        todo = [a for a in animals if a.id not in have]
        if todo:
            crops = [self._read_crop(a.crop_path) for a in todo]
            embeddings = vision.embedder.embed(crops)
            with storage.session_scope(self._sessions) as session:
                store.save_embeddings(
                    session,
                    [a.id for a in todo],
                    embeddings.vectors,
                    model_id=embeddings.model_id,
                    now=now,
                )
        error = None if animals else "no animal found in the post's photos"
        if finish is not None:
            finish(error)
            return True
        with storage.session_scope(self._sessions) as session:
            storage.set_post_state(
                session, post.id, PostState.PROCESSING, now=now, stage=Stage.VISION, error=error
            )
        return True

    def _read_crop(self, crop_path: str) -> np.ndarray:
        try:
            return self._read_image(crop_path)
        except OSError as exc:
            if _is_local_io_error(exc):
                raise CouldNotLookError(f"crop {crop_path}: {exc}") from exc
            raise

    def _segment_photo(
        self,
        photo_pk: int,
        path: Path,
        vision: VisionModels,
        *,
        now: datetime,
        report: PipelineReport,
    ) -> None:
        error = None
        animals: list[tuple[str, float, tuple[int, int, int, int], str]] = []
        try:
            rgb = self._read_image(path)
            for n, crop in enumerate(vision.segmenter.segment(rgb)):
                crop_path = self._write_crop(photo_pk, n, crop.crop)
                animals.append((crop.species.value, crop.score, crop.box, str(crop_path)))
        except (OSError, ValueError) as exc:
            if _is_local_io_error(exc):  # could not look: nothing is recorded for the photo
                raise CouldNotLookError(f"photo #{photo_pk}: {type(exc).__name__}: {exc}") from exc
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("photo #%d could not be segmented: %s", photo_pk, error)
            report.failures.append(f"photo #{photo_pk}: {error}")
            animals = []
        with storage.session_scope(self._sessions) as session:
            store.record_segmentation(
                session,
                photo_pk,
                backend=vision.segmenter.name,
                animals=animals,
                error=error,
                now=now,
            )
        report.photos_segmented += 1
        report.animals += len(animals)

    def _write_crop(self, photo_pk: int, n: int, crop: np.ndarray) -> str:
        encoded = io.BytesIO()
        Image.fromarray(crop).save(encoded, format="PNG")
        return self._files.put(f"crops/{photo_pk}_{n}.png", encoded.getvalue())

    def _read_image(self, reference: str | Path) -> np.ndarray:
        """An RGB photo or crop, from a local file or the database (`bot.files`)."""
        with Image.open(io.BytesIO(read_file(reference, self._sessions))) as image:
            return np.asarray(image.convert("RGB"))

    def _index_stage(self, post: Post, *, now: datetime) -> None:
        from index import PartitionKey

        model_id = self.vision.embedder.model_id
        with storage.session_scope(self._sessions) as session:
            label = store.get_label(session, post.id)
            animals = store.animals_of_post(session, post.id)
            vectors = store.embeddings_of(session, [a.id for a in animals], model_id=model_id)
            first_post: dict[int, int] = {}
            for owner in store.owners_of_animals(session, [a.id for a in animals]):
                first_post[owner.animal_id] = min(
                    owner.post_pk, first_post.get(owner.animal_id, owner.post_pk)
                )
        assert label is not None  # the text stage ran
        for animal in animals:
            if animal.id not in vectors:
                continue
            if animal.id in self.index and first_post.get(animal.id) != post.id:
                continue  # filed under the first post that showed it (as a rebuild does)
            key = PartitionKey(species=animal.species, kind=label.kind, city=label.city)
            if self.index.partition_of(animal.id) == key:
                continue
            # New, or its post was edited into another kind or city: file it afresh.
            self.index.remove([animal.id])
            self.index.add(key, [animal.id], vectors[animal.id][None, :], model_id=model_id)
            self._index_dirty = True
        self._advance(post.id, PostState.PROCESSING, Stage.INDEXED, now=now)

    def _match_stage(self, post: Post, *, now: datetime, report: PipelineReport) -> None:
        """Search the opposite kind, same species, cities within reach; score per case;
        record the best candidates with reasons and accept at most one."""

        vision = self.vision
        policy = vision.match_policy
        with storage.session_scope(self._sessions) as session:
            label = store.get_label(session, post.id)
            animals = store.animals_of_post(session, post.id)
            vectors = store.embeddings_of(
                session, [a.id for a in animals], model_id=vision.embedder.model_id
            )
            resolved = store.is_case_resolved(session, post.case_id)
        animals = [a for a in animals if a.id in vectors]
        if label is not None and animals and not resolved:
            candidates = self._checked_by_text(
                post, self._candidates(post, label, animals, vectors, policy), now=now
            )
            with storage.session_scope(self._sessions) as session:
                for candidate in candidates:
                    record = self._record_match(session, post, animals, candidate, now=now)
                    report.matches += 1
                    report.accepted += record.accepted
            for candidate in candidates:
                if candidate.accepted:
                    logger.info("match for %s: %s", post.url, "; ".join(candidate.reasons))
        self._advance(post.id, PostState.PROCESSING, Stage.MATCHED, now=now)

    def _checked_by_text(self, post: Post, candidates: list[Any], *, now: datetime) -> list[Any]:
        """Each candidate after the two posts' texts are compared (sex, solid colour)."""
        from bot.text_checks import check_texts
        from text import classify_post

        if not candidates:
            return []
        query = classify_post(post.text, now=now)
        checked = []
        with storage.session_scope(self._sessions) as session:
            for candidate in candidates:
                case_id = int(candidate.post_id.split(":", 1)[1])
                owner = self._owners[(case_id, candidate.pairs[0].candidate_animal_id)]
                other = storage.get_post_by_pk(session, owner.post_pk)
                checked.append(check_texts(candidate, query, other.text, now=now))
        return checked

    def _candidates(
        self,
        post: Post,
        label: store.LabelRecord,
        animals: list[store.AnimalRecord],
        vectors: dict[int, np.ndarray],
        policy: Any,
    ) -> list[Any]:
        from index.matching import PostRef, explain, hits_from_candidates, rank_post_candidates
        from text import distance_km

        wanted = SEARCH_KINDS[label.kind]
        max_km = self._settings.matching.max_distance_km
        species = {a.species for a in animals}
        keys = [
            info.key
            for info in self.index.partitions()
            if info.key.species in species
            and info.key.kind in wanted
            and _within_reach(label.city, info.key.city, max_km, distance_km)
        ]
        if not keys:
            return []
        results = self.index.search(
            np.stack([vectors[a.id] for a in animals]), keys, k=self._settings.matching.top_k
        )
        hit_ids = {c.id for row in results for c in row}
        with storage.session_scope(self._sessions) as session:
            owners = [
                o
                for o in store.owners_of_animals(session, hit_ids)
                if o.case_id != post.case_id
                and o.kind in wanted
                and not store.is_case_resolved(session, o.case_id)
            ]
        # The unit of matching is the case: a repost in five groups is one candidate.
        self._owners = {}
        for owner in sorted(owners, key=lambda o: (o.date, o.post_pk)):
            self._owners.setdefault((owner.case_id, owner.animal_id), owner)
        post_of = {o.animal_id: f"case:{o.case_id}" for o in owners}
        refs: dict[str, PostRef] = {}
        distances: dict[str, float | None] = {}
        for owner in sorted(owners, key=lambda o: (o.date, o.post_pk)):
            ref_id = f"case:{owner.case_id}"
            previous = refs.get(ref_id)
            refs[ref_id] = PostRef(
                post_id=ref_id,
                kind=owner.kind,
                published_at=previous.published_at if previous else owner.date,
                animal_ids=(*(previous.animal_ids if previous else ()), owner.animal_id),
            )
            distances[ref_id] = _distance(label.city, owner.city, distance_km)
        query = PostRef(
            post_id=f"case:{post.case_id}",
            kind=label.kind,
            published_at=post.date,
            animal_ids=tuple(a.id for a in animals),
        )
        hits = hits_from_candidates([a.id for a in animals], results, post_of)
        ranked = rank_post_candidates(query, hits, refs, distances, policy)
        return explain(ranked, policy)[:3]

    def _record_match(
        self,
        session: Any,
        post: Post,
        animals: list[store.AnimalRecord],
        candidate: Any,
        *,
        now: datetime,
    ) -> store.MatchRecord:
        other_case = int(candidate.post_id.split(":", 1)[1])
        best = candidate.pairs[0]
        owner = self._owners[(other_case, best.candidate_animal_id)]
        mine = next(a for a in animals if a.id == best.query_animal_id)
        query_side = (post.case_id, post.id, mine.photo_position)
        other_side = (other_case, owner.post_pk, owner.photo_position)
        lost, found = (
            (query_side, other_side) if candidate.query_is_lost else (other_side, query_side)
        )
        return store.upsert_match(
            session,
            lost_case_id=lost[0],
            found_case_id=found[0],
            lost_post_pk=lost[1],
            found_post_pk=found[1],
            lost_photo_position=lost[2],
            found_photo_position=found[2],
            similarity=candidate.similarity,
            confidence=candidate.confidence,
            accepted=candidate.accepted,
            reasons=candidate.reasons,
            model_id=self.vision.embedder.model_id,
            now=now,
        )

    def _comment_stage(self, post: Post, *, now: datetime, report: PipelineReport) -> None:
        """Comment on this post's accepted matches that have no comment yet."""
        with storage.session_scope(self._sessions) as session:
            matches = store.matches_of_post(session, post.id, accepted_only=True)
        for match in matches:
            self._comments.comment_on(
                match, trigger=post, now=now, record=lambda s: report.count(report.comments, s)
            )
        self._advance(post.id, PostState.DONE, Stage.DONE, now=now)


def _add_entries(
    target: FaissIndex, entries: Sequence[tuple[Any, np.ndarray]], model_id: str
) -> None:
    from index import PartitionKey

    by_key: dict[Any, tuple[list[int], list[np.ndarray]]] = {}
    for entry, vector in entries:
        key = PartitionKey(species=entry.species, kind=entry.kind, city=entry.city)
        ids, vectors = by_key.setdefault(key, ([], []))
        ids.append(entry.animal_id)
        vectors.append(vector)
    for key, (ids, vectors) in by_key.items():
        target.add(key, ids, np.stack(vectors), model_id=model_id)


def _within_reach(city: str | None, other: str | None, max_km: float, distance: Any) -> bool:
    """Unknown cities stay in reach (the distance factor lowers their confidence)."""
    if city is None or other is None or city == other:
        return True
    km = distance(city, other)
    return km is None or km <= max_km


def _distance(city: str | None, other: str | None, distance: Any) -> float | None:
    if city is not None and city == other:
        return 0.0
    if city is None or other is None:
        return None
    return distance(city, other)
