"""The training pipeline: ORM -> engine -> cached factor tables; activation; fold-in.

``model_train`` runs export -> fit on a holdout split -> evaluate -> refit on
all data -> persist -> activate, recording each stage's time and progress on
the ``ModelVersion``. Anything that fails marks that version ``failed`` with its
error; the active version is untouched and keeps serving.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray

from ratings.models import Rating
from recommender.engine import Interactions
from recommender.engine.foldin import fold_in_user
from recommender.engine.metrics import evaluate_ranking, evaluate_ratings
from recommender.engine.registry import ALGORITHM_PATHS, make_model
from recommender.engine.split import per_user_split

from .export import ratings_export
from .locks import training_lock
from .models import (
    ItemFactor,
    ItemNeighbor,
    ModelKind,
    ModelVersion,
    UserFactor,
    VersionStatus,
    vector_to_bytes,
)
from .selectors import user_cache_invalidate
from .serving import ServingVersion, serving_cache

logger = logging.getLogger(__name__)

#: Algorithms whose fitted state the site can serve, and the kind each fills.
SERVABLE_KINDS: dict[str, str] = {
    "explicit_als": ModelKind.RATING,
    "bias_baseline": ModelKind.RATING,
    "sgd_mf": ModelKind.RATING,
    "lbfgs_mf": ModelKind.RATING,
    "implicit_als": ModelKind.RANKING,
    "pure_svd": ModelKind.RANKING,
    "item_knn": ModelKind.SIMILARITY,
}

#: The holdout metric each kind is judged by, and whether higher is better.
GATE_METRIC: dict[str, tuple[str, bool]] = {
    ModelKind.RATING: ("rmse", False),
    ModelKind.RANKING: ("ndcg@10", True),
    ModelKind.SIMILARITY: ("ndcg@10", True),
}

SERVING_GENERATION_KEY = "recommender:serving-generation"

Progress = Callable[[str, int], None]


class PromotionRefused(Exception):
    """The promotion gate kept a trained version from replacing the active one."""

    def __init__(self, version: ModelVersion, message: str) -> None:
        super().__init__(message)
        self.version = version


class NothingToTrain(ValueError):
    """There are no ratings to learn from."""


def algorithm_kind(algorithm: str) -> str:
    if algorithm not in ALGORITHM_PATHS:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; valid names: {', '.join(sorted(ALGORITHM_PATHS))}"
        )
    if algorithm not in SERVABLE_KINDS:
        raise ValueError(
            f"{algorithm!r} cannot be served by the site (no factor or neighbour tables); "
            f"servable: {', '.join(sorted(SERVABLE_KINDS))}"
        )
    return SERVABLE_KINDS[algorithm]


def bump_serving_generation() -> None:
    """Tell every web process to reload the active versions on its next request."""
    cache.set(SERVING_GENERATION_KEY, time.time_ns(), timeout=None)


# ---- the pipeline -----------------------------------------------------------------------------------------


@dataclass
class _Run:
    version: ModelVersion
    progress: Progress | None
    started: float = 0.0

    def stage(self, name: str, percent: int) -> None:
        now = time.perf_counter()
        self.version.stage = name
        self.version.progress = percent
        ModelVersion.objects.filter(pk=self.version.pk).update(stage=name, progress=percent)
        if self.progress is not None:
            self.progress(name, percent)
        self.started = now

    def done(self, name: str) -> None:
        self.version.timings[name] = round(time.perf_counter() - self.started, 4)


def _fail_interrupted_versions() -> int:
    """Versions left ``training`` by a killed run: mark failed and drop their rows.

    Only called while holding the training lock, so no live run owns them.
    """
    stale = list(ModelVersion.objects.filter(status=VersionStatus.TRAINING).values_list("pk", flat=True))
    for pk in stale:
        _delete_version_rows(pk)
    ModelVersion.objects.filter(pk__in=stale).update(
        status=VersionStatus.FAILED,
        error="interrupted: the training run stopped before finishing (worker killed or lost)",
        finished_at=timezone.now(),
    )
    return len(stale)


def _delete_version_rows(version_id: int) -> None:
    for model in (UserFactor, ItemFactor, ItemNeighbor):
        model.objects.filter(version_id=version_id).delete()


def model_train(
    *,
    kind: str | None = None,
    algorithm: str | None = None,
    params: dict[str, Any] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    task_id: str = "",
) -> ModelVersion:
    """Train one model version and activate it if it passes the promotion gate.

    ``algorithm`` defaults to the configured one for ``kind``. Raises
    ``TrainingAlreadyRunning`` if another run holds the lock, ``PromotionRefused``
    if the gate keeps the new version out (it stays ``ready``), and re-raises any
    training error after marking the version ``failed``.
    """
    if algorithm is None:
        if kind is None:
            raise ValueError("give a kind or an algorithm")
        algorithm = settings.TASTEBASE_DEFAULT_ALGORITHMS[kind]
    algorithm_kind_ = algorithm_kind(algorithm)
    if kind is not None and kind != algorithm_kind_:
        raise ValueError(f"{algorithm!r} trains a {algorithm_kind_} model, not a {kind} model")
    kind = algorithm_kind_
    model = make_model(algorithm, {k: str(v) for k, v in (params or {}).items()})

    with training_lock():
        _fail_interrupted_versions()
        version = ModelVersion.objects.create(
            kind=kind, algorithm=algorithm, hyperparameters=_jsonable(model.get_params()), task_id=task_id
        )
        run = _Run(version, progress)
        try:
            _train_version(run, model, algorithm)
        except BaseException as exc:
            # BaseException: a soft time limit or KeyboardInterrupt must also leave a clear record.
            _delete_version_rows(version.pk)
            ModelVersion.objects.filter(pk=version.pk).update(
                status=VersionStatus.FAILED,
                error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:10_000],
                finished_at=timezone.now(),
                timings=version.timings,
            )
            version.refresh_from_db()
            logger.exception("training %s failed", version)
            raise
    version.refresh_from_db()
    model_version_activate(version=version, force=force)
    model_versions_prune(kind=kind)
    version.refresh_from_db()
    return version


def _train_version(run: _Run, model: Any, algorithm: str) -> None:
    version = run.version
    run.stage("export", 5)
    data, watermark = ratings_export()
    run.done("export")
    if data.nnz == 0:
        raise NothingToTrain("there are no ratings to train on; import some first (load_demo_data)")
    version.n_users, version.n_items, version.n_ratings = data.n_users, data.n_items, data.nnz
    version.data_watermark = watermark

    run.stage("fit", 15)
    train, test = per_user_split(data, test_fraction=settings.TASTEBASE_HOLDOUT_FRACTION, random_state=0)
    holdout_model = make_model(algorithm, {k: str(v) for k, v in model.get_params().items()})
    holdout_model.fit(train)
    run.done("fit")

    run.stage("evaluate", 45)
    metrics: dict[str, float | None] = {}
    if not getattr(holdout_model, "ranking_only", False):
        metrics.update(evaluate_ratings(holdout_model, test))
    ranking_test = _sample_users(test, settings.TASTEBASE_EVAL_MAX_USERS)
    try:
        metrics.update(evaluate_ranking(holdout_model, train, ranking_test, k=10))
    except ValueError as exc:  # e.g. no test user has a rating >= 4: nothing to rank against
        logger.warning("ranking metrics skipped: %s", exc)
    version.metrics = _jsonable(metrics)
    run.done("evaluate")

    if settings.TASTEBASE_REFIT_ON_ALL:
        run.stage("refit", 55)
        model.fit(data)
        run.done("refit")
    else:
        model = holdout_model

    run.stage("persist", 80)
    _persist(version, model)
    run.done("persist")
    version.status = VersionStatus.READY
    version.stage = "ready"
    version.progress = 100
    version.finished_at = timezone.now()
    version.global_mean = float(model.global_mean_)
    version.rating_min, version.rating_max = (float(x) for x in model.rating_scale_)
    version.save()


def _sample_users(test: Interactions, max_users: int) -> Interactions:
    """The test ratings of at most ``max_users`` users (seeded), so evaluating a
    ranking model costs the same on 20M ratings as on 1M; rating metrics use all."""
    users_with_tests = np.flatnonzero(np.diff(test.csr.indptr) > 0)
    if users_with_tests.shape[0] <= max_users:
        return test
    chosen = np.random.default_rng(0).choice(users_with_tests, size=max_users, replace=False)
    rows, _, _ = test.to_coo_arrays()
    return test.select(np.isin(rows, chosen))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


# ---- persistence ------------------------------------------------------------------------------------------


def factor_arrays(
    model: Any,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """(user vectors, user biases, item vectors, item biases) of a fitted factor model.

    Bias-only models have zero-length vectors; models without biases get zeros.
    """
    n_users, n_items = model.data_.n_users, model.data_.n_items
    user_vectors = getattr(model, "user_factors_", None)
    item_vectors = getattr(model, "item_factors_", None)
    if user_vectors is None or item_vectors is None:
        user_vectors = np.zeros((n_users, 0), dtype=np.float32)
        item_vectors = np.zeros((n_items, 0), dtype=np.float32)
    user_bias = getattr(model, "user_bias_", None)
    # PureSVD scores with item means + Q x_u: its item means play the item-bias part.
    item_bias = getattr(model, "item_bias_", getattr(model, "item_means_", None))
    if user_bias is None:
        user_bias = np.zeros(n_users, dtype=np.float32)
    if item_bias is None:
        item_bias = np.zeros(n_items, dtype=np.float32)
    return (
        np.ascontiguousarray(user_vectors, dtype=np.float32),
        np.asarray(user_bias, dtype=np.float32),
        np.ascontiguousarray(item_vectors, dtype=np.float32),
        np.asarray(item_bias, dtype=np.float32),
    )


def _persist(version: ModelVersion, model: Any) -> None:
    data: Interactions = model.data_
    if version.kind == ModelKind.SIMILARITY:
        neighbors = np.asarray(model.neighbors_)[:, : settings.TASTEBASE_NEIGHBORS]
        scores = np.asarray(model.neighbor_scores_)[:, : settings.TASTEBASE_NEIGHBORS]
        valid = (neighbors >= 0) & np.isfinite(scores) & (scores > 0)
        item_idx, rank = np.nonzero(valid)
        rows = zip(
            data.item_ids[item_idx].tolist(),
            data.item_ids[neighbors[item_idx, rank]].tolist(),
            scores[item_idx, rank].astype(float).tolist(),
            (rank + 1).tolist(),
            strict=True,
        )
        _bulk_insert(
            ItemNeighbor,
            ["version_id", "item_id", "neighbor_id", "score", "rank"],
            ((version.pk, i, j, s, r) for i, j, s, r in rows),
        )
        return
    user_vectors, user_bias, item_vectors, item_bias = factor_arrays(model)
    now = timezone.now()
    _bulk_insert(
        UserFactor,
        ["version_id", "user_id", "bias", "vector", "updated_at"],
        (
            (version.pk, int(u), float(b), vector_to_bytes(v), now)
            for u, b, v in zip(data.user_ids.tolist(), user_bias.tolist(), user_vectors, strict=True)
        ),
    )
    _bulk_insert(
        ItemFactor,
        ["version_id", "item_id", "bias", "vector"],
        (
            (version.pk, int(i), float(b), vector_to_bytes(v))
            for i, b, v in zip(data.item_ids.tolist(), item_bias.tolist(), item_vectors, strict=True)
        ),
    )


def _bulk_insert(model: Any, columns: list[str], rows: Any, batch_size: int = 5000) -> None:
    """COPY on Postgres, batched bulk_create elsewhere; one transaction either way."""
    table = model._meta.db_table
    with transaction.atomic():
        if connection.vendor == "postgresql":
            names = ", ".join(columns)
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
            ):  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            return
        batch: list[Any] = []
        for row in rows:
            batch.append(model(**dict(zip(columns, row, strict=True))))
            if len(batch) >= batch_size:
                model.objects.bulk_create(batch)
                batch = []
        if batch:
            model.objects.bulk_create(batch)


# ---- activation, rollback, pruning ------------------------------------------------------------------------


def _gate(candidate: ModelVersion, current: ModelVersion) -> str | None:
    """None if ``candidate`` may replace ``current``; else why not."""
    metric, higher_is_better = GATE_METRIC[candidate.kind]
    new, old = candidate.metrics.get(metric), current.metrics.get(metric)
    if new is None or old is None:
        return None
    margin = settings.TASTEBASE_PROMOTION_MARGIN
    worse_by = (old - new) if higher_is_better else (new - old)
    if worse_by > margin:
        return (
            f"promotion gate refused version #{candidate.pk}: holdout {metric} {new:.4f} is worse than "
            f"active version #{current.pk}'s {old:.4f} by {worse_by:.4f} (allowed margin {margin}); "
            "use --force to activate it anyway"
        )
    return None


def model_version_activate(*, version: ModelVersion, force: bool = False) -> ModelVersion:
    """Make ``version`` the active one of its kind, in one transaction."""
    if version.status not in (VersionStatus.READY, VersionStatus.RETIRED, VersionStatus.ACTIVE):
        raise ValueError(
            f"version #{version.pk} is {version.status}; only ready or retired versions can be activated"
        )
    with transaction.atomic():
        current = (
            ModelVersion.objects.select_for_update()
            .filter(kind=version.kind, status=VersionStatus.ACTIVE)
            .exclude(pk=version.pk)
            .first()
        )
        if current is not None and not force:
            reason = _gate(version, current)
            if reason:
                raise PromotionRefused(version, reason)
        if current is not None:
            # Retire first: at most one active version per kind is a database constraint.
            ModelVersion.objects.filter(pk=current.pk).update(status=VersionStatus.RETIRED)
        ModelVersion.objects.filter(pk=version.pk).update(
            status=VersionStatus.ACTIVE, activated_at=timezone.now()
        )
        transaction.on_commit(bump_serving_generation)
    version.refresh_from_db()
    return version


def model_version_rollback(*, kind: str, version_id: int | None = None) -> ModelVersion:
    """Re-activate ``version_id``, or the most recently retired version of ``kind``."""
    candidates = ModelVersion.objects.filter(
        kind=kind, status__in=[VersionStatus.READY, VersionStatus.RETIRED]
    )
    target = (
        candidates.filter(pk=version_id).first()
        if version_id is not None
        else candidates.filter(status=VersionStatus.RETIRED).order_by("-activated_at", "-pk").first()
    )
    if target is None:
        raise ValueError(f"no ready or retired {kind} version to roll back to")
    return model_version_activate(version=target, force=True)


def model_versions_prune(*, kind: str, keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` inactive versions of ``kind``; never the active one."""
    keep = settings.TASTEBASE_KEEP_VERSIONS if keep is None else keep
    inactive = ModelVersion.objects.filter(kind=kind).exclude(
        status__in=[VersionStatus.ACTIVE, VersionStatus.TRAINING]
    )
    doomed = list(inactive.order_by("-created_at", "-pk").values_list("pk", flat=True)[keep:])
    for pk in doomed:
        _delete_version_rows(pk)
    ModelVersion.objects.filter(pk__in=doomed).delete()
    return len(doomed)


