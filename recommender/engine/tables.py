"""What the site stores of a fitted model, and serving from those tables alone.

A servable model (``serving_kind`` set on its class) exports one of two shapes:

* :class:`FactorTables` (kinds ``rating`` and ``ranking``): per user and per
  item a vector and a bias, plus a constant ``global_mean``. Every factor
  model scores with the same formula::

      score(u, i) = global_mean + b_u + c_i + w_u . v_i

  (ExplicitALS, SGD/L-BFGS MF: the biased MF of Koren, Bell & Volinsky 2009;
  BiasBaseline: ``k = 0``; ImplicitALS: ``mu = b = c = 0``; PureSVD: ``c_i``
  is the item mean ``m_i`` and ``b_u = mu = 0``, Cremonesi et al. 2010).
* :class:`NeighborTables` (kind ``similarity``): each item's top positive
  neighbours, best first.

The web process keeps only the item side of these tables and folds users in
through the model class's ``fold_in_from_tables`` (with the version's own
hyperparameters), so this module is the single place where scores, predicted
ratings and top-N lists are computed from stored tables, for the site and for
the engine's own ``recommend``/evaluation alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

RATING = "rating"
RANKING = "ranking"
SIMILARITY = "similarity"
#: The kinds a model can be served as: predicted stars, recommendation order, item neighbours.
SERVING_KINDS = (RATING, RANKING, SIMILARITY)


class NonFiniteTablesError(ValueError):
    """A fitted model produced NaN or infinite values; it must not be stored or served."""


def positions_of(vocabulary: NDArray[Any], ids: ArrayLike) -> NDArray[np.int64]:
    """Row of each id in a sorted ``vocabulary``; -1 where it is absent."""
    wanted = np.atleast_1d(np.asarray(ids, dtype=vocabulary.dtype if vocabulary.size else np.int64))
    if vocabulary.shape[0] == 0:
        return np.full(wanted.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(vocabulary, wanted), vocabulary.shape[0] - 1)
    return np.where(vocabulary[pos] == wanted, pos, -1).astype(np.int64)


def top_n(scores: NDArray[Any], n: int) -> NDArray[np.int64]:
    """Indices of the ``n`` largest finite scores, best first (O(len) partition).

    Ties are broken by the lower index, so results are deterministic.
    """
    finite = np.isfinite(scores)
    k = min(n, int(finite.sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    masked = np.where(finite, scores, -np.inf)
    if k < masked.shape[0]:
        part = np.argpartition(-masked, k - 1)[:k]
        # argpartition picks arbitrarily among items tied with the k-th score;
        # keep every tied item so the lowest indices win below.
        part = np.flatnonzero(masked >= masked[part].min())
    else:
        part = np.arange(masked.shape[0])
    order = np.lexsort((part, -masked[part]))
    return part[order[:k]].astype(np.int64)


def rank_items(
    scores: NDArray[Any],
    n: int,
    *,
    exclude: NDArray[np.integer[Any]] | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """The ``n`` best positions of ``scores``, skipping ``exclude`` and any position
    where ``allowed`` is False: the one top-N used by ``recommend``, evaluation and the site."""
    if exclude is None and allowed is None:
        return top_n(scores, n)
    masked = np.array(scores, dtype=np.float64)
    if allowed is not None:
        masked[~allowed] = -np.inf
    if exclude is not None:
        ex = np.asarray(exclude, dtype=np.int64)
        masked[ex[ex >= 0]] = -np.inf
    return top_n(masked, n)


def _finite_or_raise(name: str, array: NDArray[Any]) -> None:
    if array.size and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise NonFiniteTablesError(
            f"{name} has {bad} NaN or infinite value(s) of {array.size}: the fit diverged "
            "(too little regularization or too large a learning rate?)"
        )


@dataclass
class FactorTables:
    """User and item factors of a fitted factor model (see the module doc for the score).

    ``user_ids`` / ``item_ids`` are sorted raw ids; row ``p`` of each array
    belongs to the id at position ``p``. The serving side builds one with
    empty user arrays (it reads users one at a time).
    """

    item_ids: NDArray[Any]
    item_vectors: NDArray[np.floating[Any]]
    item_bias: NDArray[np.floating[Any]]
    global_mean: float
    rating_scale: tuple[float, float]
    user_ids: NDArray[Any] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    user_vectors: NDArray[np.floating[Any]] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    user_bias: NDArray[np.floating[Any]] = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def n_factors(self) -> int:
        return int(self.item_vectors.shape[1]) if self.item_vectors.ndim == 2 else 0

    def item_positions(self, item_ids: ArrayLike) -> NDArray[np.int64]:
        return positions_of(self.item_ids, item_ids)

    def user_positions(self, user_ids: ArrayLike) -> NDArray[np.int64]:
        return positions_of(self.user_ids, user_ids)

    def scores(self, user_vector: ArrayLike, user_bias: float = 0.0) -> NDArray[np.float64]:
        """``global_mean + b_u + c_i + w_u . v_i`` for every item, unclipped.

        The product runs in the vectors' own dtype (float32 when stored):
        converting the whole item matrix to float64 per request would
        dominate a recommendation's latency.
        """
        w = np.asarray(user_vector, dtype=self.item_vectors.dtype)
        out = (self.item_vectors @ w).astype(np.float64) if self.n_factors else np.zeros(len(self.item_ids))
        out += self.item_bias
        out += self.global_mean + float(user_bias)
        return out

    def predict(
        self, positions: NDArray[np.integer[Any]], user_vector: ArrayLike | None, user_bias: float = 0.0
    ) -> NDArray[np.float64]:
        """Predicted ratings of the items at ``positions`` (-1: unknown item gets
        ``global_mean + b_u``), clipped to ``rating_scale``. ``user_vector=None``
        (no factors for the user) gives the item baseline ``global_mean + c_i``."""
        pos = np.asarray(positions, dtype=np.int64)
        known = pos >= 0
        out = np.full(pos.shape[0], self.global_mean + (0.0 if user_vector is None else float(user_bias)))
        out[known] += self.item_bias[pos[known]]
        if user_vector is not None and self.n_factors:
            w = np.asarray(user_vector, dtype=np.float64)
            out[known] += np.asarray(self.item_vectors[pos[known]], dtype=np.float64) @ w
        return np.clip(out, *self.rating_scale)

    @cached_property
    def unit_vectors(self) -> NDArray[np.float32]:
        """Item vectors scaled to length 1 (cosine similarity = dot product); zero rows stay zero."""
        norms = np.linalg.norm(self.item_vectors, axis=1)
        return (self.item_vectors / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)

    @cached_property
    def gram(self) -> NDArray[np.float64]:
        """``V^T V`` in float64 (implicit ALS's fold-in shares it across users)."""
        v = np.asarray(self.item_vectors, dtype=np.float64)
        return v.T @ v

    @cached_property
    def bias_projection(self) -> NDArray[np.float64]:
        """``c^T V`` in float64 (PureSVD's fold-in subtracts it)."""
        return np.asarray(self.item_bias, dtype=np.float64) @ np.asarray(self.item_vectors, dtype=np.float64)

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteTablesError` naming the first array with NaN/inf."""
        for name in ("user_vectors", "user_bias", "item_vectors", "item_bias"):
            _finite_or_raise(name, np.asarray(getattr(self, name)))
        _finite_or_raise("global_mean", np.asarray([self.global_mean]))

    def as_stored(self) -> FactorTables:
        """The tables as the database keeps them: float32 vectors and biases."""
        return FactorTables(
            item_ids=self.item_ids,
            item_vectors=np.ascontiguousarray(self.item_vectors, dtype=np.float32),
            item_bias=np.ascontiguousarray(self.item_bias, dtype=np.float32),
            global_mean=float(self.global_mean),
            rating_scale=(float(self.rating_scale[0]), float(self.rating_scale[1])),
            user_ids=self.user_ids,
            user_vectors=np.ascontiguousarray(self.user_vectors, dtype=np.float32),
            user_bias=np.ascontiguousarray(self.user_bias, dtype=np.float32),
        )


@dataclass
class NeighborTables:
    """Each item's top positive neighbours, best first (what the similarity kind serves).

    Flat arrays of equal length, grouped by ``item_ids`` (sorted) and ordered
    by ``rank`` (1 = most similar) within an item.
    """

    item_ids: NDArray[Any]
    neighbor_ids: NDArray[Any]
    scores: NDArray[np.float32]
    ranks: NDArray[np.int64]

    @classmethod
    def from_model_table(
        cls,
        vocabulary: NDArray[Any],
        neighbors: NDArray[np.integer[Any]],
        scores: NDArray[np.floating[Any]],
    ) -> NeighborTables:
        """From a dense (items x width) neighbour table sorted best first and
        padded with -1: the positive finite scores, ranked 1.. within each item."""
        nb = np.asarray(neighbors)
        sc = np.asarray(scores)
        valid = (nb >= 0) & np.isfinite(sc) & (sc > 0)
        item_idx, column = np.nonzero(valid)
        # Ranks count only the kept neighbours, so they run 1..n without gaps.
        ranks = np.cumsum(valid, axis=1)[item_idx, column]
        return cls(
            item_ids=vocabulary[item_idx],
            neighbor_ids=vocabulary[nb[item_idx, column]],
            scores=sc[item_idx, column].astype(np.float32),
            ranks=ranks.astype(np.int64),
        )

    def top(self, n: int) -> NeighborTables:
        """Only the ``n`` best neighbours of each item (what the site stores and serves)."""
        keep = self.ranks <= n
        return NeighborTables(
            item_ids=self.item_ids[keep],
            neighbor_ids=self.neighbor_ids[keep],
            scores=self.scores[keep],
            ranks=self.ranks[keep],
        )

    def __len__(self) -> int:
        return int(self.item_ids.shape[0])

    def check_finite(self) -> None:
        _finite_or_raise("neighbour scores", np.asarray(self.scores))

    def as_matrix(self, vocabulary: NDArray[Any]) -> sp.csr_matrix:
        """The table as a sparse (item x neighbour) similarity matrix over ``vocabulary``'s positions."""
        rows, cols = positions_of(vocabulary, self.item_ids), positions_of(vocabulary, self.neighbor_ids)
        keep = (rows >= 0) & (cols >= 0)
        n = vocabulary.shape[0]
        return sp.csr_matrix((self.scores[keep].astype(np.float64), (rows[keep], cols[keep])), shape=(n, n))


class NeighborTableRanker:
    """Ranks items from a stored neighbour table exactly as the site would.

    Item-based top-N (Deshpande & Karypis, TOIS 2004) restricted to the stored
    neighbours: ``score(u, i) = sum_{j in I_u} s_ji [i in table(j)]``. It has
    the attributes :func:`recommender.engine.metrics.evaluate_ranking` reads
    (``data_``, ``popularity_``, ``score_items``), so the similarity kind is
    judged on what is served, not on the model's wider internal table.
    """

    ranking_only = True

    def __init__(self, tables: NeighborTables, data: Any, popularity: NDArray[np.float64]) -> None:
        self.data_ = data
        self.popularity_ = popularity
        self._matrix = tables.as_matrix(data.item_ids)

    def score_items(self, user: int) -> NDArray[np.float64]:
        csr = self.data_.csr
        rated = csr.indices[csr.indptr[user] : csr.indptr[user + 1]]
        return np.asarray(self._matrix[rated].sum(axis=0), dtype=np.float64).ravel()
