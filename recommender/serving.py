"""Per-process cache of the active versions' item-side arrays.

Each web or worker process loads the active versions' item factors once into
numpy arrays and reuses them until the set of active versions changes (a
rollback, a new activation): then the next request reloads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .models import ItemFactor, ModelKind, ModelVersion, VersionStatus


@dataclass
class ServingVersion:
    """The item side of one active version, ready for vectorized scoring."""

    version_id: int
    kind: str
    algorithm: str
    hyperparameters: dict[str, Any]
    global_mean: float
    rating_scale: tuple[float, float]
    item_ids: NDArray[np.int64]  # sorted database ids
    item_vectors: NDArray[np.float32]  # (n_items, k)
    item_bias: NDArray[np.float32]
    _unit: NDArray[np.float32] | None = field(default=None, repr=False)
    _gram: NDArray[np.float64] | None = field(default=None, repr=False)

    def positions(self, item_ids: Any) -> NDArray[np.int64]:
        """Row of each database item id in the arrays; -1 where the version lacks it."""
        ids = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        if self.item_ids.shape[0] == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.item_ids, ids), self.item_ids.shape[0] - 1)
        return np.where(self.item_ids[pos] == ids, pos, -1)

    @property
    def unit_vectors(self) -> NDArray[np.float32]:
        """Item vectors scaled to length 1 (cosine similarity = dot product)."""
        if self._unit is None:
            norms = np.linalg.norm(self.item_vectors, axis=1)
            self._unit = (self.item_vectors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
        return self._unit

    @property
    def gram(self) -> NDArray[np.float64]:
        """Y^T Y of the item vectors (used by implicit fold-in)."""
        if self._gram is None:
            y = self.item_vectors.astype(np.float64)
            self._gram = y.T @ y
        return self._gram


def load_serving_version(version: ModelVersion) -> ServingVersion:
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
    return ServingVersion(
        version_id=version.pk,
        kind=version.kind,
        algorithm=version.algorithm,
        hyperparameters=dict(version.hyperparameters),
        global_mean=version.global_mean,
        rating_scale=(version.rating_min, version.rating_max),
        item_ids=item_ids,
        item_vectors=item_vectors,
        item_bias=item_bias,
    )


class _ServingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[tuple[str, int], ...] | None = None
        self._versions: dict[str, ServingVersion] = {}

    def active(self) -> dict[str, ServingVersion]:
        """Active factor versions by kind, reloaded when the active set changed.

        One indexed query per call decides; that also catches activations made
        by another process on the embedded default, whose cache is per process.
        """
        active = ModelVersion.objects.filter(
            status=VersionStatus.ACTIVE, kind__in=[ModelKind.RATING, ModelKind.RANKING]
        ).order_by("kind")
        key = tuple(active.values_list("kind", "pk"))
        if key == self._key:
            return self._versions
        with self._lock:
            if key != self._key:
                self._versions = {v.kind: load_serving_version(v) for v in active}
                self._key = key
        return self._versions

    def clear(self) -> None:
        with self._lock:
            self._key, self._versions = None, {}


serving_cache = _ServingCache()
