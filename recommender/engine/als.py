"""Explicit-feedback ALS: biased matrix factorization by alternating ridge solves.

Model (Koren, Bell & Volinsky, "Matrix Factorization Techniques for
Recommender Systems", IEEE Computer 2009, eq. 5)::

    r̂_ui = mu + b_u + c_i + w_u . v_i

Objective over the observed ratings K, with weighted-lambda regularization
(Zhou, Wilkinson, Schreiber & Pan, "Large-scale Parallel Collaborative
Filtering for the Netflix Prize", AAIM 2008)::

    J = sum_{(u,i) in K} (r_ui - r̂_ui)^2
        + sum_u n_u^alpha (lambda |w_u|^2 + lambda_b b_u^2)
        + sum_i n_i^alpha (lambda |v_i|^2 + lambda_b c_i^2)

``alpha = 1`` is ALS-WR's weighted lambda, ``alpha = 0`` a constant penalty;
``lambda_b`` (bias regularization) defaults to ``lambda``.
With the item side fixed J is a ridge regression per user on ``[w_u, b_u]``
with features ``[v_i, 1]`` and targets ``r_ui - mu - c_i``, and symmetrically
for items, so alternating exact solves never increase J.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._als_kernels import half_step_cg, half_step_cholesky, row_squared_errors
from .base import Recommender
from .interactions import Interactions
from .tables import RATING, FactorTables

__all__ = [
    "ExplicitALS",
    "als_half_step",
    "als_half_step_reference",
    "chunk_bounds",
    "explicit_als_loss",
    "row_regularization",
    "warm_start_factors",
]

SOLVERS = ("cholesky", "cg")
#: ``solver="auto"`` switches from the exact solve to CG at this many ratings:
#: below it an iteration takes well under a second either way and exactness
#: is free (a CG-fitted user folds back in to the exact solve, not to their
#: trained vector); above it CG is 4-9x faster per iteration (bench/bench_als.py)
#: at the same validation RMSE.
AUTO_CG_MIN_RATINGS = 5_000_000


def warm_start_factors(
    init: Any, data: Interactions, k: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Copies of a fitted model's ``(w, b, v, c)`` to start a fit on ``data`` from.

    Raises ``ValueError`` unless ``init`` is fitted with ``k`` factors on data
    with ``data``'s numbers of users and items (the same id vocabularies).
    """
    if not hasattr(init, "user_factors_"):
        raise ValueError("init must be a fitted model")
    if init.user_factors_.shape != (data.n_users, k) or init.item_factors_.shape != (data.n_items, k):
        raise ValueError(
            f"init has factors {init.user_factors_.shape} x {init.item_factors_.shape}; this fit needs "
            f"({data.n_users}, {k}) x ({data.n_items}, {k}) (same factors, same id vocabularies)"
        )
    n_users, n_items = data.n_users, data.n_items
    user_bias = getattr(init, "user_bias_", np.zeros(n_users, dtype=np.float32))
    item_bias = getattr(init, "item_bias_", np.zeros(n_items, dtype=np.float32))
    return (
        np.array(init.user_factors_, dtype=np.float32),
        np.array(user_bias, dtype=np.float32),
        np.array(init.item_factors_, dtype=np.float32),
        np.array(item_bias, dtype=np.float32),
    )


def chunk_bounds(
    indptr: NDArray[np.integer], k: int, chunks_per_thread: int = 64, solver: str = "cholesky"
) -> NDArray[np.int64]:
    """Row ranges of roughly equal cost for the parallel half step.

    With ``solver="cholesky"`` a row costs about ``n_u (k+1)^2`` for its Gram
    plus a solve that, though only ``(k+1)^3 / 6`` multiply-adds, runs at a
    fraction of the Gram's speed (short loops), so it is weighted as
    ``(k+1)^3``. With ``solver="cg"`` a row costs ``n_u k`` per pass over its
    ratings plus a few k-vector updates per CG step, weighted as ``16 k``.
    numba hands each thread a contiguous block of the ``prange``; balancing
    chunks by cost (not by row count) keeps both cores busy when a few
    popular items hold most ratings.
    """
    n_rows = int(indptr.shape[0] - 1)
    if n_rows == 0:
        return np.zeros(1, dtype=np.int64)
    k1 = k + 1
    n = np.diff(indptr).astype(np.float64)
    cost = n * k1 + 16.0 * k1 if solver == "cg" else n * k1 * k1 + float(k1**3)
    cum = np.cumsum(cost)
    n_chunks = max(1, min(n_rows, chunks_per_thread * numba.get_num_threads()))
    cuts = np.searchsorted(cum, np.linspace(0.0, cum[-1], n_chunks + 1)[1:-1], side="right")
    bounds = np.concatenate([[0], cuts, [n_rows]]).astype(np.int64)
    return np.unique(bounds)


