"""Biased matrix factorization fitted by gradient methods (mini-batch SGD, L-BFGS).

Model and objective (Koren, Bell & Volinsky, "Matrix factorization techniques
for recommender systems", IEEE Computer 42(8), 2009, eq. 4-5)::

    r̂_ui = mu + b_u + c_i + w_u . v_i

    J = sum_{(u,i) in K} [ (r_ui - r̂_ui)^2 + lambda (|w_u|^2 + |v_i|^2 + b_u^2 + c_i^2) ]

The regularizer sits **inside** the sum over observed ratings K (per rating,
as in Koren et al.'s eq. 5 and their SGD), so a parameter is penalized once per
rating it takes part in; equivalently, per parameter, with lambda scaled by the
count: ``lambda sum_u n_u (|w_u|^2 + b_u^2) + lambda sum_i n_i (|v_i|^2 + c_i^2)``
(the "weighted-lambda" regularization of Zhou et al., AAIM 2008). ``mu`` is the
training mean and is not learned.

With the item side fixed, J is a ridge regression in (w_u, b_u), solved exactly
by :func:`ridge_fold_in` (the user half-step of ALS for this objective).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize

from .base import Recommender
from .interactions import Interactions
from .tables import RATING, FactorTables

__all__ = [
    "LBFGSMF",
    "SGDMF",
    "batch_loss_and_gradients",
    "batch_loss_and_gradients_reference",
    "objective_and_gradient",
    "ridge_fold_in",
    "ridge_fold_in_reference",
    "sgd_momentum_step",
]

Float = NDArray[np.float64]
Gradients = tuple[float, Float, Float, Float, Float]


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------
def batch_loss_and_gradients(
    user_factors: Float,
    item_factors: Float,
    user_bias: Float,
    item_bias: Float,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    ratings: NDArray[np.floating[Any]],
    global_mean: float,
    regularization: float,
) -> Gradients:
    """Loss and gradients of J restricted to the given ratings (a mini-batch or all of K).

    Per rating, with e = r_ui - r̂_ui (the regularizer is per rating, see module doc)::

        loss      = sum e^2 + lambda (|w_u|^2 + |v_i|^2 + b_u^2 + c_i^2)
        dJ/dw_u   = sum_{i in batch(u)} -2 e_ui v_i + 2 lambda w_u
        dJ/dv_i   = sum_{u in batch(i)} -2 e_ui w_u + 2 lambda v_i
        dJ/db_u   = sum_{i in batch(u)} -2 e_ui + 2 lambda b_u
        dJ/dc_i   = sum_{u in batch(i)} -2 e_ui + 2 lambda c_i

    Scatter-adds over ratings are one sparse (n_users x n_items) matrix product
    with the residuals as data, so there is no Python loop per rating.
    Returns ``(loss, d_user_factors, d_item_factors, d_user_bias, d_item_bias)``,
    dense arrays shaped like the parameters (zero rows for absent users/items).
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    wu, vi = user_factors[rows], item_factors[cols]
    err = np.asarray(ratings, dtype=np.float64) - (
        global_mean + user_bias[rows] + item_bias[cols] + np.einsum("nk,nk->n", wu, vi)
    )
    # Number of batch ratings each parameter appears in = its per-rating penalty weight.
    n_u = np.bincount(rows, minlength=n_users).astype(np.float64)
    n_i = np.bincount(cols, minlength=n_items).astype(np.float64)
    loss = float(
        err @ err
        + regularization
        * (
            n_u @ (np.einsum("uk,uk->u", user_factors, user_factors) + user_bias**2)
            + n_i @ (np.einsum("ik,ik->i", item_factors, item_factors) + item_bias**2)
        )
    )
    # E[u, i] = e_ui; duplicates (u, i) in a batch are summed by the COO->CSR conversion.
    e_mat = sp.csr_matrix((err, (rows, cols)), shape=(n_users, n_items))
    two_lam = 2.0 * regularization
    d_w = -2.0 * (e_mat @ item_factors) + two_lam * n_u[:, None] * user_factors
    d_v = -2.0 * (e_mat.T @ user_factors) + two_lam * n_i[:, None] * item_factors
    d_bu = -2.0 * np.bincount(rows, weights=err, minlength=n_users) + two_lam * n_u * user_bias
    d_bi = -2.0 * np.bincount(cols, weights=err, minlength=n_items) + two_lam * n_i * item_bias
    return loss, d_w, d_v, d_bu, d_bi


