"""Bayesian matrix factorization with SVD++-style implicit feedback on both sides, by Gibbs sampling.

The model of Rendle's Bayesian factorization machines with "flipped" implicit
features (Rendle, "Scaling factorization machines to relational data", VLDB
2013; Koren, "Factorization meets the neighborhood", KDD 2008, for SVD++):
a user's vector is shifted by the items they rated, an item's vector by the
users who rated it, both in the training data only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from .base import Recommender
from .bpmf import sample_conditional_rows, sample_normal_wishart
from .interactions import Interactions
from .tables import RATING, FactorTables

__all__ = [
    "BayesianSVDpp",
    "ServedBayesianSVDpp",
    "fold_in_per_sample",
    "implicit_conditional_reference",
    "residual_caches",
    "sample_implicit_rows",
]

Float = NDArray[np.float64]
Index = NDArray[np.integer[Any]]

#: Gamma(shape, rate) hyperprior of the implicit blocks' precisions and of the
#: noise precision alpha (libFM's alpha_0 = beta_0 = 1: vague, proper).
GAMMA_SHAPE0 = 1.0
GAMMA_RATE0 = 1.0


@njit(cache=True, parallel=True, nogil=True)
def residual_caches(
    indptr: Index, indices: Index, residuals: Float, other: Float, alpha: float, gram: Float, lin: Float
) -> None:
    """Per row u (in place): ``gram[u] = alpha sum_i o_i o_i^T`` and ``lin[u] = alpha sum_i o_i e_ui``
    over the row's observed columns i, with ``o_i = other[i]`` and ``e_ui = residuals`` (CSR order)."""
    n_rows, k = lin.shape
    for u in prange(n_rows):
        g = np.zeros((k, k))
        h = np.zeros(k)
        for jj in range(indptr[u], indptr[u + 1]):
            i = indices[jj]
            e = residuals[jj]
            for a in range(k):
                oa = alpha * other[i, a]
                h[a] += oa * e
                for c in range(k):
                    g[a, c] += oa * other[i, c]
        gram[u] = g
        lin[u] = h


@njit(cache=True, nogil=True)
def sample_implicit_rows(
    owner_ptr: Index,
    owner_idx: Index,
    weights: Float,
    gram: Float,
    lin: Float,
    prior_precision: Float,
    implicit: Float,
    effective: Float,
    noise: Float,
) -> None:
    """One block-Gibbs pass over the implicit vectors y_j, in place (sequential in j).

    Row u's effective vector is ``U_u = p_u + n_u sum_{j in N(u)} y_j`` with
    ``n_u = weights[u] = |N(u)|^-1/2``; ``owner_ptr/owner_idx`` list, for each
    j, the rows u with j in N(u). With the other side's vectors I_i fixed, row
    u's caches are ``G_u = alpha sum_{i in R(u)} I_i I_i^T`` and
    ``h_u = alpha sum_i I_i e_ui`` (e_ui the current residual). Taking y_j out
    of the residual adds ``n_u I_i . y_j`` back, so y_j's conditional is Gaussian::

        P_j = diag(lambda) + sum_{u: j in N(u)} n_u^2 G_u                 (precision)
        m_j = P_j^-1 sum_u n_u (h_u + n_u G_u y_j)                          (mean)
        y_j' = m_j + L_j^-T z_j,   P_j = L_j L_j^T,  z_j = noise[j]

    after which the state follows the draw (Delta = y_j' - y_j): ``U_u += n_u Delta``,
    which moves the residuals so that ``h_u`` becomes ``h_u - n_u G_u Delta``.
    Rather than updating h_u (a second k^2 product per rating), the kernel
    keeps ``h_u`` at its value on entry and the shift ``d_u`` of U_u since
    then, so the current cache is ``h_u - G_u d_u`` and the mean needs one
    product: ``sum_u n_u h_u + sum_u n_u G_u (n_u y_j - d_u)``. ``lin`` is
    therefore not current on return. O(|N(j)| k^2 + k^3) per j, O(nnz k^2)
    per pass.
    """
    n_implicit, k = implicit.shape
    shift = np.zeros(effective.shape)
    p = np.empty((k, k))
    h = np.empty(k)
    low = np.zeros((k, k))
    y = np.empty(k)
    x = np.empty(k)
    for j in range(n_implicit):
        for a in range(k):
            h[a] = 0.0
            for c in range(k):
                p[a, c] = 0.0
            p[a, a] = prior_precision[a]
        for jj in range(owner_ptr[j], owner_ptr[j + 1]):
            u = owner_idx[jj]
            w = weights[u]
            w2 = w * w
            for a in range(k):
                s = 0.0
                for c in range(k):
                    g = gram[u, a, c]
                    s += g * (w * implicit[j, c] - shift[u, c])
                    if c <= a:  # the Cholesky below reads the lower triangle only
                        p[a, c] += w2 * g
                h[a] += w * (lin[u, a] + s)
        # Cholesky P = L L^T (lower triangle).
        for a in range(k):
            for c in range(a + 1):
                s = p[a, c]
                for t in range(c):
                    s -= low[a, t] * low[c, t]
                if a == c:
                    low[a, a] = np.sqrt(s)
                else:
                    low[a, c] = s / low[c, c]
        # x = L^-T (L^-1 h + z): mean P^-1 h plus N(0, P^-1) noise.
        for a in range(k):
            s = h[a]
            for t in range(a):
                s -= low[a, t] * y[t]
            y[a] = s / low[a, a]
        for a in range(k):
            y[a] += noise[j, a]
        for a in range(k - 1, -1, -1):
            s = y[a]
            for t in range(a + 1, k):
                s -= low[t, a] * x[t]
            x[a] = s / low[a, a]
        for a in range(k):
            x[a] -= implicit[j, a]  # x is now Delta
            implicit[j, a] += x[a]
        for jj in range(owner_ptr[j], owner_ptr[j + 1]):
            u = owner_idx[jj]
            w = weights[u]
            for a in range(k):
                effective[u, a] += w * x[a]
                shift[u, a] += w * x[a]