def row_regularization(
    counts: NDArray[np.integer], regularization: float, exponent: float
) -> NDArray[np.float64]:
    """Per-row penalty ``lambda * n^alpha`` (weighted lambda, Zhou et al. 2008).

    Rows without ratings get 0; the kernels give them the zero vector anyway.
    """
    n = np.asarray(counts, dtype=np.float64)
    return np.where(n > 0, regularization * np.power(np.maximum(n, 1.0), exponent), 0.0)


def als_half_step(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    ratings: NDArray[np.floating],
    mu: float,
    other_factors: NDArray[np.floating],
    other_bias: NDArray[np.floating],
    factors: NDArray[np.float32],
    bias: NDArray[np.float32],
    *,
    regularization: float,
    bias_regularization: float | None = None,
    exponent: float = 1.0,
    solver: str = "cholesky",
    cg_steps: int = 2,
    bounds: NDArray[np.int64] | None = None,
    row_objective: NDArray[np.float64] | None = None,
) -> None:
    """One ALS half step over the rows of a CSR matrix, in place on ``factors, bias``.

    Row ``u`` gets ``[w_u, b_u] = (Z^T Z + n_u^alpha diag(lambda, .., lambda, lambda_b))^-1
    Z^T (r_u - mu - c)`` with ``Z = [V_u, 1]`` (exact Cholesky) or ``cg_steps``
    warm-started CG steps toward it (``solver="cg"``). ``factors``/``bias``
    must be C-contiguous float32 (they are also the CG starting point).

    If given, ``row_objective`` (float64, one entry per row) receives each
    row's part of J at its new ``[w_u, b_u]``: its squared errors plus its own
    penalty ``n_u^alpha (lambda |w_u|^2 + lambda_b b_u^2)``, computed while the
    row's vectors are still in cache.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if factors.dtype != np.float32 or bias.dtype != np.float32 or not factors.flags.c_contiguous:
        raise TypeError("factors and bias must be C-contiguous float32 arrays (updated in place)")
    k = factors.shape[1]
    if bounds is None:
        bounds = chunk_bounds(indptr, k, solver=solver)
    if row_objective is None:
        row_objective = np.empty(0, dtype=np.float64)
    elif row_objective.dtype != np.float64 or row_objective.shape != bias.shape:
        raise TypeError("row_objective must be a float64 array with one entry per row")
    counts = np.diff(indptr)
    lam_b = regularization if bias_regularization is None else bias_regularization
    args = (
        np.ascontiguousarray(indptr),
        np.ascontiguousarray(indices),
        np.ascontiguousarray(ratings, dtype=np.float32),
        float(mu),
        np.ascontiguousarray(other_bias, dtype=np.float32),
        np.ascontiguousarray(other_factors, dtype=np.float32),
        factors,
        bias,
        row_regularization(counts, float(regularization), float(exponent)),
        row_regularization(counts, float(lam_b), float(exponent)),
    )
    if solver == "cholesky":
        half_step_cholesky(*args, bounds, row_objective)
    else:
        half_step_cg(*args, int(cg_steps), bounds, row_objective)


def als_half_step_reference(
    dense: NDArray[np.floating],
    mask: NDArray[np.bool_],
    mu: float,
    other_factors: NDArray[np.floating],
    other_bias: NDArray[np.floating],
    regularization: float,
    bias_regularization: float | None = None,
    exponent: float = 1.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Slow textbook reference of :func:`als_half_step` (exact solve), float64.

    ``dense`` is rows x other-side ratings, ``mask`` marks the observed ones.
    For each row, with Z the rated items' ``[v_i, 1]`` and t = r - mu - c::

        [w_u, b_u] = solve(Z^T Z + n_u^alpha diag(lambda, ..., lambda, lambda_b), Z^T t)
    """
    lam_b = regularization if bias_regularization is None else bias_regularization
    v = np.asarray(other_factors, dtype=np.float64)
    c = np.asarray(other_bias, dtype=np.float64)
    n_rows, k = dense.shape[0], v.shape[1]
    w = np.zeros((n_rows, k))
    b = np.zeros(n_rows)
    for u in range(n_rows):
        items = np.flatnonzero(mask[u])
        if items.size == 0:
            continue
        z = np.hstack([v[items], np.ones((items.size, 1))])
        t = np.asarray(dense[u, items], dtype=np.float64) - mu - c[items]
        penalty = np.full(k + 1, float(regularization))
        penalty[k] = lam_b
        x = np.linalg.solve(z.T @ z + items.size**exponent * np.diag(penalty), z.T @ t)
        w[u], b[u] = x[:k], x[k]
    return w, b


