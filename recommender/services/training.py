"""``model_train``: export -> holdout fit -> judge -> refit -> persist -> activate.

Each stage's time and the run's progress are recorded on the ``ModelVersion``.
The candidate and the live version's configuration are judged on the same
holdout in the same run: the live algorithm with its hyperparameters is refit
on the candidate's training split (skipped when the configuration is the same:
same seed, same data, same model). Anything that fails marks the version
``failed`` with its error; the active version is untouched and keeps serving.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from ratings.models import Rating
from recommender.engine import Interactions
from recommender.engine.metrics import evaluate_ranking, evaluate_ratings
from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm, make_model
from recommender.engine.split import per_user_split
from recommender.engine.tables import FactorTables, NeighborTableRanker, NeighborTables

from ..export import ratings_export_read
from ..locks import TrainingLockHandle, TrainingLockLost, training_lock
from ..models import ModelKind, ModelVersion, VersionStatus
from ..spark import backend_algorithm, spark_training
from .activation import model_version_activate, model_versions_prune
from .persistence import version_rows_delete, version_tables_persist

logger = logging.getLogger(__name__)

#: Seed of the holdout split, recorded on every version it judged.
HOLDOUT_SEED = 0

Progress = Callable[[str, int], None]


class NothingToTrain(ValueError):
    """There are no ratings to learn from."""


def servable_algorithms() -> dict[str, str]:
    """Registry name -> the kind it serves, for every servable algorithm (imports them all)."""
    kinds = {name: get_algorithm(name).serving_kind for name in ALGORITHM_PATHS}
    return {name: kind for name, kind in kinds.items() if kind is not None}


def algorithm_kind(algorithm: str) -> str:
    """The kind ``algorithm`` serves; ValueError naming the valid names otherwise."""
    kind = get_algorithm(algorithm).serving_kind  # ValueError for an unknown name
    if kind is None:
        raise ValueError(
            f"{algorithm!r} cannot be served by the site (no factor or neighbour tables); "
            f"servable: {', '.join(sorted(servable_algorithms()))}"
        )
    return kind


@dataclass
class _Run:
    version: ModelVersion
    progress: Progress | None
    lock: TrainingLockHandle
    started: float = 0.0

    def stage(self, name: str, percent: int) -> None:
        self.version.stage = name
        self.version.progress = percent
        ModelVersion.objects.filter(pk=self.version.pk).update(stage=name, progress=percent)
        if self.progress is not None:
            self.progress(name, percent)
        self.started = time.perf_counter()

    def done(self, name: str) -> None:
        self.version.timings[name] = round(time.perf_counter() - self.started, 4)


def _fail_interrupted_versions() -> int:
    """Versions left ``training`` by a killed run (or one that lost its lock):
    mark failed and drop their rows. Only called while holding the training lock."""
    stale = list(ModelVersion.objects.filter(status=VersionStatus.TRAINING).values_list("pk", flat=True))
    for pk in stale:
        version_rows_delete(pk)
    ModelVersion.objects.filter(pk__in=stale).update(
        status=VersionStatus.FAILED,
        error="interrupted: the training run stopped before finishing (worker killed, or its lock lapsed)",
        finished_at=timezone.now(),
    )
    return len(stale)


def default_algorithm(kind: str, *, ratings: int | None = None) -> str:
    """The algorithm a run of ``kind`` trains when it names none.

    ``TASTEBASE_DEFAULT_ALGORITHMS[kind]``, or the kind's entry in
    ``TASTEBASE_LARGE_CATALOG_ALGORITHMS`` once the ratings table holds more than
    ``TASTEBASE_LARGE_CATALOG_RATINGS`` rows (``ratings``: that count, if the caller
    has it; otherwise it is counted here, and only when the kind has such an entry).
    """
    configured: str = settings.TASTEBASE_DEFAULT_ALGORITHMS[kind]
    large = settings.TASTEBASE_LARGE_CATALOG_ALGORITHMS.get(kind)
    if large is None or large == configured:
        return configured
    if ratings is None:
        ratings = Rating.objects.count()
    return large if ratings > settings.TASTEBASE_LARGE_CATALOG_RATINGS else configured


def model_train(
    *,
    kind: str | None = None,
    algorithm: str | None = None,
    params: dict[str, Any] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    task_id: str = "",
    backend: str | None = None,
) -> ModelVersion:
    """Train one model version and activate it if it passes the promotion gate.

    ``algorithm`` defaults to the configured one for ``kind``. Raises
    ``TrainingAlreadyRunning`` if another run holds the lock, ``PromotionRefused``
    if the gate keeps the new version out (it stays ``ready``),
    ``TrainingLockLost`` if the run lost its lock, and re-raises any training
    error after marking the version ``failed``.
    """
    if algorithm is None:
        if kind is None:
            raise ValueError("give a kind or an algorithm")
        algorithm = default_algorithm(kind)
    # Training backend (recommender/spark.py): on "spark", explicit_als/implicit_als train as their Spark twins.
    algorithm = backend_algorithm(algorithm, backend=backend)
    served_kind = algorithm_kind(algorithm)
    if kind is not None and kind != served_kind:
        raise ValueError(f"{algorithm!r} trains a {served_kind} model, not a {kind} model")
    kind = served_kind
    if algorithm == settings.TASTEBASE_DEFAULT_ALGORITHMS[kind]:
        # The kind's configured hyperparameters, each overridable by the run's own.
        params = {**settings.TASTEBASE_DEFAULT_PARAMS.get(kind, {}), **(params or {})}
    model = make_model(algorithm, {k: str(v) for k, v in (params or {}).items()})
    _compile_kernels(algorithm, model.get_params())
    live = ModelVersion.objects.filter(kind=kind, status=VersionStatus.ACTIVE).first()
    if live is not None:
        _compile_kernels(live.algorithm, live.hyperparameters)

    with training_lock() as lock:
        _fail_interrupted_versions()
        version = ModelVersion.objects.create(
            kind=kind, algorithm=algorithm, hyperparameters=_jsonable(model.get_params()), task_id=task_id
        )
        run = _Run(version, progress, lock)
        try:
            with spark_training():  # Spark fits (if any) build their session lazily, inside this try
                trained_on = _train_version(run, model, algorithm)
        except BaseException as exc:
            # BaseException: a soft time limit or KeyboardInterrupt must also leave a clear record.
            _record_failure(version, exc)
            raise
        run.stage("activate", 95)
        try:
            model_version_activate(version=version, force=force, lock=lock, trained_on=trained_on)
        except TrainingLockLost as exc:
            _record_failure(version, exc)
            raise
        finally:
            run.done("activate")
            ModelVersion.objects.filter(pk=version.pk).update(timings=version.timings)
            # Finished (active, or ready behind the gate): 100 %; a failed run keeps the stage it failed in.
            ModelVersion.objects.filter(pk=version.pk).exclude(status=VersionStatus.FAILED).update(
                stage="done", progress=100
            )
        model_versions_prune(kind=kind)
    version.refresh_from_db()
    return version


def _compile_kernels(algorithm: str, params: dict[str, Any]) -> None:
    """Fit ``algorithm`` once on a tiny table before taking the lock.

    numba compiles a kernel on its first call (or loads it from the on-disk
    cache) while holding the GIL, which would stall the lock's heartbeat for
    seconds inside the run. Errors are left for the real fit to report.
    """
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((8, 8)) < 0.7)
    tiny = Interactions.from_arrays(users, items, rng.integers(1, 6, users.shape[0]).astype(np.float32))
    # The real fit raises the same error, recorded on the version.
    with contextlib.suppress(Exception):
        make_model(algorithm, params).fit(tiny)


def _record_failure(version: ModelVersion, exc: BaseException) -> None:
    version_rows_delete(version.pk)
    ModelVersion.objects.filter(pk=version.pk).exclude(status=VersionStatus.ACTIVE).update(
        status=VersionStatus.FAILED,
        error="".join(traceback.format_exception_only(type(exc), exc)).strip()[:10_000],
        finished_at=timezone.now(),
        timings=version.timings,
    )
    version.refresh_from_db()
    logger.error("training %s failed: %s", version, exc)


def _evaluate(
    kind: str, model: Any, train: Interactions, test: Interactions, ranking_test: Interactions
) -> dict[str, float]:
    """Holdout metrics of a fitted model, judged on what the site would serve.

    Errors propagate (they fail the run). The similarity kind ranks with the
    stored top ``TASTEBASE_NEIGHBORS`` positive neighbours, as the site does.
    """
    metrics: dict[str, float] = {}
    if kind == ModelKind.SIMILARITY:
        tables = model.export_tables().top(settings.TASTEBASE_NEIGHBORS)
        ranker = NeighborTableRanker(tables, train, model.popularity_)
        metrics.update(evaluate_ranking(ranker, train, ranking_test, k=10))  # type: ignore[arg-type]
        return metrics
    if not getattr(model, "ranking_only", False):
        metrics.update(evaluate_ratings(model, test))
    metrics.update(evaluate_ranking(model, train, ranking_test, k=10))
    return metrics


def _train_version(run: _Run, model: Any, algorithm: str) -> Interactions:
    """Fit, judge, refit and persist ``run.version``; returns the ratings it was trained on."""
    version = run.version
    run.stage("export", 5)
    export = ratings_export_read()  # inside ratings_export_shared(): the run's one read, shared
    data, watermark, exported_at = export.data, export.watermark, export.started_at
    run.done("export")
    if data.nnz == 0:
        raise NothingToTrain("there are no ratings to train on; import some first (load_demo_data)")
    version.n_users, version.n_items, version.n_ratings = data.n_users, data.n_items, data.nnz
    version.data_watermark, version.exported_at = watermark, exported_at

    run.stage("fit", 15)
    fraction = settings.TASTEBASE_HOLDOUT_FRACTION
    train, test, ranking_test = _holdout(data, fraction, settings.TASTEBASE_EVAL_MAX_USERS)
    holdout_model = make_model(algorithm, model.get_params()).fit(train)
    run.done("fit")

    run.stage("evaluate", 40)
    version.metrics = _jsonable(_evaluate(version.kind, holdout_model, train, test, ranking_test))
    run.done("evaluate")
    version.evaluation = _jsonable(
        {
            "holdout": {
                "watermark": watermark.isoformat() if watermark else None,
                "seed": HOLDOUT_SEED,
                "fraction": fraction,
                "test_ratings": test.nnz,
                "users_sampled": int(np.count_nonzero(np.diff(ranking_test.csr.indptr))),
                "max_users": settings.TASTEBASE_EVAL_MAX_USERS,
            },
            "incumbent": _judge_incumbent(run, version, train, test, ranking_test),
        }
    )

    if settings.TASTEBASE_REFIT_ON_ALL:
        run.stage("refit", 55)
        _refit(model, holdout_model, data)
        run.done("refit")
    else:
        model = holdout_model
    # The persisted model's tables need the memory (the split itself stays while the export is shared).
    del holdout_model, train, test, ranking_test

    run.stage("persist", 80)
    tables = model.export_tables()
    if isinstance(tables, NeighborTables):
        tables = tables.top(settings.TASTEBASE_NEIGHBORS)
    tables.check_finite()  # NaN/inf anywhere fails the run before anything is written
    run.lock.ensure_held(f"persisting version #{version.pk}")
    version_tables_persist(version=version, tables=tables)
    run.done("persist")
    run.lock.ensure_held(f"marking version #{version.pk} ready")
    if isinstance(tables, FactorTables):
        global_mean, scale = tables.global_mean, tables.rating_scale
    else:
        global_mean, scale = model.global_mean_, model.rating_scale_
    # Only a version still ``training`` becomes ready: if another run declared it
    # interrupted meanwhile, it stays failed.
    updated = ModelVersion.objects.filter(pk=version.pk, status=VersionStatus.TRAINING).update(
        status=VersionStatus.READY,
        stage="ready",
        progress=100,
        finished_at=timezone.now(),
        global_mean=float(global_mean),
        rating_min=float(scale[0]),
        rating_max=float(scale[1]),
        n_users=version.n_users,
        n_items=version.n_items,
        n_ratings=version.n_ratings,
        data_watermark=version.data_watermark,
        exported_at=version.exported_at,
        metrics=version.metrics,
        evaluation=version.evaluation,
        timings=version.timings,
    )
    if not updated:
        raise TrainingLockLost(
            f"version #{version.pk} was taken over by another run (marked failed) while this run trained"
        )
    version.refresh_from_db()
    return data


def _refit(model: Any, holdout_model: Any, data: Interactions) -> None:
    """Fit ``model`` on all the ratings, starting from the holdout fit where the model can.

    A model whose ``fit`` takes ``init`` (a fitted model of the same class on
    the same id vocabularies) starts from those factors: the holdout fit saw 90%
    of the same ratings, so its factors are close to the answer and the refit
    needs fewer iterations. Other models fit from scratch.
    """
    if "init" in inspect.signature(model.fit).parameters:
        model.fit(data, init=holdout_model)
    else:
        model.fit(data)


def _judge_incumbent(
    run: _Run, version: ModelVersion, train: Interactions, test: Interactions, ranking_test: Interactions
) -> dict[str, Any] | None:
    """The live version's configuration, refit on this run's training split and
    evaluated on its test split, so the gate compares like with like."""
    live = ModelVersion.objects.filter(kind=version.kind, status=VersionStatus.ACTIVE).first()
    if live is None:
        return None
    judged: dict[str, Any] = {"version": live.pk, "algorithm": live.algorithm}
    if live.algorithm == version.algorithm and live.hyperparameters == version.hyperparameters:
        # Same configuration, same split, same seed: the same model and metrics.
        judged.update(refitted=False, metrics=version.metrics)
        return judged
    run.stage("judge", 45)
    try:
        live_model = make_model(live.algorithm, live.hyperparameters).fit(train)
        judged.update(refitted=True, metrics=_evaluate(version.kind, live_model, train, test, ranking_test))
    except Exception as exc:  # the live configuration failing here is its problem, not the candidate's
        logger.warning("could not refit live version #%s's configuration on the holdout: %s", live.pk, exc)
        judged.update(refitted=True, metrics={}, error=str(exc)[:1000])
    run.done("judge")
    return judged


#: The last holdout split: (weak reference to the data, fraction, max users, (train, test, ranking test)).
_last_holdout: (
    tuple[weakref.ref[Interactions], float, int, tuple[Interactions, Interactions, Interactions]] | None
) = None


def _holdout(
    data: Interactions, fraction: float, max_users: int
) -> tuple[Interactions, Interactions, Interactions]:
    """(train, test, ranking test) of ``data``: the seeded per-user split and its user sample.

    The kinds of one ``retrain`` share one export (the same ``data`` object),
    so the split, a function of the data, the fraction and the seed only, is
    computed once and handed to each (at 20M ratings it costs several
    seconds). The cache holds the data weakly and is cleared when the data goes.
    """
    global _last_holdout
    cached = _last_holdout
    if cached is not None and cached[0]() is data and cached[1:3] == (fraction, max_users):
        return cached[3]
    train, test = per_user_split(data, test_fraction=fraction, random_state=HOLDOUT_SEED)
    parts = (train, test, _sample_users(test, max_users))

    def forget(_ref: weakref.ref[Interactions]) -> None:
        global _last_holdout
        if _last_holdout is not None and _last_holdout[0] is _ref:
            _last_holdout = None

    _last_holdout = (weakref.ref(data, forget), fraction, max_users, parts)
    return parts


def _sample_users(test: Interactions, max_users: int) -> Interactions:
    """The test ratings of at most ``max_users`` users (seeded), so evaluating a
    ranking model costs the same on 20M ratings as on 1M; rating metrics use all."""
    users_with_tests = np.flatnonzero(np.diff(test.csr.indptr) > 0)
    if users_with_tests.shape[0] <= max_users:
        return test
    chosen = np.random.default_rng(HOLDOUT_SEED).choice(users_with_tests, size=max_users, replace=False)
    rows, _, _ = test.to_coo_arrays()
    return test.select(np.isin(rows, chosen))


def _jsonable(value: Any) -> Any:
    """JSON-safe copy; NaN/inf become None (JSON has no NaN), which the gate refuses."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