def implicit_conditional_reference(
    rows: Index,
    cols: Index,
    residuals: Float,
    implicit_sets: sp.csr_matrix,
    weights: Float,
    other: Float,
    prior_precision: Float,
    alpha: float,
    j: int,
    current: Float,
) -> tuple[Float, Float]:
    """``(mean, precision)`` of y_j's conditional by brute-force Bayesian least squares.

    ``residuals`` are r_ui - prediction for every rating (rows, cols) in the
    current state (y_j = ``current`` included). Every rating whose row u has j
    in N(u) (``implicit_sets[u, j] != 0``) sees y_j through ``n_u I_i . y_j``,
    so with design rows ``x = n_u I_i`` and targets ``t = e_ui + x . y_j``::

        P = diag(lambda) + alpha X^T X,   m = P^-1 alpha X^T t
    """
    member = np.asarray(implicit_sets[:, [j]].toarray()).ravel() != 0
    sel = member[rows]
    x = weights[rows[sel], None] * other[cols[sel]]
    t = residuals[sel] + x @ current
    precision = np.diag(prior_precision) + alpha * x.T @ x
    mean = np.linalg.solve(precision, alpha * x.T @ t)
    return mean, precision


def _sample_gamma_precisions(x: Float, rng: np.random.Generator) -> Float:
    """Per-column precision lambda_f ~ Gamma(a0 + N/2, rate b0 + sum_n x_nf^2 / 2) (zero-mean prior)."""
    shape = GAMMA_SHAPE0 + x.shape[0] / 2.0
    rate = GAMMA_RATE0 + 0.5 * np.einsum("nf,nf->f", x, x)
    return rng.gamma(shape, 1.0 / rate)


