"""Implicit-feedback ALS (weighted matrix factorization) with a CG solver.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback
Datasets", ICDM 2008; solver from Takacs, Pilaszy & Tikk, "Applications of
the conjugate gradient method for implicit feedback collaborative
filtering", RecSys 2011.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from ._als_kernels import (
    PANEL,
    PREFETCH_AHEAD,
    accumulate_gram_panel,
    cholesky_solve_inplace,
    gather_transposed,
    prefetch_row,
    residual_block,
    residual_normal_product,
    residual_row,
)
from .als import chunk_bounds, warm_start_factors
from .base import Recommender
from .interactions import Interactions
from .tables import RANKING, FactorTables


def confidence(ratings: NDArray[np.floating], alpha: float, rating_min: float) -> NDArray[np.float32]:
    """Confidence ``c_ui = 1 + alpha * f(r_ui)`` with ``f(r) = r - r_min + 1``.

    ``f`` shifts ratings so the lowest rating on the scale counts 1 (on 1..5
    stars that is ``f(r) = r``): every rating is evidence of interest, and
    higher stars are stronger evidence. Missing entries have ``c = 1, p = 0``.
    """
    return (1.0 + alpha * (np.asarray(ratings, dtype=np.float64) - rating_min + 1.0)).astype(np.float32)


def cg_least_squares_step(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    conf: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    yty_reg: NDArray[np.float32],
    cg_steps: int,
    bounds: NDArray[np.int64] | None = None,
) -> None:
    """Update every row of ``x`` in place by ``cg_steps`` conjugate-gradient steps.

    Row ``u`` solves ``A x_u = b`` with (Hu et al. eq. 4, all p_ui = 1 on the
    observed entries, c_ui = 1 and p_ui = 0 elsewhere)::

        A = Y^T Y + lambda I + sum_{i in I_u} (c_ui - 1) y_i y_i^T
        b = sum_{i in I_u} c_ui y_i

    ``yty_reg = Y^T Y + lambda I`` is precomputed once, so ``A p`` costs
    O(k^2 + |I_u| k) and a dense ``A`` is never formed (Takacs et al. 2011).
    CG is warm-started from the current ``x_u``; each step is an exact line
    search, so the row's quadratic objective never increases. Confidences
    must be >= 1 (``c - 1`` below 0 counts as 0). ``bounds``: row chunks of
    about equal cost (:func:`~recommender.engine.als.chunk_bounds`), computed
    here if not given.
    """
    if bounds is None:
        bounds = chunk_bounds(indptr, x.shape[1], solver="cg")
    _cg_rows(indptr, indices, conf, x, y, yty_reg, int(cg_steps), bounds)


@njit(cache=True, fastmath=True, error_model="numpy")
def _gather_weighted(
    indices: NDArray[np.integer],
    conf: NDArray[np.float32],
    start: int,
    n: int,
    y: NDArray[np.float32],
    x: NDArray[np.float32],
    z: NDArray[np.float32],
    b: NDArray[np.float32],
    out: NDArray[np.float32],
    zeros: NDArray[np.float32],
) -> None:
    """One pass over a row's ratings: ``z[j] = sqrt(c_j - 1) y_j``, ``b = sum c_j y_j``
    and ``out = -sum (z_j . x) z_j``, i.e. ``-(A - Y^T Y - lambda I) x``
    (``zeros``: at least ``n`` zero targets for the residual passes).

    Eight rated vectors at a time are copied (the next ones prefetched) and
    used while in L1, as :func:`~recommender.engine._als_kernels.gather_residual`
    does for explicit ALS; every later CG product then reads the row's
    contiguous, cache-resident block instead of gathering ``y`` again.
    """
    k = y.shape[1]
    b[:] = 0.0
    out[:] = 0.0
    zero = np.float32(0.0)
    one = np.float32(1.0)
    j = 0
    while j < n:
        block_end = min(j + 8, n)
        for q in range(j, block_end):
            if q + PREFETCH_AHEAD < n:
                prefetch_row(y, indices[start + q + PREFETCH_AHEAD])  # type: ignore[call-arg]
            c = conf[start + q]
            w = np.sqrt(max(c - one, zero))
            src = y[indices[start + q]]
            dst = z[q]
            for a in range(k):
                v = src[a]
                b[a] += c * v
                dst[a] = w * v
        if block_end - j == 8:
            residual_block(z, j, zeros, x, zero, out)
        else:
            for q in range(j, block_end):
                residual_row(z, q, zeros, x, zero, out)
        j = block_end


@njit(cache=True, parallel=True, fastmath=True, nogil=True, error_model="numpy")
def _cg_rows(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    conf: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    yty_reg: NDArray[np.float32],
    cg_steps: int,
    bounds: NDArray[np.int64],
) -> None:
    """The kernel of :func:`cg_least_squares_step`, one ``prange`` task per chunk of rows.

    With ``Z`` the row's vectors scaled by ``sqrt(c - 1)`` (gathered once by
    :func:`_gather_weighted`), ``A p = (Y^T Y + lambda I) p + Z^T (Z p)``: a
    k x k product plus one pass over the cache-resident block per CG step.
    """
    k = x.shape[1]
    for c in prange(bounds.shape[0] - 1):
        longest = 1
        for u in range(bounds[c], bounds[c + 1]):
            longest = max(longest, indptr[u + 1] - indptr[u])
        z = np.empty((longest, k), dtype=np.float32)
        zeros = np.zeros(longest, dtype=np.float32)
        xu = np.empty(k, dtype=np.float32)
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        zero = np.float32(0.0)
        for u in range(bounds[c], bounds[c + 1]):
            start = indptr[u]
            n = indptr[u + 1] - start
            xu[:] = x[u]
            # r = b - A x = b - (Y^T Y + lambda I) x - Z^T Z x; the gather leaves -Z^T Z x in ap.
            _gather_weighted(indices, conf, start, n, y, xu, z, r, ap, zeros)
            rs_old = np.float32(0.0)
            for a in range(k):
                acc = np.float32(0.0)
                for bb in range(k):
                    acc += yty_reg[a, bb] * xu[bb]
                r[a] += ap[a] - acc
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(cg_steps):
                if rs_old < 1e-20:
                    break  # converged: a further step would divide by ~0
                residual_normal_product(z, zeros, n, p, zero, ap)  # ap = -Z^T Z p
                pap = np.float32(0.0)
                for a in range(k):
                    acc = np.float32(0.0)
                    for bb in range(k):
                        acc += yty_reg[a, bb] * p[bb]
                    ap[a] = acc - ap[a]
                    pap += p[a] * ap[a]
                if pap <= 0.0:
                    break  # A is positive definite; <= 0 only from round-off at convergence
                step = rs_old / pap
                rs_new = np.float32(0.0)
                for a in range(k):
                    xu[a] += step * p[a]
                    r[a] -= step * ap[a]
                    rs_new += r[a] * r[a]
                beta = rs_new / rs_old
                for a in range(k):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new
            x[u] = xu


@njit(cache=True, parallel=True, fastmath=True, nogil=True, error_model="numpy")
def _observed_loss_terms(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    conf: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
) -> float:
    # sum over observed (u, i) of c (1 - s)^2 - s^2 with s = x_u . y_i: the
    # observed entries' loss minus what the "all missing" term counted for them.
    n_rows, k = x.shape
    total = 0.0
    for u in prange(n_rows):
        part = 0.0
        for jj in range(indptr[u], indptr[u + 1]):
            i = indices[jj]
            s = 0.0
            for a in range(k):
                s += np.float64(x[u, a]) * np.float64(y[i, a])
            part += conf[jj] * (1.0 - s) ** 2 - s * s
        total += part
    return total


def implicit_als_loss(
    conf_csr: sp.csr_matrix, x: NDArray[np.floating], y: NDArray[np.floating], regularization: float
) -> float:
    """Hu et al. objective ``sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2)``.

    Evaluated in O(nnz k + (n_users + n_items) k^2) without the dense matrix:
    ``sum_{all u,i} (x_u.y_i)^2 = <X^T X, Y^T Y>`` plus a correction on the
    observed entries (``conf_csr`` holds c_ui there).
    """
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    dense_part = float(np.sum((x64.T @ x64) * (y64.T @ y64)))
    observed = _observed_loss_terms(
        conf_csr.indptr,
        conf_csr.indices,
        np.ascontiguousarray(conf_csr.data, dtype=np.float32),
        np.ascontiguousarray(x, dtype=np.float32),
        np.ascontiguousarray(y, dtype=np.float32),
    )
    return dense_part + float(observed) + regularization * float(np.sum(x64**2) + np.sum(y64**2))


def implicit_als_step_reference(
    conf_dense: NDArray[np.floating], y: NDArray[np.floating], regularization: float
) -> NDArray[np.float64]:
    """Slow textbook reference: exact per-row solve, all rows, float64.

    ``conf_dense`` is rows x items with c_ui on observed entries and 0 where
    missing (p_ui = 1 exactly where conf > 0). For each row (Hu et al. eq. 4)::

        x_u = (Y^T C_u Y + lambda I)^-1 Y^T C_u p_u,   C_u = diag(c_u), c = 1 if missing
    """
    conf_dense = np.asarray(conf_dense, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.float64)
    k = y64.shape[1]
    out = np.zeros((conf_dense.shape[0], k))
    for u in range(conf_dense.shape[0]):
        observed = conf_dense[u] > 0
        c_u = np.where(observed, conf_dense[u], 1.0)
        p_u = observed.astype(np.float64)
        a = y64.T @ (c_u[:, None] * y64) + regularization * np.eye(k)
        out[u] = np.linalg.solve(a, y64.T @ (c_u * p_u))
    return out


@njit(cache=True, parallel=True, fastmath=True, nogil=True, error_model="numpy")
def exact_rows_step(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    conf: NDArray[np.float32],
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    yty_reg: NDArray[np.float64],
) -> None:
    """Overwrite every row of ``x`` with the exact solve of Hu et al. eq. 4::

        x_u = (Y^T Y + lambda I + sum_{i in I_u} (c_ui - 1) y_i y_i^T)^-1 sum_{i in I_u} c_ui y_i

    ``yty_reg = Y^T Y + lambda I`` (float64). The weighted Gram is summed in
    float32 panels as in explicit ALS (rated vectors gathered transposed and
    scaled by ``sqrt(c - 1)``), the k x k system solved by Cholesky in float64.
    """
    n_rows, k = x.shape
    kp = (k + 3) // 4 * 4
    for u in prange(n_rows):
        start, end = indptr[u], indptr[u + 1]
        zt = np.zeros((kp, PANEL), dtype=np.float32)
        g = np.zeros((kp, kp), dtype=np.float32)
        rhs = np.zeros(k, dtype=np.float64)
        for p0 in range(start, end, PANEL):
            m = min(PANEL, end - p0)
            gather_transposed(indices, p0, m, y, zt)
            for a in range(k):
                row = zt[a]
                s_rhs = np.float32(0.0)
                for j in range(m):
                    s_rhs += conf[p0 + j] * row[j]
                    row[j] *= np.sqrt(conf[p0 + j] - np.float32(1.0))
                rhs[a] += s_rhs
            accumulate_gram_panel(zt, m, g)
        a64 = np.empty((k, k), dtype=np.float64)
        for a in range(k):
            for b in range(a + 1):
                a64[a, b] = g[b, a] + yty_reg[a, b]
        cholesky_solve_inplace(a64, rhs)
        for a in range(k):
            x[u, a] = rhs[a]


def exact_rows_step_reference(
    conf_csr: sp.csr_matrix, y: NDArray[np.floating], regularization: float
) -> NDArray[np.float64]:
    """Slow reference of :func:`exact_rows_step` via :func:`implicit_als_step_reference`."""
    return implicit_als_step_reference(conf_csr.toarray(), y, regularization)


class ImplicitALS(Recommender):
    """Weighted matrix factorization for implicit feedback, solved by ALS + CG.

    Hu, Koren & Volinsky (ICDM 2008) treat every rating as an implicit signal:
    preference ``p_ui = 1`` if ``u`` rated ``i`` (else 0), confidence
    ``c_ui = 1 + alpha * f(r_ui)`` with ``f(r) = r - r_min + 1`` (else 1), and
    minimize over all user-item pairs::

        sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)

    Alternating exact minimization per row is a k x k linear system; it is
    solved approximately by ``cg_steps`` warm-started conjugate-gradient steps
    (Takacs, Pilaszy & Tikk, RecSys 2011) using the shared ``Y^T Y``, so each
    row costs O(|I_u| k + k^2) per CG step instead of O(|I_u| k^2 + k^3).

    Scores for ranking are ``x_u . Y^T``; ``similar_items`` is the cosine of
    item factors. Ranking only: ``predict`` returns the regularized baseline
    of :mod:`recommender.engine.base`. With ``track_loss=True``,
    ``loss_history_`` holds the objective after every iteration
    (:func:`implicit_als_loss`, one extra O(nnz k) pass each, about a fifth of
    an iteration); by default it is not computed and ``loss_history_`` is
    empty. Tracking never changes the factors.
    """

    ranking_only = True
    serving_kind: ClassVar[str | None] = RANKING

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    loss_history_: list[float]

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 50.0,
        alpha: float = 1.5,
        iterations: int = 15,
        cg_steps: int = 3,
        warm_start_iterations: int = 5,
        random_state: int | None = 0,
        track_loss: bool = False,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.warm_start_iterations = warm_start_iterations
        self.random_state = random_state
        self.track_loss = track_loss

    def _confidence(self, ratings: NDArray[np.floating]) -> NDArray[np.float32]:
        return confidence(ratings, float(self.alpha), self.rating_scale_[0])

    def fit(self, data: Interactions, init: ImplicitALS | None = None) -> Self:
        """Fit on ``data``; with ``init`` (a fitted ImplicitALS with the same
        ``factors`` on the same id vocabularies), start from its factors and run
        ``warm_start_iterations`` iterations instead of ``iterations``."""
        self._init = init
        try:
            return super().fit(data)
        finally:
            self._init = None

    def _fit(self, data: Interactions) -> None:
        k = int(self.factors)
        if k < 1:
            raise ValueError("factors must be >= 1")
        if not float(self.alpha) >= 0.0:
            # c = 1 + alpha f(r) must be >= 1: the missing entries' weight is 1.
            raise ValueError(f"alpha must be >= 0 (got {self.alpha})")
        lam = float(self.regularization)
        rng = np.random.default_rng(self.random_state)
        iterations = int(self.iterations)
        init = getattr(self, "_init", None)
        if init is not None:
            x, _, y, _ = warm_start_factors(init, data, k)
            iterations = min(iterations, int(self.warm_start_iterations))
        else:
            # Small random start breaks the symmetry between factors.
            x = (rng.standard_normal((data.n_users, k)) * 0.01).astype(np.float32)
            y = (rng.standard_normal((data.n_items, k)) * 0.01).astype(np.float32)
        csr, csc = data.csr, data.csc
        conf_u = self._confidence(csr.data)
        conf_i = self._confidence(csc.data)
        conf_csr = (
            sp.csr_matrix((conf_u, csr.indices, csr.indptr), shape=csr.shape) if self.track_loss else None
        )
        eye = lam * np.eye(k)
        user_bounds = chunk_bounds(csr.indptr, k, solver="cg")
        item_bounds = chunk_bounds(csc.indptr, k, solver="cg")
        self.loss_history_ = []
        for _ in range(iterations):
            # Gram matrices in float64 then cast: one k x k product per half step.
            yty = (y.astype(np.float64).T @ y + eye).astype(np.float32)
            cg_least_squares_step(csr.indptr, csr.indices, conf_u, x, y, yty, int(self.cg_steps), user_bounds)
            xtx = (x.astype(np.float64).T @ x + eye).astype(np.float32)
            cg_least_squares_step(csc.indptr, csc.indices, conf_i, y, x, xtx, int(self.cg_steps), item_bounds)
            if conf_csr is not None:
                self.loss_history_.append(implicit_als_loss(conf_csr, x, y, lam))
        # Users last and exactly: the stored user vectors are then what a fold-in
        # of the same ratings gives (the site folds users in with the exact
        # solve), and the objective can only go down.
        if iterations > 0:
            yty64 = y.astype(np.float64).T @ y.astype(np.float64) + eye
            exact_rows_step(csr.indptr, csr.indices, conf_u, x, y, yty64)
        self.user_factors_ = x
        self.item_factors_ = y
        norms = np.linalg.norm(y.astype(np.float64), axis=1)
        self.item_unit_ = y / np.where(norms > 0, norms, 1.0)[:, None].astype(np.float32)

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.score_vector(self.user_factors_[user])

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        return (self.item_unit_ @ self.item_unit_[item]).astype(np.float64)

    def export_tables(self) -> FactorTables:
        # Scores are x_u . y_i alone: no biases, no constant.
        return self._factor_tables(
            item_bias=np.zeros(self.data_.n_items, dtype=np.float32),
            user_bias=np.zeros(self.data_.n_users, dtype=np.float32),
            global_mean=0.0,
        )

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """The exact Hu et al. row solve with the stored items fixed (bias 0).

        ``x = (Y^T Y + lambda I + sum_i (c_i - 1) y_i y_i^T)^-1 sum_i c_i y_i``
        through the kernel that :meth:`fit` ends with, so a training user gets
        back their trained vector exactly; ``Y^T Y`` is the tables' cached Gram.
        """
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        k = tables.n_factors
        order = np.argsort(items, kind="stable")
        x = np.zeros((1, k), dtype=np.float32)
        if items.size:
            conf = confidence(r[order], float(self.alpha), tables.rating_scale[0])
            exact_rows_step(
                np.array([0, items.size], dtype=np.int32),
                items[order].astype(np.int32),
                conf,
                x,
                np.ascontiguousarray(tables.item_vectors, dtype=np.float32),
                tables.gram + float(self.regularization) * np.eye(k),
            )
        return x[0].astype(np.float64), 0.0