def batch_loss_and_gradients_reference(
    user_factors: Float,
    item_factors: Float,
    user_bias: Float,
    item_bias: Float,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    ratings: NDArray[np.floating[Any]],
    global_mean: float,
    regularization: float,
) -> Gradients:
    """Slow textbook version of :func:`batch_loss_and_gradients`: one loop step per rating."""
    d_w = np.zeros_like(user_factors, dtype=np.float64)
    d_v = np.zeros_like(item_factors, dtype=np.float64)
    d_bu = np.zeros(user_factors.shape[0])
    d_bi = np.zeros(item_factors.shape[0])
    loss = 0.0
    lam = regularization
    for u, i, r in zip(
        rows.tolist(), cols.tolist(), np.asarray(ratings, dtype=np.float64).tolist(), strict=True
    ):
        w, v = user_factors[u].astype(np.float64), item_factors[i].astype(np.float64)
        e = r - (global_mean + user_bias[u] + item_bias[i] + float(w @ v))
        loss += e * e + lam * (float(w @ w) + float(v @ v) + user_bias[u] ** 2 + item_bias[i] ** 2)
        d_w[u] += -2.0 * e * v + 2.0 * lam * w
        d_v[i] += -2.0 * e * w + 2.0 * lam * v
        d_bu[u] += -2.0 * e + 2.0 * lam * user_bias[u]
        d_bi[i] += -2.0 * e + 2.0 * lam * item_bias[i]
    return loss, d_w, d_v, d_bu, d_bi


def _scatter_add_rows(target: Float, index: NDArray[np.int64], values: Float) -> None:
    """``target[index[j]] += values[j]`` for every j, repeated indices accumulating.

    Same result as ``np.add.at(target, index, values)``, but one ``bincount``
    over flattened (row, column) positions, which is several times faster
    than ``np.add.at`` on 2-D arrays.
    """
    if target.ndim == 1:
        target += np.bincount(index, weights=values, minlength=target.shape[0])
        return
    n, k = target.shape
    flat = (index[:, None] * k + np.arange(k)).ravel()
    target += np.bincount(flat, weights=values.ravel(), minlength=n * k).reshape(n, k)


def sgd_momentum_step(
    params: tuple[Float, Float, Float, Float],
    velocity: tuple[Float, Float, Float, Float],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    ratings: Float,
    global_mean: float,
    regularization: float,
    learning_rate: float,
    momentum: float,
) -> None:
    """One classical-momentum step on a mini-batch, in place (Polyak 1964)::

        velocity = momentum * velocity - learning_rate * g,   theta = theta + velocity

    for theta in (W, V, b, c), g the gradient of J summed over the batch's
    ratings (see :func:`batch_loss_and_gradients`). g is never materialized
    densely: per-rating terms ``-lr * dJ_ui/dtheta`` are scatter-added straight
    into the velocity (repeated users/items accumulate) by :func:`_scatter_add_rows`.
    """
    w, v, b, c = params
    vw, vv, vb, vc = velocity
    wu, vi = w[rows], v[cols]
    bu, ci = b[rows], c[cols]
    err = ratings - (global_mean + bu + ci + np.einsum("nk,nk->n", wu, vi))
    for vel in velocity:
        vel *= momentum
    # -lr * dJ/dtheta per rating, e.g. -lr * (-2 e v_i + 2 lambda w_u) = 2 lr (e v_i - lambda w_u).
    step = 2.0 * learning_rate
    lam = regularization
    _scatter_add_rows(vw, rows, step * (err[:, None] * vi - lam * wu))
    _scatter_add_rows(vv, cols, step * (err[:, None] * wu - lam * vi))
    _scatter_add_rows(vb, rows, step * (err - lam * bu))
    _scatter_add_rows(vc, cols, step * (err - lam * ci))
    for p, vel in zip(params, velocity, strict=True):
        p += vel