class BayesianSVDpp(Recommender):
    """Bayesian biased MF with SVD++ implicit feedback on the user and/or item side, by Gibbs sampling.

    Model (Rendle's Bayesian FM with "flipped" implicit features, VLDB 2013;
    SVD++: Koren, KDD 2008)::

        r_ui ~ N(mu + b_u + c_i + U_u . I_i, 1 / alpha)                  (mu = training mean)
        U_u = p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j     (N(u): items u rated in training)
        I_i = q_i + |N(i)|^-1/2 sum_{v in N(i)} z_v     (N(i): users who rated i in training)
        [p_u; b_u] ~ N(mu_U, Lambda_U^-1),  [q_i; c_i] ~ N(mu_V, Lambda_V^-1)   (Normal-Wishart, as BPMF)
        y_jf ~ N(0, 1/lambda_yf),  z_vf ~ N(0, 1/lambda_zf),  lambda ~ Gamma(1, 1)
        alpha ~ Gamma(1, 1) when ``alpha=None`` (else fixed)

    ``implicit_user`` / ``implicit_item`` switch the y / z blocks on; with
    both off and a fixed alpha this is :class:`~recommender.engine.bpmf.BPMF`
    with biases. The defaults are what validation chose on ML-100K (a split
    of the 80/20 training part, see docs/benchmarks.md): sampling alpha took
    rank-10 BPMF from 0.905 to 0.892 validation RMSE, the item-side term to
    0.886, the user-side term added nothing (0.892 alone, 0.886 with both)
    at 1.5x the sweep cost, and ranks 6, 10 and 20 (item side only) were within 0.0003.

    One sweep: draw (mu_U, Lambda_U); every [p_u; b_u] from its Gaussian
    conditional (S&M 2008 eq. 12-13 with design rows [I_i; 1] and targets
    r_ui - mu - c_i - n_u Y_u . I_i, :func:`~recommender.engine.bpmf.sample_conditional_rows`);
    lambda_y; every y_j by block Gibbs (:func:`sample_implicit_rows`); then
    the item side symmetrically (z_v with the users' U_u fixed); then alpha
    from the residuals. Each block is an exact conditional draw, so this is a
    valid Gibbs sampler; one sweep costs O(nnz k^2 + (n + m) k^3).

    Predictions average over the ``samples`` sweeps after ``burn_in``, as in
    BPMF: ``r̂_ui = mu + mean_s b_u + mean_s c_i + (1/S) sum_s U_u^(s) . I_i^(s)``,
    with the effective vectors U^(s), I^(s) kept in ``user_samples_`` /
    ``item_samples_`` (float32, users x S x k) and each sweep's user prior
    (mu_U, Lambda_U) in ``user_prior_means_`` / ``user_prior_precisions_``
    (what :class:`ServedBayesianSVDpp` needs to fold users in).
    """

    user_samples_: NDArray[np.float32]
    item_samples_: NDArray[np.float32]
    user_factors_: Float
    item_factors_: Float
    user_bias_: Float
    item_bias_: Float
    train_rmse_history_: list[float]
    alpha_history_: list[float]
    user_prior_means_: Float
    user_prior_precisions_: Float

    def __init__(
        self,
        *,
        factors: int = 10,
        burn_in: int = 50,
        samples: int = 150,
        implicit_user: bool = False,
        implicit_item: bool = True,
        alpha: float | None = None,
        beta0: float = 2.0,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.burn_in = burn_in
        self.samples = samples
        self.implicit_user = implicit_user
        self.implicit_item = implicit_item
        self.alpha = alpha
        self.beta0 = beta0
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        if self.factors < 1 or self.samples < 1 or self.burn_in < 0:
            raise ValueError("factors and samples must be >= 1 and burn_in >= 0")
        if self.alpha is not None and self.alpha <= 0:
            raise ValueError("alpha must be positive (or None to sample it)")
        k = self.factors
        n, m = data.n_users, data.n_items
        mu = self.global_mean_
        rng = np.random.default_rng(self.random_state)
        rows, cols, r32 = data.to_coo_arrays()  # CSR order
        r = r32.astype(np.float64)
        pos = data.csr.copy()
        pos.data = np.arange(data.nnz, dtype=np.float64)
        pos = pos.tocsc()
        to_csc = pos.data.astype(np.int64)
        u_ptr, u_idx = data.csr.indptr.astype(np.int64), data.csr.indices.astype(np.int64)
        i_ptr, i_idx = pos.indptr.astype(np.int64), pos.indices.astype(np.int64)
        rows_csc, cols_csc, r_csc = rows[to_csc], cols[to_csc], r[to_csc]
        # Implicit sets are the training ratings themselves: N(u) = R(u), N(i) = R(i).
        rated = sp.csr_matrix((np.ones(data.nnz), (rows, cols)), shape=(n, m))
        rated_t = rated.T.tocsr()
        n_u = 1.0 / np.sqrt(np.maximum(np.diff(u_ptr), 1)).astype(np.float64)
        n_i = 1.0 / np.sqrt(np.maximum(np.diff(i_ptr), 1)).astype(np.float64)

        d = k + 1
        x_user = rng.normal(0.0, 0.1, size=(n, d))  # [p_u, b_u]
        x_item = rng.normal(0.0, 0.1, size=(m, d))  # [q_i, c_i]
        x_user[:, k] = self.baseline_user_
        x_item[:, k] = self.baseline_item_
        y, z = np.zeros((m, k)), np.zeros((n, k))
        y_part, z_part = np.zeros((n, k)), np.zeros((m, k))  # n_u sum y_j, n_i sum z_v
        alpha = 2.0 if self.alpha is None else float(self.alpha)
        ones_u, ones_i = np.ones((n, 1)), np.ones((m, 1))
        gram_u, lin_u = np.empty((n, k, k)), np.empty((n, k))
        gram_i, lin_i = np.empty((m, k, k)), np.empty((m, k))

        u_samples = np.empty((n, self.samples, k), dtype=np.float32)
        prior_means, prior_precisions = np.empty((self.samples, d)), np.empty((self.samples, d, d))
        v_samples = np.empty((m, self.samples, k), dtype=np.float32)
        bias_u_sum, bias_i_sum = np.zeros(n), np.zeros(m)
        pred_sum = np.zeros(data.nnz)
        history: list[float] = []
        alphas: list[float] = []
        for sweep in range(self.burn_in + self.samples):
            # ---- user side: [p_u, b_u] against [I_i, 1], target r - mu - c_i - n_u Y_u . I_i
            item_eff = x_item[:, :k] + z_part
            targets = r - mu - x_item[cols, k]
            if self.implicit_user:
                targets -= np.einsum("nk,nk->n", y_part[rows], item_eff[cols])
            mu_u, lam_u = sample_normal_wishart(x_user, rng, beta0=self.beta0)
            sample_conditional_rows(
                u_ptr,
                u_idx,
                targets,
                np.hstack([item_eff, ones_i]),
                lam_u,
                mu_u,
                alpha,
                rng.standard_normal((n, d)),
                x_user,
            )
            user_eff = x_user[:, :k] + y_part
            if self.implicit_user:
                resid = (
                    r
                    - mu
                    - x_user[rows, k]
                    - x_item[cols, k]
                    - np.einsum("nk,nk->n", user_eff[rows], item_eff[cols])
                )
                residual_caches(u_ptr, u_idx, resid, item_eff, alpha, gram_u, lin_u)
                lam_y = _sample_gamma_precisions(y, rng)
                sample_implicit_rows(
                    i_ptr, i_idx, n_u, gram_u, lin_u, lam_y, y, user_eff, rng.standard_normal((m, k))
                )
                y_part = n_u[:, None] * (rated @ y)
                user_eff = x_user[:, :k] + y_part  # = the kernel's in-place update, without drift
            # ---- item side: [q_i, c_i] against [U_u, 1], target r - mu - b_u - n_i Z_i . U_u
            targets = r_csc - mu - x_user[rows_csc, k]
            if self.implicit_item:
                targets -= np.einsum("nk,nk->n", z_part[cols_csc], user_eff[rows_csc])
            mu_v, lam_v = sample_normal_wishart(x_item, rng, beta0=self.beta0)
            sample_conditional_rows(
                i_ptr,
                i_idx,
                targets,
                np.hstack([user_eff, ones_u]),
                lam_v,
                mu_v,
                alpha,
                rng.standard_normal((m, d)),
                x_item,
            )
            item_eff = x_item[:, :k] + z_part
            if self.implicit_item:
                resid_csc = (
                    r_csc
                    - mu
                    - x_user[rows_csc, k]
                    - x_item[cols_csc, k]
                    - np.einsum("nk,nk->n", user_eff[rows_csc], item_eff[cols_csc])
                )
                residual_caches(i_ptr, i_idx, resid_csc, user_eff, alpha, gram_i, lin_i)
                lam_z = _sample_gamma_precisions(z, rng)
                sample_implicit_rows(
                    u_ptr, u_idx, n_i, gram_i, lin_i, lam_z, z, item_eff, rng.standard_normal((n, k))
                )
                z_part = n_i[:, None] * (rated_t @ z)
                item_eff = x_item[:, :k] + z_part
            pred = x_user[rows, k] + x_item[cols, k] + np.einsum("nk,nk->n", user_eff[rows], item_eff[cols])
            if self.alpha is None:
                sse = float(np.sum((r - mu - pred) ** 2))
                alpha = float(rng.gamma(GAMMA_SHAPE0 + data.nnz / 2.0, 1.0 / (GAMMA_RATE0 + sse / 2.0)))
            alphas.append(alpha)
            s = sweep - self.burn_in
            if s >= 0:
                u_samples[:, s] = user_eff
                prior_means[s], prior_precisions[s] = mu_u, lam_u
                v_samples[:, s] = item_eff
                bias_u_sum += x_user[:, k]
                bias_i_sum += x_item[:, k]
                pred_sum += pred
                history.append(float(np.sqrt(np.mean((r - mu - pred_sum / (s + 1)) ** 2))))
        self.user_samples_, self.item_samples_ = u_samples, v_samples
        self.user_factors_ = u_samples.mean(axis=1, dtype=np.float64)
        self.item_factors_ = v_samples.mean(axis=1, dtype=np.float64)
        self.user_bias_, self.item_bias_ = bias_u_sum / self.samples, bias_i_sum / self.samples
        self.train_rmse_history_ = history
        self.alpha_history_ = alphas
        self.user_prior_means_, self.user_prior_precisions_ = prior_means, prior_precisions

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> Float:
        dots = np.einsum("nsk,nsk->n", self.user_samples_[users], self.item_samples_[items], dtype=np.float64)
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items] + dots / self.samples

    def _score_items(self, user: int) -> Float:
        flat_v = self.item_samples_.reshape(self.data_.n_items, -1)
        dots = (flat_v @ self.user_samples_[user].reshape(-1)).astype(np.float64)
        return self.global_mean_ + self.user_bias_[user] + self.item_bias_ + dots / self.samples

    def _similar_scores(self, item: int) -> Float:
        # Cosine of the concatenated samples: invariant to per-sample rotations (as BPMF).
        flat_v = self.item_samples_.reshape(self.data_.n_items, -1).astype(np.float64)
        norms = np.linalg.norm(flat_v, axis=1)
        return (flat_v @ flat_v[item]) / np.maximum(norms * norms[item], 1e-12)


