"""Per-process cache of the active versions' item tables.

Each web or worker process loads the active factor versions' item side once
into an engine :class:`~recommender.engine.tables.FactorTables` and reuses it
until the set of active versions changes (a rollback, a new activation): then
the next request reloads. Scoring, predicted ratings and fold-in all run in
the engine on those tables; this module only reads the database.

Lists are computed on one BLAS thread (:func:`one_blas_thread`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController

from recommender.engine.tables import FactorTables

from .models import ItemFactor, ModelKind, ModelVersion, VersionStatus

logger = logging.getLogger(__name__)


@dataclass
class ServingVersion:
    """One active factor version: its identity and its item tables."""

    version_id: int
    kind: str
    algorithm: str
    hyperparameters: dict[str, Any]
    tables: FactorTables
    _model: Any = field(default=None, repr=False)

    @property
    def item_ids(self) -> NDArray[np.int64]:
        return self.tables.item_ids

    def positions(self, item_ids: Any) -> NDArray[np.int64]:
        """Row of each database item id in the tables; -1 where the version lacks it."""
        return self.tables.item_positions(item_ids)

    @property
    def model(self) -> Any:
        """An unfitted estimator with the version's hyperparameters: it folds users in
        from the stored tables (the engine's ``fold_in_from_tables``)."""
        if self._model is None:
            from recommender.engine.registry import make_model

            self._model = make_model(self.algorithm, self.hyperparameters)
        return self._model

    def fold_in(
        self, item_ids: NDArray[np.int64], ratings: NDArray[np.float64]
    ) -> tuple[NDArray[np.float32], float] | None:
        """The user's ``(vector, bias)`` from their ratings; None if the version knows none of the items."""
        positions = self.positions(item_ids)
        known = positions >= 0
        if not known.any():
            return None
        vector, bias = self.model.fold_in_from_tables(self.tables, positions[known], ratings[known])
        return np.asarray(vector, dtype=np.float32), float(bias)


def load_factor_tables(version: ModelVersion) -> FactorTables:
    """The item side of ``version`` as stored (float32), sorted by item id."""
    rows = list(
        ItemFactor.objects.filter(version=version)
        .order_by("item_id")
        .values_list("item_id", "bias", "vector")
    )
    item_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    item_bias = np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows))
    raw = b"".join(bytes(r[2]) for r in rows)
    k = (len(raw) // 4 // len(rows)) if rows else 0
    item_vectors = (
        np.frombuffer(raw, dtype=np.float32).reshape(len(rows), k) if rows else np.zeros((0, 0), np.float32)
    )
    return FactorTables(
        item_ids=item_ids,
        item_vectors=item_vectors,
        item_bias=item_bias,
        global_mean=float(version.global_mean),
        rating_scale=(float(version.rating_min), float(version.rating_max)),
    )


def load_serving_version(version: ModelVersion) -> ServingVersion:
    return ServingVersion(
        version_id=version.pk,
        kind=version.kind,
        algorithm=version.algorithm,
        hyperparameters=dict(version.hyperparameters),
        tables=load_factor_tables(version),
    )


#: The kinds served from factor tables (similarity is served from its neighbour table).
FACTOR_KINDS = (ModelKind.RATING, ModelKind.RANKING)


class _ServingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[tuple[str, int], ...] | None = None
        self._versions: dict[str, ServingVersion] = {}

    def active(self) -> dict[str, ServingVersion]:
        """Active factor versions by kind, reloaded when the active set changed."""
        return self.state()[0]

    def state(self) -> tuple[dict[str, ServingVersion], dict[str, int]]:
        """(active factor versions by kind, every active version's id by kind).

        One indexed query per call decides (it also catches activations made by
        another process: the cache is per process) and gives the similarity
        version's id too, so a request needs no second query for it.
        """
        ids = dict(
            ModelVersion.objects.filter(status=VersionStatus.ACTIVE)
            .order_by("kind")
            .values_list("kind", "pk")
        )
        key = tuple((kind, pk) for kind, pk in sorted(ids.items()) if kind in FACTOR_KINDS)
        if key != self._key:
            with self._lock:
                if key != self._key:
                    versions = ModelVersion.objects.filter(pk__in=[pk for _, pk in key])
                    self._versions = {v.kind: load_serving_version(v) for v in versions}
                    self._key = key
        return self._versions, ids

    def clear(self) -> None:
        with self._lock:
            self._key, self._versions = None, {}


serving_cache = _ServingCache()

_blas: ThreadpoolController | None = None


def _blas_controller() -> ThreadpoolController:
    """The BLAS libraries loaded at the first call, numpy's among them (this module imports
    numpy); found once per process, as the lookup walks every loaded library (about 1 ms)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block's BLAS calls on one thread, and restore the pool's size afterwards.

    A recommendation list scores the whole catalog with one matrix-vector product
    (26,744 x 64 on the ML-20M-shaped catalog). OpenBLAS splits that over every
    core; in a web server the cores are already taken by the other workers and
    the database, and its threads then wait for each other: 14.8 ms p50 against
    0.27 ms on one thread, on 2 loaded cores (docs/benchmarks.md, "Serving at
    20M"). A server's parallelism comes from its workers. One thread gives the
    same products bit for bit (each output is one dot product either way). The
    limit is process-wide (OpenBLAS has one pool): overlapping requests of a
    threaded server may leave it at one thread, which suits a web process.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def serving_warm_up() -> list[str]:
    """Load the live versions and run one fold-in through each, so no person waits for it.

    A fresh process would otherwise load the factor tables on its first list and
    compile (or load from numba's cache) the fold-in kernels on its first rating:
    about a second. Called once per web process at start (config/wsgi.py). Never
    raises: a process that cannot warm up (no database yet, no model) still serves
    and warms up lazily. Returns what was warmed, for the log.
    """
    warmed: list[str] = []
    try:
        _blas_controller()
        versions, _ = serving_cache.state()
        for kind, version in versions.items():
            if len(version.item_ids):
                version.fold_in(version.item_ids[:1], np.array([4.0]))
            warmed.append(f"{kind} #{version.version_id}")
    except Exception as error:
        logger.warning("serving warm-up skipped: %s", error)
    return warmed
