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
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .interactions import EmptyInteractionsError, Interactions

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
    rows, cols, r = data.to_coo_arrays()
    r64 = r.astype(np.float64)
    mu = float(r64.mean())
    n_u = np.bincount(rows, minlength=data.n_users).astype(np.float64)
    n_i = np.bincount(cols, minlength=data.n_items).astype(np.float64)
    b_u = np.zeros(data.n_users)
    b_i = np.zeros(data.n_items)
    for _ in range(iterations):
        b_i = np.bincount(cols, weights=r64 - mu - b_u[rows], minlength=data.n_items) / (regularization + n_i)
        b_u = np.bincount(rows, weights=r64 - mu - b_i[cols], minlength=data.n_users) / (regularization + n_u)
    return mu, b_u.astype(np.float32), b_i.astype(np.float32)


def top_n(scores: NDArray[Any], n: int) -> NDArray[np.int64]:
    """Indices of the ``n`` largest finite scores, best first (O(len) partition)."""
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
    # Ties broken by index so results are deterministic.
    order = np.lexsort((part, -masked[part]))
    return part[order[:k]].astype(np.int64)


class Recommender:
    """Base class: id mapping, fallbacks, clipping, top-N and seen-item exclusion."""

    #: True for models that only rank (no rating prediction); ``evaluate``
    #: reports rating metrics as null for them.
    ranking_only: bool = False

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
        scores = self.score_items(user).copy() if user >= 0 else self.popularity_.copy()
        if items is not None:
            allowed = self.data_.item_index(items)
            mask = np.ones(scores.shape[0], dtype=bool)
            mask[allowed[allowed >= 0]] = False
            scores[mask] = -np.inf
        if exclude_seen and user >= 0:
            seen = self.data_.csr.indices[self.data_.csr.indptr[user] : self.data_.csr.indptr[user + 1]]
            scores[seen] = -np.inf
        best = top_n(scores, n)
        return [
            (
                self.data_.item_ids[i].item()
                if hasattr(self.data_.item_ids[i], "item")
                else self.data_.item_ids[i],
                float(scores[i]),
            )
            for i in best
        ]

    def similar_items(self, item_id: Any, n: int = 10) -> list[tuple[Any, float]]:
        """Items most similar to a raw item id, best first; ``[]`` for unknown items."""
        self._check_fitted()
        item = int(self.data_.item_index([item_id])[0])
        if item < 0:
            return []
        scores = np.asarray(self._similar_scores(item), dtype=np.float64).copy()
        scores[item] = -np.inf
        best = top_n(scores, n)
        return [
            (
                self.data_.item_ids[i].item()
                if hasattr(self.data_.item_ids[i], "item")
                else self.data_.item_ids[i],
                float(scores[i]),
            )
            for i in best
        ]

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
        raise NotImplementedError(f"{type(self).__name__} has no fold-in")

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        raise NotImplementedError(f"{type(self).__name__} has no item similarities")