@njit(cache=True, nogil=True)
def _fold_in_kernel(
    item_vectors: NDArray[np.float32], targets: Float, n_samples: int, regularization: float
) -> Float:
    n, width = item_vectors.shape
    d = width // n_samples
    scale = np.sqrt(n_samples)
    out = np.empty(width)
    gram = np.empty((d, d))
    rhs = np.empty(d)
    low = np.zeros((d, d))
    y = np.empty(d)
    delta = np.empty(d)
    for s in range(n_samples):
        base = s * d
        for a in range(d):
            rhs[a] = 0.0
            for c in range(a + 1):
                gram[a, c] = 0.0
            gram[a, a] = regularization
        for i in range(n):
            t = targets[i]
            for a in range(d):
                xa = scale * item_vectors[i, base + a]
                rhs[a] += xa * t
                for c in range(a + 1):
                    gram[a, c] += xa * (scale * item_vectors[i, base + c])
        # Cholesky of the lower triangle, then forward and back substitution.
        for a in range(d):
            for c in range(a + 1):
                acc = gram[a, c]
                for q in range(c):
                    acc -= low[a, q] * low[c, q]
                if a == c:
                    low[a, a] = np.sqrt(acc)
                else:
                    low[a, c] = acc / low[c, c]
        for a in range(d):
            acc = rhs[a]
            for q in range(a):
                acc -= low[a, q] * y[q]
            y[a] = acc / low[a, a]
        for a in range(d - 1, -1, -1):
            acc = y[a]
            for q in range(a + 1, d):
                acc -= low[q, a] * delta[q]
            delta[a] = acc / low[a, a]
        for a in range(d):
            out[base + a] = delta[a] / scale
    return out