def explicit_als_loss(
    data: Interactions,
    mu: float,
    user_factors: NDArray[np.floating],
    user_bias: NDArray[np.floating],
    item_factors: NDArray[np.floating],
    item_bias: NDArray[np.floating],
    regularization: float,
    bias_regularization: float | None = None,
    exponent: float = 1.0,
) -> float:
    """The regularized objective J of the module doc, in float64."""
    lam_b = regularization if bias_regularization is None else bias_regularization
    csr = data.csr
    sq = np.empty(data.n_users, dtype=np.float64)
    row_squared_errors(
        csr.indptr,
        csr.indices,
        np.ascontiguousarray(csr.data, dtype=np.float32),
        float(mu),
        np.ascontiguousarray(user_bias, dtype=np.float32),
        np.ascontiguousarray(user_factors, dtype=np.float32),
        np.ascontiguousarray(item_bias, dtype=np.float32),
        np.ascontiguousarray(item_factors, dtype=np.float32),
        sq,
    )
    wu = row_regularization(np.diff(csr.indptr), 1.0, exponent)
    wi = row_regularization(np.diff(data.csc.indptr), 1.0, exponent)
    uf = np.asarray(user_factors, dtype=np.float64)
    vf = np.asarray(item_factors, dtype=np.float64)
    ub = np.asarray(user_bias, dtype=np.float64)
    ib = np.asarray(item_bias, dtype=np.float64)
    penalty = regularization * (wu @ np.einsum("uk,uk->u", uf, uf) + wi @ np.einsum("ik,ik->i", vf, vf))
    penalty += lam_b * (wu @ ub**2 + wi @ ib**2)
    return float(sq.sum() + penalty)