# ---- fold-in: a user's factors from their current ratings, item side fixed ---------------------------------


def user_fold_in_version(
    *, version: ServingVersion, user_id: int
) -> tuple[NDArray[np.float32], float] | None:
    """Recompute and store ``user_id``'s factors for one active version.

    One exact half-step of the version's own solver with the item factors
    fixed (milliseconds). Returns None when the user has no rating on an item
    the version knows (the caller then falls back to popularity).
    """
    rows = list(Rating.objects.filter(user_id=user_id).values_list("item_id", "score"))
    item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    scores = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    positions = version.positions(item_ids)
    known = positions >= 0
    if not known.any():
        UserFactor.objects.filter(version_id=version.version_id, user_id=user_id).delete()
        return None
    vector, bias = fold_in_user(
        algorithm=version.algorithm,
        params=version.hyperparameters,
        item_factors=version.item_vectors,
        item_bias=version.item_bias,
        global_mean=version.global_mean,
        rating_scale=version.rating_scale,
        item_positions=positions[known],
        ratings=scores[known],
        gram=version.gram if version.algorithm == "implicit_als" else None,
    )
    vector32 = np.asarray(vector, dtype=np.float32)
    UserFactor.objects.update_or_create(
        version_id=version.version_id,
        user_id=user_id,
        defaults={"bias": float(bias), "vector": vector_to_bytes(vector32)},
    )
    return vector32, float(bias)


def user_factors_refresh(user_id: int) -> None:
    """After a rating change: fold the user into every active factor version and
    drop their cached recommendations, so the next page reflects the change."""
    for version in serving_cache.active().values():
        try:
            user_fold_in_version(version=version, user_id=user_id)
        except Exception:  # a fold-in problem must never break rating itself
            logger.exception("fold-in of user %s into version %s failed", user_id, version.version_id)
    user_cache_invalidate(user_id)