def fold_in_per_sample(
    item_vectors: NDArray[np.floating[Any]], targets: Float, n_samples: int, regularization: float
) -> Float:
    """A user's served vector from S concatenated (whitened) posterior item samples.

    ``item_vectors`` are the rated items' stored rows ``[x~_i^(1) ... x~_i^(S)] / sqrt(S)``
    (width S d) and ``targets`` their ``r_ui - stored item bias``. For every
    sample s, one ridge solve against that sample's block::

        delta_s = (X~_s^T X~_s + lambda I)^-1 X~_s^T t

    and the served vector is ``[delta_1 ... delta_S] / sqrt(S)``, so its dot
    product with a stored item row is ``(1/S) sum_s delta_s . x~_i^(s)``, the
    average over samples. One numba pass, O(n S d^2 + S d^3), no BLAS threads
    (a web request must not contend for cores); the stored float32 rows are
    read as they are. Rows are used in the given order; callers sort them for
    a canonical result.
    """
    width = item_vectors.shape[1]
    if n_samples < 1 or width % n_samples:
        raise ValueError(f"stored item vectors have width {width}, not a multiple of {n_samples} samples")
    rows = np.ascontiguousarray(item_vectors)
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    return _fold_in_kernel(
        rows, np.ascontiguousarray(targets, dtype=np.float64), n_samples, float(regularization)
    )