class ExplicitALS(Recommender):
    """Biased matrix factorization ``r̂_ui = mu + b_u + c_i + w_u . v_i`` fitted by ALS.

    Minimizes (``mu`` fixed to the training mean, ``n_u``/``n_i`` = number of
    ratings of the row)::

        sum_{(u,i)} (r_ui - r̂_ui)^2 + sum_u n_u^alpha (lambda |w_u|^2 + lambda_b b_u^2)
                                     + sum_i n_i^alpha (lambda |v_i|^2 + lambda_b c_i^2)

    the biased model of Koren, Bell & Volinsky (IEEE Computer 2009) with the
    weighted-lambda regularization of ALS-WR (Zhou et al., AAIM 2008), which is
    ``alpha = 1``; ``alpha = 0`` is a constant penalty. Each iteration solves
    every item exactly with users fixed, then every user with items fixed: a
    (k+1) x (k+1) ridge system on ``[v_i, c_i]`` resp. ``[w_u, b_u]`` (features
    augmented with a constant 1 for the bias), so J never increases.
    ``solver="cg"`` replaces the exact solve by ``cg_steps`` warm-started
    conjugate-gradient steps (Takacs et al., RecSys 2011) on each row's system
    with the bias eliminated (its Schur complement): still monotone, not the
    exact half step. Two such steps reach the objective that three CG steps on
    the bias-augmented system did, and the validation RMSE of the exact solve
    (ML-100K: 0.9075 both; synthetic 5M: 0.8236 vs 0.8237), at a small
    fraction of its time on ML-20M-sized data (``bench/bench_als.py``). The
    default ``solver="auto"`` is exact below ``AUTO_CG_MIN_RATINGS`` ratings
    and CG above.

    Because users are solved last, :meth:`fold_in` of a training user's
    ratings (the same solve on the final item side) returns that user's trained
    ``(w_u, b_u)`` when the exact solver was used. ``loss_history_`` holds J
    after every iteration (``track_loss=True``): the user half step adds up each
    user's part of J while that user's item vectors are still in cache, and the
    items' penalty is an O(n_items k) sum, so tracking costs about 5 % of an
    iteration instead of a second pass over all ratings (float32 dot products
    with CG: J to about 1e-7 relative).

    How the defaults were chosen: by comparing *test* RMSE on the ML-100K
    80/20 split that ``docs/benchmarks.md`` reports (0.914), before the
    validation protocol of :mod:`recommender.engine.tune` existed, so that
    split's figure for the defaults is optimistic. ``alpha = 0.5`` beat both
    ALS-WR's ``alpha = 1`` (best 0.920 at lambda = 0.12) and a constant lambda
    (best 0.920 at lambda = 15), and a lighter bias penalty
    (``lambda_b = 1.0``) helped a little more. The benchmark tables now choose
    ``factors`` and ``regularization`` on a validation split of the training
    part only (``tune.SEARCH_SPACES["explicit_als"]``).
    """

    serving_kind: ClassVar[str | None] = RATING

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    user_bias_: NDArray[np.float32]
    item_bias_: NDArray[np.float32]
    loss_history_: list[float]

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 1.3,
        iterations: int = 15,
        bias_regularization: float | None = 1.0,
        regularization_exponent: float = 0.5,
        solver: str = "auto",
        cg_steps: int = 2,
        init_scale: float = 0.1,
        track_loss: bool = True,
        warm_start_iterations: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.bias_regularization = bias_regularization
        self.regularization_exponent = regularization_exponent
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_scale = init_scale
        self.track_loss = track_loss
        self.warm_start_iterations = warm_start_iterations
        self.random_state = random_state

    def _check_params(self) -> None:
        if int(self.factors) < 1:
            raise ValueError("factors must be >= 1")
        if not float(self.regularization) > 0:
            raise ValueError("regularization must be > 0 (the ridge systems need it)")
        if self.bias_regularization is not None and not float(self.bias_regularization) >= 0:
            raise ValueError("bias_regularization must be >= 0")
        if int(self.iterations) < 0:
            raise ValueError("iterations must be >= 0")
        if self.solver not in (*SOLVERS, "auto"):
            raise ValueError(f"solver must be one of {(*SOLVERS, 'auto')}, got {self.solver!r}")

    def resolved_solver(self, n_ratings: int) -> str:
        """The solver a fit on ``n_ratings`` ratings uses (resolves ``"auto"``)."""
        if self.solver != "auto":
            return str(self.solver)
        return "cg" if n_ratings >= AUTO_CG_MIN_RATINGS else "cholesky"

    def _bias_regularization(self) -> float:
        lam_b = self.regularization if self.bias_regularization is None else self.bias_regularization
        return float(lam_b)

    def fit(self, data: Interactions, init: ExplicitALS | None = None) -> Self:
        """Fit on ``data``; with ``init``, start from its factors.

        ``init`` is a fitted ExplicitALS with the same ``factors`` on the same id
        vocabularies (the holdout fit of a training run, which saw most of the
        same ratings): the alternation then starts next to its answer and runs
        ``warm_start_iterations`` iterations instead of ``iterations``.
        """
        self._init = init
        try:
            return super().fit(data)
        finally:
            self._init = None

    def _fit(self, data: Interactions) -> None:
        self._check_params()
        k = int(self.factors)
        rng = np.random.default_rng(self.random_state)
        mu = float(self.global_mean_)
        iterations = int(self.iterations)
        init = getattr(self, "_init", None)
        if init is not None:
            w, b, v, c = warm_start_factors(init, data, k)
            iterations = min(iterations, int(self.warm_start_iterations))
        else:
            # Items are solved first, so only the user side needs a starting point;
            # item factors are drawn too so CG (warm-started) has one as well.
            w = (rng.standard_normal((data.n_users, k)) * self.init_scale / np.sqrt(k)).astype(np.float32)
            v = (rng.standard_normal((data.n_items, k)) * self.init_scale / np.sqrt(k)).astype(np.float32)
            b = np.zeros(data.n_users, dtype=np.float32)
            c = np.zeros(data.n_items, dtype=np.float32)
        csr, csc = data.csr, data.csc
        solver = self.resolved_solver(data.nnz)
        user_bounds = chunk_bounds(csr.indptr, k, solver=solver)
        item_bounds = chunk_bounds(csc.indptr, k, solver=solver)
        lam, lam_b = float(self.regularization), self._bias_regularization()
        alpha = float(self.regularization_exponent)
        opts: dict[str, Any] = {
            "regularization": lam,
            "bias_regularization": lam_b,
            "exponent": alpha,
            "solver": solver,
            "cg_steps": int(self.cg_steps),
        }
        # J after an iteration = the users' parts, which the user half step
        # computes from the vectors it has just gathered, + the items' penalty.
        user_objective = np.empty(data.n_users, dtype=np.float64) if self.track_loss else None
        item_weight = row_regularization(np.diff(csc.indptr), 1.0, alpha)
        self.loss_history_ = []
        for _ in range(iterations):
            als_half_step(csc.indptr, csc.indices, csc.data, mu, w, b, v, c, bounds=item_bounds, **opts)
            als_half_step(
                csr.indptr,
                csr.indices,
                csr.data,
                mu,
                v,
                c,
                w,
                b,
                bounds=user_bounds,
                row_objective=user_objective,
                **opts,
            )
            if user_objective is not None:
                v64, c64 = v.astype(np.float64), c.astype(np.float64)
                item_penalty = item_weight @ (lam * np.einsum("ik,ik->i", v64, v64) + lam_b * c64**2)
                self.loss_history_.append(float(user_objective.sum() + item_penalty))
        self.user_factors_, self.user_bias_ = w, b
        self.item_factors_, self.item_bias_ = v, c
        norms = np.linalg.norm(v.astype(np.float64), axis=1)
        self.item_unit_ = v.astype(np.float64) / np.where(norms > 0, norms, 1.0)[:, None]

    def loss(self, data: Interactions | None = None) -> float:
        """The regularized objective J on ``data`` (default: the training data)."""
        self._check_fitted()
        data = self.data_ if data is None else data
        if data.n_users != self.data_.n_users or data.n_items != self.data_.n_items:
            raise ValueError("data must share the training vocabularies (use Interactions.select)")
        return explicit_als_loss(
            data,
            self.global_mean_,
            self.user_factors_,
            self.user_bias_,
            self.item_factors_,
            self.item_bias_,
            float(self.regularization),
            self._bias_regularization(),
            float(self.regularization_exponent),
        )

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        dots = np.einsum(
            "nk,nk->n",
            self.user_factors_[users].astype(np.float64),
            self.item_factors_[items].astype(np.float64),
        )
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items] + dots

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.score_vector(self.user_factors_[user], float(self.user_bias_[user]))

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        # Cosine of item vectors; an all-zero vector (item never rated) scores 0.
        return self.item_unit_ @ self.item_unit_[item]

    def export_tables(self) -> FactorTables:
        return self._factor_tables()

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """One exact user half step with the stored items fixed.

        Runs the training kernel (:func:`als_half_step`, exact Cholesky) on a
        one-row matrix, on the stored float32 factors. Because users are solved
        last in :meth:`fit`, a training user folded in from the stored tables
        gets back their trained ``(w_u, b_u)`` bit for bit (models fitted with
        ``solver="cg"`` get the exact solve that their CG steps approach).
        """
        self._check_params()
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float32).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        # Training rows hold sorted item indices; sort so the float32 Gram is
        # summed in the same order and a training user is reproduced exactly.
        order = np.argsort(items, kind="stable")
        k = tables.n_factors
        w = np.zeros((1, k), dtype=np.float32)
        b = np.zeros(1, dtype=np.float32)
        # int32 indices, as the training CSR has, so numba reuses the compiled kernel.
        als_half_step(
            np.array([0, items.size], dtype=np.int32),
            items[order].astype(np.int32),
            r[order],
            tables.global_mean,
            np.ascontiguousarray(tables.item_vectors, dtype=np.float32),
            np.ascontiguousarray(tables.item_bias, dtype=np.float32),
            w,
            b,
            regularization=float(self.regularization),
            bias_regularization=self._bias_regularization(),
            exponent=float(self.regularization_exponent),
            solver="cholesky",
        )
        return w[0].astype(np.float64), float(b[0])