def _unflatten(params: Float, n_users: int, n_items: int, factors: int) -> tuple[Float, Float, Float, Float]:
    """Views (W, V, b, c) into the flat vector laid out as [b (n), c (m), W (n*k), V (m*k)]."""
    b = params[:n_users]
    c = params[n_users : n_users + n_items]
    off = n_users + n_items
    w = params[off : off + n_users * factors].reshape(n_users, factors)
    v = params[off + n_users * factors :].reshape(n_items, factors)
    return w, v, b, c


def _flatten(w: Float, v: Float, b: Float, c: Float) -> Float:
    return np.concatenate([b, c, w.ravel(), v.ravel()])


def objective_and_gradient(
    params: Float,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    ratings: NDArray[np.floating[Any]],
    shape: tuple[int, int],
    factors: int,
    global_mean: float,
    regularization: float,
) -> tuple[float, Float]:
    """``(J / N, grad J / N)`` over the flat parameters ``[b, c, W.ravel(), V.ravel()]``.

    J is the full-batch objective of the module doc over all N given ratings.
    Dividing by N does not move the minimizer; it makes L-BFGS's stopping
    tolerances independent of the data size.
    """
    n_users, n_items = shape
    w, v, b, c = _unflatten(np.asarray(params, dtype=np.float64), n_users, n_items, factors)
    loss, d_w, d_v, d_b, d_c = batch_loss_and_gradients(
        w, v, b, c, rows, cols, ratings, global_mean, regularization
    )
    n = max(len(ratings), 1)
    return loss / n, _flatten(d_w, d_v, d_b, d_c) / n


def ridge_fold_in(
    item_factors: Float, targets: Float, regularization: float
) -> tuple[NDArray[np.float64], float]:
    """Exact (w_u, b_u) minimizing J with the item side fixed.

    With z_i = [v_i; 1], x = [w_u; b_u] and y_i = r_ui - mu - c_i, J restricted
    to one user is ``sum_i (y_i - z_i . x)^2 + lambda n_u |x|^2`` (per-rating
    penalty, n_u = number of ratings), so::

        (Z^T Z + lambda n_u I) x = Z^T y

    ``item_factors`` is V restricted to the user's rated items (n_u x k).
    No ratings gives the zero vector and zero bias (the prior mean).
    """
    v = np.asarray(item_factors, dtype=np.float64)
    n, k = v.shape
    if n == 0:
        return np.zeros(k), 0.0
    z = np.hstack([v, np.ones((n, 1))])
    a = z.T @ z + regularization * n * np.eye(k + 1)
    x = np.linalg.solve(a, z.T @ np.asarray(targets, dtype=np.float64))
    return x[:k], float(x[k])


