"""Fold-in from stored factor tables: a user's vector with the item side fixed.

The serving side keeps only item factors (no fitted estimator, no training
matrix), so each servable algorithm's user half-step is available here as a
pure function of the item arrays and the version's hyperparameters. Each is
the exact solve the estimator itself uses for its user side, so folding in a
user seen in training reproduces that user's trained vector (tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .gradient_mf import ridge_fold_in
from .implicit_als import confidence

Float = NDArray[np.floating[Any]]


def _param(params: Mapping[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    return float(default if value is None else value)


def fold_in_user(
    *,
    algorithm: str,
    params: Mapping[str, Any],
    item_factors: Float,
    item_bias: Float,
    global_mean: float,
    rating_scale: tuple[float, float],
    item_positions: NDArray[np.integer[Any]],
    ratings: Float,
    gram: Float | None = None,
) -> tuple[NDArray[np.float64], float]:
    """(user vector, user bias) for one user's ratings of the items at ``item_positions``.

    - ``explicit_als``: the ALS user step, see :func:`recommender.engine.als.explicit_user_step`;
    - ``sgd_mf`` / ``lbfgs_mf``: ridge on [w_u, b_u] with the per-rating penalty
      ``(Z^T Z + lambda n_u I) x = Z^T (r - mu - c)``;
    - ``bias_baseline``: ``b_u = sum(r - mu - b_i) / (lambda_u + n_u)``;
    - ``implicit_als``: ``x = (Y^T Y + lambda I + sum_i (c_i - 1) y_i y_i^T)^-1 sum_i c_i y_i``
      (Hu, Koren & Volinsky 2008, eq. 4);
    - ``pure_svd``: ``x = r_u Q - m^T Q`` (the projection PureSVD scores with).
    """
    pos = np.asarray(item_positions, dtype=np.int64)
    r = np.asarray(ratings, dtype=np.float64)
    # Only the rated rows are converted: serving must not copy the whole item matrix per request.
    v_rated = np.asarray(item_factors[pos], dtype=np.float64)
    c_rated = np.asarray(item_bias[pos], dtype=np.float64)
    k = item_factors.shape[1] if item_factors.ndim == 2 else 0
    if algorithm == "explicit_als":
        from .als import explicit_user_step

        return explicit_user_step(item_factors=v_rated, targets=r - global_mean - c_rated, params=params)
    if algorithm in ("sgd_mf", "lbfgs_mf"):
        return ridge_fold_in(v_rated, r - global_mean - c_rated, _param(params, "regularization", 0.05))
    if algorithm == "bias_baseline":
        lam = _param(params, "regularization_user", 5.0)
        return np.zeros(k), float(np.sum(r - global_mean - c_rated) / (lam + r.shape[0]))
    if algorithm == "implicit_als":
        lam = _param(params, "regularization", 0.01)
        conf = confidence(r, _param(params, "alpha", 1.0), rating_scale[0]).astype(np.float64)
        yi = v_rated
        if gram is None:
            y = np.asarray(item_factors, dtype=np.float64)
            gram = y.T @ y
        a = gram + lam * np.eye(k) + yi.T @ ((conf - 1.0)[:, None] * yi)
        return np.asarray(np.linalg.solve(a, yi.T @ conf), dtype=np.float64), 0.0
    if algorithm == "pure_svd":
        # x = r_u Q - m^T Q: the second term is over all items (missing entries are centred too).
        mq = np.asarray(item_bias, dtype=np.float64) @ np.asarray(item_factors, dtype=np.float64)
        return np.asarray(r @ v_rated - mq, dtype=np.float64), 0.0
    raise ValueError(f"no fold-in for algorithm {algorithm!r}")
