"""The contract every Tastebase recommender follows (scikit-learn style).

* ``__init__`` only stores keyword hyperparameters;
* ``fit(data)`` learns from an :class:`Interactions` and returns ``self``;
  learned attributes end in ``_``;
* raw ids in, raw ids out: subclasses work on dense indices only and
  implement ``_fit`` plus ``_predict_indices`` and/or ``_score_items``.

Fallbacks for ids not seen in training (documented, never a crash):

* ``predict``: an unknown user gets ``mu + b_i`` (the item's baseline), an
  unknown item gets ``mu + b_u``, both unknown get the global mean ``mu``.
  Models without biases use the regularized baseline fitted alongside them.
* ``recommend`` for an unknown user returns the most popular items ranked by
  damped mean rating; ``similar_items`` for an unknown item returns ``[]``.
* every predicted rating is clipped to the training rating scale.

Serving contract (what the site needs, see :mod:`.tables`): a model the site
can serve sets ``serving_kind`` ("rating", "ranking" or "similarity"),
implements ``export_tables()`` and, for factor kinds, ``fold_in_from_tables``,
which computes a user's ``(vector, bias)`` from stored item tables with the
model's own hyperparameters (compare LensKit's ``new_user_embedding``). The
model's own ``fold_in`` and ``recommend`` go through the same code, so a user
folded in from the database gets what training gave them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .interactions import EmptyInteractionsError, Interactions
from .tables import FactorTables, NeighborTables, rank_items, top_n

__all__ = ["POPULARITY_DAMPING", "Recommender", "baseline_biases", "rank_items", "top_n"]

#: Pseudo-count of the damped mean used by popularity fallbacks:
#: (sum r + K * mu) / (n + K).
POPULARITY_DAMPING = 10.0


def baseline_biases(
    data: Interactions, *, regularization: float = 10.0, iterations: int = 10
) -> tuple[float, NDArray[np.float32], NDArray[np.float32]]:
    """Regularized biases mu, b_u, b_i by alternating closed-form updates.

    Minimizes sum (r_ui - mu - b_u - b_i)^2 + lambda (sum b_u^2 + sum b_i^2):
    b_i = sum_u (r_ui - mu - b_u) / (lambda + |U_i|),
    b_u = sum_i (r_ui - mu - b_i) / (lambda + |I_u|)
    (Koren, "Factor in the neighbors", TKDD 2010, sec. 2.1).
    """
    if data.nnz == 0:
        raise EmptyInteractionsError("cannot fit on an empty Interactions (no ratings)")
    # With P the 0/1 pattern of the ratings, sum_u b_u over an item's raters is
    # (P^T b)_i and sum_i b_i over a user's items (P b)_u: each half step is one
    # sparse product, not a gather and scatter of nnz temporaries (4.4 s -> about
    # 1 s for 10 iterations at 20M ratings, paid by every model's fit).
    csr = data.csr
    shape = csr.shape
    r64 = csr.data.astype(np.float64)
    mu = float(r64.mean())
    ratings = sp.csr_matrix((r64, csr.indices, csr.indptr), shape=shape)
    pattern = sp.csr_matrix((np.ones_like(r64), csr.indices, csr.indptr), shape=shape)
    del r64
    user_sums = ratings @ np.ones(data.n_items)
    item_sums = ratings.T @ np.ones(data.n_users)
    del ratings
    n_u = np.diff(csr.indptr).astype(np.float64)
    n_i = np.diff(data.csc.indptr).astype(np.float64)
    b_u = np.zeros(data.n_users)
    b_i = np.zeros(data.n_items)
    for _ in range(iterations):
        b_i = (item_sums - mu * n_i - pattern.T @ b_u) / (regularization + n_i)
        b_u = (user_sums - mu * n_u - pattern @ b_i) / (regularization + n_u)
    return mu, b_u.astype(np.float32), b_i.astype(np.float32)


class Recommender:
    """Base class: id mapping, fallbacks, clipping, top-N and seen-item exclusion."""

    #: True for models that only rank (no rating prediction); ``evaluate``
    #: reports rating metrics as null for them.
    ranking_only: bool = False
    #: The kind the site serves this model as ("rating", "ranking", "similarity"),
    #: or None when it cannot be served from stored tables.
    serving_kind: ClassVar[str | None] = None

    data_: Interactions
    global_mean_: float
    baseline_user_: NDArray[np.float32]
    baseline_item_: NDArray[np.float32]
    rating_scale_: tuple[float, float]
    popularity_: NDArray[np.float64]

    # ---- fitting ---------------------------------------------------------
    def fit(self, data: Interactions) -> Self:
        if not isinstance(data, Interactions):
            raise TypeError(f"fit() expects an Interactions, got {type(data).__name__}")
        if data.nnz == 0:
            raise EmptyInteractionsError(
                f"{type(self).__name__}.fit() needs at least one rating; the Interactions is empty"
            )
        self.data_ = data
        self.rating_scale_ = data.rating_scale
        self.global_mean_, self.baseline_user_, self.baseline_item_ = baseline_biases(data)
        counts = np.diff(data.csc.indptr).astype(np.float64)
        sums = np.asarray(data.csc.sum(axis=0)).ravel().astype(np.float64)
        self.popularity_ = (sums + POPULARITY_DAMPING * self.global_mean_) / (
            counts + POPULARITY_DAMPING
        ) + 1e-9 * counts  # ties broken by count
        self._fit(data)
        return self

    def _fit(self, data: Interactions) -> None:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__`` (sklearn convention)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def _check_fitted(self) -> None:
        if not hasattr(self, "data_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit() first")

    # ---- rating prediction ----------------------------------------------
    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """Predictions for known (user, item) index pairs. Default: the baseline."""
        return (
            self.global_mean_
            + self.baseline_user_[users].astype(np.float64)
            + self.baseline_item_[items].astype(np.float64)
        )

    def _fallback(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """Baseline for pairs where the user and/or the item is unknown (index -1)."""
        out = np.full(users.shape[0], self.global_mean_, dtype=np.float64)
        ku, ki = users >= 0, items >= 0
        out[ku] += self.baseline_user_[users[ku]]
        out[ki] += self.baseline_item_[items[ki]]
        return out

    def predict(self, user_ids: ArrayLike, item_ids: ArrayLike) -> NDArray[np.float64]:
        """Predicted ratings for raw (user, item) pairs, clipped to the rating scale."""
        self._check_fitted()
        users = self.data_.user_index(user_ids)
        items = self.data_.item_index(item_ids)
        if users.shape != items.shape:
            raise ValueError("user_ids and item_ids must have the same length")
        return self.predict_indices(users, items)

    def predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        """As :meth:`predict` but on dense indices (-1 = unknown)."""
        known = (users >= 0) & (items >= 0)
        out = self._fallback(users, items)
        if known.any():
            out[known] = self._predict_indices(users[known], items[known])
        lo, hi = self.rating_scale_
        return np.clip(out, lo, hi)

    # ---- ranking ---------------------------------------------------------
    def _score_items(self, user: int) -> NDArray[np.float64]:
        """Ranking scores of every item for a known user index (higher = better)."""
        items = np.arange(self.data_.n_items, dtype=np.int64)
        return self._predict_indices(np.full(items.shape[0], user, dtype=np.int64), items)

    def score_items(self, user: int) -> NDArray[np.float64]:
        """Public wrapper of the per-user scoring used by evaluation."""
        return np.asarray(self._score_items(user), dtype=np.float64)

    def recommend(
        self,
        user_id: Any,
        n: int = 10,
        exclude_seen: bool = True,
        *,
        items: ArrayLike | None = None,
    ) -> list[tuple[Any, float]]:
        """The ``n`` best items for a raw user id as ``[(item_id, score), ...]``.

        ``items`` optionally restricts candidates to those raw ids. Unknown
        users get the damped-mean popularity ranking.
        """
        self._check_fitted()
        user = int(self.data_.user_index([user_id])[0])
        scores = self.score_items(user) if user >= 0 else self.popularity_
        allowed = None
        if items is not None:
            candidates = self.data_.item_index(items)
            allowed = np.zeros(scores.shape[0], dtype=bool)
            allowed[candidates[candidates >= 0]] = True
        seen = None
        if exclude_seen and user >= 0:
            seen = self.data_.csr.indices[self.data_.csr.indptr[user] : self.data_.csr.indptr[user + 1]]
        best = rank_items(scores, n, exclude=seen, allowed=allowed)
        return [(self._raw_item(i), float(scores[i])) for i in best]

    def _raw_item(self, index: int) -> Any:
        raw = self.data_.item_ids[index]
        return raw.item() if hasattr(raw, "item") else raw

    def similar_items(self, item_id: Any, n: int = 10) -> list[tuple[Any, float]]:
        """Items most similar to a raw item id, best first; ``[]`` for unknown items."""
        self._check_fitted()
        item = int(self.data_.item_index([item_id])[0])
        if item < 0:
            return []
        scores = np.asarray(self._similar_scores(item), dtype=np.float64).copy()
        scores[item] = -np.inf
        best = top_n(scores, n)
        return [(self._raw_item(i), float(scores[i])) for i in best]

    def fold_in(self, item_ids: ArrayLike, ratings: ArrayLike) -> Any:
        """A new user's factors from raw item ids and ratings, item side fixed.

        Maps ids to indices (unknown items are ignored) and calls the model's
        ``fold_in_indices``; no known ratings gives the prior mean. MF models
        return ``(user_vector, user_bias)``.
        """
        self._check_fitted()
        items = self.data_.item_index(item_ids)
        r = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
        if items.shape != r.shape:
            raise ValueError("item_ids and ratings must have the same length")
        known = items >= 0
        return self.fold_in_indices(items[known], r[known])

    def fold_in_indices(self, items: NDArray[np.integer[Any]], ratings: ArrayLike) -> Any:
        """``fold_in`` on dense item indices: the model's own tables, the serving code path."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item indices and ratings must have the same length")
        if items.size and (items.min() < 0 or items.max() >= self.data_.n_items):
            raise ValueError("item indices out of range")
        tables = self.serving_tables()
        if not isinstance(tables, FactorTables):
            raise NotImplementedError(f"{type(self).__name__} has no user fold-in")
        return self.fold_in_from_tables(tables, items, r)

    def score_vector(self, user_vector: ArrayLike, user_bias: float = 0.0) -> NDArray[np.float64]:
        """Scores of every item for a (folded-in) user, from the model's serving tables (unclipped)."""
        tables = self.serving_tables()
        if not isinstance(tables, FactorTables):
            raise NotImplementedError(f"{type(self).__name__} has no factor tables")
        return tables.scores(user_vector, user_bias)

    # ---- serving contract --------------------------------------------------
    def export_tables(self) -> FactorTables | NeighborTables:
        """What the site stores of this fitted model (see :mod:`.tables`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be served from stored tables")

    def _factor_tables(self, **overrides: Any) -> FactorTables:
        """FactorTables of a fitted biased factor model, from its ``user_factors_``,
        ``item_factors_``, ``user_bias_``, ``item_bias_`` and ``global_mean_``;
        ``overrides`` replace any field (models without biases pass zeros)."""
        self._check_fitted()
        fields: dict[str, Any] = {
            "item_ids": self.data_.item_ids,
            "user_ids": self.data_.user_ids,
            "rating_scale": self.rating_scale_,
            "global_mean": float(self.global_mean_),
        }
        for field, attribute in (
            ("item_vectors", "item_factors_"),
            ("item_bias", "item_bias_"),
            ("user_vectors", "user_factors_"),
            ("user_bias", "user_bias_"),
        ):
            if field not in overrides:
                fields[field] = getattr(self, attribute)
        return FactorTables(**{**fields, **overrides})

    def serving_tables(self) -> FactorTables | NeighborTables:
        """``export_tables()`` of the fitted model, computed once (views, no copies)."""
        self._check_fitted()
        cached = getattr(self, "_tables", None)
        if cached is None or cached[0] is not self.data_:
            cached = (self.data_, self.export_tables())
            self._tables = cached
        return cached[1]

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """``(user vector, user bias)`` of a user who rated the items at
        ``item_positions`` of ``tables``, with the item side fixed.

        Uses only this instance's hyperparameters (it need not be fitted), so
        the site can fold a user into a stored version without the training
        data. No ratings give the prior mean (zero vector, zero bias).
        """
        raise NotImplementedError(f"{type(self).__name__} has no fold-in from stored tables")

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        raise NotImplementedError(f"{type(self).__name__} has no item similarities")