def ridge_fold_in_reference(
    item_factors: Float, targets: Float, regularization: float
) -> tuple[NDArray[np.float64], float]:
    """Reference for :func:`ridge_fold_in`: least squares on the augmented system.

    Ridge regression equals ordinary least squares on ``[Z; sqrt(lambda n) I] x = [y; 0]``.
    """
    v = np.asarray(item_factors, dtype=np.float64)
    n, k = v.shape
    if n == 0:
        return np.zeros(k), 0.0
    z = np.hstack([v, np.ones((n, 1))])
    a = np.vstack([z, np.sqrt(regularization * n) * np.eye(k + 1)])
    y = np.concatenate([np.asarray(targets, dtype=np.float64), np.zeros(k + 1)])
    x = np.linalg.lstsq(a, y, rcond=None)[0]
    return x[:k], float(x[k])


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------
class _BiasedMF(Recommender):
    """Shared prediction, fold-in and similarity code of the biased MF models.

    Both fits end with one exact user half step (the ridge solve of
    :func:`ridge_fold_in`, run by explicit ALS's kernel with the per-rating
    penalty ``lambda n_u``): an exact block minimization never increases J,
    and it makes a user's stored factors equal to what folding the same
    ratings in gives, so a user's list does not jump at their next rating.
    """

    serving_kind: ClassVar[str | None] = RATING

    factors: int
    regularization: float
    random_state: int | None

    user_factors_: Float
    item_factors_: Float
    user_bias_: Float
    item_bias_: Float
    loss_history_: list[float]

    def _init_params(self, data: Interactions, rng: np.random.Generator) -> tuple[Float, Float, Float, Float]:
        # Small random factors break the w = v = 0 saddle point; biases start at 0.
        scale = 0.1 / np.sqrt(self.factors)
        w = rng.normal(0.0, scale, size=(data.n_users, self.factors))
        v = rng.normal(0.0, scale, size=(data.n_items, self.factors))
        return w, v, np.zeros(data.n_users), np.zeros(data.n_items)

    def _store(self, w: Float, v: Float, b: Float, c: Float) -> None:
        self.user_factors_, self.item_factors_ = w.copy(), v.copy()
        self.user_bias_, self.item_bias_ = b.copy(), c.copy()

    def objective(self, data: Interactions | None = None) -> float:
        """J / N of the fitted parameters on ``data`` (default: the training data)."""
        self._check_fitted()
        rows, cols, r = (self.data_ if data is None else data).to_coo_arrays()
        loss = batch_loss_and_gradients(
            self.user_factors_,
            self.item_factors_,
            self.user_bias_,
            self.item_bias_,
            rows,
            cols,
            r,
            self.global_mean_,
            self.regularization,
        )[0]
        return loss / max(len(r), 1)

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        return (
            self.global_mean_
            + self.user_bias_[users]
            + self.item_bias_[items]
            + np.einsum("nk,nk->n", self.user_factors_[users], self.item_factors_[items])
        )

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.score_vector(self.user_factors_[user], float(self.user_bias_[user]))

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        # Cosine of item vectors; an all-zero vector (item never trained) scores 0.
        v = self.item_factors_
        norms = np.linalg.norm(v, axis=1)
        denom = np.maximum(norms * norms[item], 1e-12)
        return (v @ v[item]) / denom

    def export_tables(self) -> FactorTables:
        return self._factor_tables()

    def _solve_users(
        self,
        indptr: NDArray[np.integer[Any]],
        indices: NDArray[np.integer[Any]],
        ratings: NDArray[np.floating[Any]],
        item_factors: NDArray[np.floating[Any]],
        item_bias: NDArray[np.floating[Any]],
        global_mean: float,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Exact ``(w_u, b_u)`` of every CSR row: ``(Z^T Z + lambda n_u I) x = Z^T (r - mu - c)``."""
        from .als import als_half_step  # numba kernels: imported when first needed

        n_rows = indptr.shape[0] - 1
        w = np.zeros((n_rows, item_factors.shape[1]), dtype=np.float32)
        b = np.zeros(n_rows, dtype=np.float32)
        als_half_step(
            indptr,
            indices,
            np.asarray(ratings, dtype=np.float32),
            global_mean,
            np.ascontiguousarray(item_factors, dtype=np.float32),
            np.ascontiguousarray(item_bias, dtype=np.float32),
            w,
            b,
            regularization=float(self.regularization),
            bias_regularization=float(self.regularization),
            exponent=1.0,
            solver="cholesky",
        )
        return w, b

    def _finish_users(self, data: Interactions) -> None:
        csr = data.csr
        w, b = self._solve_users(
            csr.indptr, csr.indices, csr.data, self.item_factors_, self.item_bias_, self.global_mean_
        )
        self.user_factors_, self.user_bias_ = w.astype(np.float64), b.astype(np.float64)

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """The exact ridge solve of :func:`ridge_fold_in` with the stored items fixed,
        through the same kernel the fit ends with (so training users are reproduced)."""
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        order = np.argsort(items, kind="stable")
        w, b = self._solve_users(
            np.array([0, items.size], dtype=np.int32),
            items[order].astype(np.int32),
            r[order],
            tables.item_vectors,
            tables.item_bias,
            tables.global_mean,
        )
        return w[0].astype(np.float64), float(b[0])


class SGDMF(_BiasedMF):
    """Biased MF ``r̂_ui = mu + b_u + c_i + w_u . v_i`` by mini-batch SGD with momentum.

    Minimizes ``J = sum_{(u,i) in K} (r_ui - r̂_ui)^2 + lambda (|w_u|^2 + |v_i|^2 + b_u^2 + c_i^2)``
    (regularizer per rating, see the module doc) as in Koren, Bell & Volinsky,
    "Matrix factorization techniques for recommender systems", IEEE Computer
    2009. Every epoch visits the ratings in a fresh random order in batches of
    ``batch_size``; per batch, with g the gradient of J summed over the batch's
    ratings (so each rating contributes a full step, as in Koren et al.'s
    per-rating SGD, and ``learning_rate`` does not depend on ``batch_size``)::

        velocity = momentum * velocity - learning_rate * g
        theta    = theta + velocity

    (classical momentum, Polyak 1964). ``loss_history_`` holds J / N on the
    training data after every epoch.
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.0005,
        regularization: float = 0.07,
        momentum: float = 0.9,
        batch_size: int = 1024,
        epochs: int = 40,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        if self.factors < 1 or self.batch_size < 1 or self.epochs < 0:
            raise ValueError("factors and batch_size must be >= 1 and epochs >= 0")
        rows, cols, r32 = data.to_coo_arrays()
        r = r32.astype(np.float64)
        mu = self.global_mean_
        rng = np.random.default_rng(self.random_state)
        params = self._init_params(data, rng)
        velocity = (
            np.zeros_like(params[0]),
            np.zeros_like(params[1]),
            np.zeros_like(params[2]),
            np.zeros_like(params[3]),
        )
        history: list[float] = []
        nnz = len(r)
        # A diverging run overflows to inf/nan; that is reported once, below, not as warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(self.epochs):
                order = rng.permutation(nnz)
                for start in range(0, nnz, self.batch_size):
                    idx = order[start : start + self.batch_size]
                    sgd_momentum_step(
                        params,
                        velocity,
                        rows[idx],
                        cols[idx],
                        r[idx],
                        mu,
                        self.regularization,
                        self.learning_rate,
                        self.momentum,
                    )
                loss = batch_loss_and_gradients(*params, rows, cols, r, mu, self.regularization)[0]
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"SGDMF diverged (loss {loss}); lower learning_rate (now {self.learning_rate})"
                    )
                history.append(loss / nnz)
        self._store(*params)
        self._finish_users(data)
        self.loss_history_ = history