class ServedBayesianSVDpp(BayesianSVDpp):
    """:class:`BayesianSVDpp` as the site serves it: stored posterior item samples, users folded in per sample.

    In sweep s the sampler draws a user's ``x_u = [p_u; b_u]`` from the prior
    ``N(mu^(s), Lambda^(s)^-1)`` and the likelihood ``r_ui - mu - c_i^(s) ~
    N(x_u . z_i^(s), 1/alpha)`` with ``z_i = [I_i; 1]`` (S&M 2008 eq. 12-13).
    Writing ``x_u = mu^(s) + L_s^-T delta`` with ``Lambda^(s) = L_s L_s^T``
    makes the prior of delta ``N(0, I)`` and the score
    ``mu^(s) . z_i^(s) + delta . x~_i^(s)`` with whitened ``x~_i^(s) = L_s^-1 z_i^(s)``.
    The tables store, for ``serving_samples`` equally spaced kept sweeps::

        item_vector_i = [x~_i^(s_1) ... x~_i^(s_S)] / sqrt(S)                       (width S (k + 1))
        item_bias_i   = mean_{all kept s} c_i^(s) + (1/S) sum_{stored s} mu^(s) . z_i^(s)

    and :func:`fold_in_per_sample` gives each user the conditional mean of
    delta in every stored sample (ridge with ``serving_regularization``
    standing for 1/alpha), so ``item_bias_i + w_u . item_vector_i`` is the
    posterior average of the user's conditional-mean score, up to one
    approximation: the fold-in's targets subtract the prior-mean score
    averaged over samples (one stored bias per item) where the exact
    per-sample conditional would subtract ``mu^(s) . z_i^(s)`` in sample s. The user bias is
    inside the vector, so the stored user bias is 0; a user with no ratings
    gets ``delta = 0``, the prior-mean score. What serving drops is the
    user-side implicit term (the tables have no place for y; the user's
    ratings stand in for it) and the sampler's own user draws.

    The fit ends with this fold-in for every training user on the stored
    float32 tables, so the web process (item tables + these hyperparameters,
    no training data) reproduces the trained users bit for bit. Every
    prediction and recommendation of this class goes through the tables;
    :meth:`posterior_predict_indices` gives the full posterior average.
    """

    serving_kind: ClassVar[str | None] = RATING

    served_user_vectors_: NDArray[np.float32]
    served_item_vectors_: NDArray[np.float32]
    served_item_bias_: NDArray[np.float32]

    def __init__(
        self,
        *,
        factors: int = 10,
        burn_in: int = 50,
        samples: int = 150,
        implicit_user: bool = False,
        implicit_item: bool = True,
        alpha: float | None = None,
        beta0: float = 2.0,
        serving_samples: int = 80,
        serving_regularization: float = 1.5,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            burn_in=burn_in,
            samples=samples,
            implicit_user=implicit_user,
            implicit_item=implicit_item,
            alpha=alpha,
            beta0=beta0,
            random_state=random_state,
        )
        self.serving_samples = serving_samples
        self.serving_regularization = serving_regularization

    def _fit(self, data: Interactions) -> None:
        if self.serving_samples < 1 or self.serving_regularization <= 0:
            raise ValueError("serving_samples must be >= 1 and serving_regularization > 0")
        super()._fit(data)
        self._build_served_tables(data)

    def _build_served_tables(self, data: Interactions) -> None:
        """The whitened item samples and every training user's fold-in (the last step of the fit)."""
        k = self.factors
        kept = np.unique(
            np.linspace(0, self.samples - 1, min(self.serving_samples, self.samples)).round().astype(int)
        )
        m = data.n_items
        blocks = np.empty((m, kept.size, k + 1))
        prior_scores = np.zeros(m)
        for b, s in enumerate(kept):
            z = np.hstack([self.item_samples_[:, s, :].astype(np.float64), np.ones((m, 1))])
            low = np.linalg.cholesky(self.user_prior_precisions_[s])
            blocks[:, b, :] = np.linalg.solve(low, z.T).T  # x~ = L^-1 z
            prior_scores += z @ self.user_prior_means_[s]
        self.served_item_vectors_ = (blocks.reshape(m, -1) / np.sqrt(kept.size)).astype(np.float32)
        self.served_item_bias_ = (self.item_bias_ + prior_scores / kept.size).astype(np.float32)
        self.served_user_vectors_ = np.zeros(
            (data.n_users, self.served_item_vectors_.shape[1]), dtype=np.float32
        )
        stored = self.export_tables().as_stored()
        csr = data.csr
        for user in range(data.n_users):
            start, end = csr.indptr[user], csr.indptr[user + 1]
            vector, _ = self.fold_in_from_tables(stored, csr.indices[start:end], csr.data[start:end])
            self.served_user_vectors_[user] = vector
        vars(self).pop("_tables", None)  # the serving tables are rebuilt from these arrays

    def export_tables(self) -> FactorTables:
        return self._factor_tables(
            item_vectors=self.served_item_vectors_,
            item_bias=self.served_item_bias_,
            user_vectors=self.served_user_vectors_,
            user_bias=np.zeros(self.served_user_vectors_.shape[0], dtype=np.float32),
        )

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """``(vector, 0.0)`` by :func:`fold_in_per_sample` on the stored tables.

        The number of stored samples is the table width over ``factors + 1``.
        Ratings are sorted by item position first, so the result does not
        depend on their order and a training user gets their stored vector bit for bit.
        """
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        width = tables.n_factors
        if items.size == 0:
            return np.zeros(width), 0.0
        order = np.argsort(items, kind="stable")
        items, r = items[order], r[order]
        targets = r - tables.global_mean - np.asarray(tables.item_bias[items], dtype=np.float64)
        vector = fold_in_per_sample(
            tables.item_vectors[items], targets, width // (self.factors + 1), self.serving_regularization
        )
        return vector, 0.0

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> Float:
        tables = self.serving_tables()
        assert isinstance(tables, FactorTables)
        dots = np.einsum(
            "nk,nk->n",
            np.asarray(tables.item_vectors[items], dtype=np.float64),
            np.asarray(tables.user_vectors[users], dtype=np.float64),
        )
        return tables.global_mean + np.asarray(tables.item_bias[items], dtype=np.float64) + dots

    def _score_items(self, user: int) -> Float:
        tables = self.serving_tables()
        assert isinstance(tables, FactorTables)
        return tables.scores(tables.user_vectors[user], 0.0)

    def posterior_predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> Float:
        """The sampler's full posterior-average prediction (not served), for comparison."""
        return BayesianSVDpp._predict_indices(self, users, items)