class LBFGSMF(_BiasedMF):
    """Biased MF ``r̂_ui = mu + b_u + c_i + w_u . v_i`` by full-batch L-BFGS.

    Minimizes the same objective as :class:`SGDMF` (Koren, Bell & Volinsky,
    IEEE Computer 2009), ``J / N`` with
    ``J = sum_{(u,i) in K} (r_ui - r̂_ui)^2 + lambda (|w_u|^2 + |v_i|^2 + b_u^2 + c_i^2)``,
    jointly over all parameters with scipy's L-BFGS-B (Byrd, Lu, Nocedal & Zhu
    1995; limited-memory BFGS of Liu & Nocedal 1989) using the exact vectorized
    gradient :func:`objective_and_gradient`. ``loss_history_`` holds J / N at
    the start and after every iteration; ``n_iter_`` and ``converged_`` report
    the optimizer's outcome.
    """

    n_iter_: int
    converged_: bool

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.1,
        max_iter: int = 200,
        tol: float = 1e-9,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        if self.factors < 1:
            raise ValueError("factors must be >= 1")
        rows, cols, r32 = data.to_coo_arrays()
        r = r32.astype(np.float64)
        args = (
            rows,
            cols,
            r,
            (data.n_users, data.n_items),
            self.factors,
            self.global_mean_,
            self.regularization,
        )
        x0 = _flatten(*self._init_params(data, np.random.default_rng(self.random_state)))
        history = [objective_and_gradient(x0, *args)[0]]

        def record(intermediate_result: Any) -> None:
            history.append(float(intermediate_result.fun))

        result = minimize(
            objective_and_gradient,
            x0,
            args=args,
            method="L-BFGS-B",
            jac=True,
            callback=record,
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-10},
        )
        self._store(*_unflatten(result.x, data.n_users, data.n_items, self.factors))
        self._finish_users(data)
        self.loss_history_ = history
        self.n_iter_ = int(result.nit)
        self.converged_ = bool(result.success)
