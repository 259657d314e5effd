"""Bayesian probabilistic matrix factorization by Gibbs sampling.

Salakhutdinov & Mnih, "Bayesian Probabilistic Matrix Factorization using
Markov Chain Monte Carlo", ICML 2008.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray
from scipy.stats import wishart

from .base import Recommender
from .interactions import Interactions

__all__ = [
    "BPMF",
    "sample_conditional_rows",
    "sample_conditional_rows_reference",
    "sample_normal_wishart",
]

Float = NDArray[np.float64]


@njit(cache=True, parallel=True, nogil=True)
def sample_conditional_rows(
    indptr: NDArray[np.integer[Any]],
    indices: NDArray[np.integer[Any]],
    targets: Float,
    other: Float,
    prior_precision: Float,
    prior_mean: Float,
    alpha: float,
    noise: Float,
    out: Float,
) -> None:
    """Draw every row factor from its Gaussian conditional (S&M 2008 eq. 12-13), in place.

    For row u with observed columns I_u (a user and its items, or an item and
    its users), prior N(mu, Lambda^-1) and observation precision alpha::

        P_u   = Lambda + alpha sum_{i in I_u} v_i v_i^T          (precision)
        m_u   = P_u^-1 (alpha sum_{i in I_u} r_ui v_i + Lambda mu)   (mean)
        x_u   = m_u + L_u^-T z_u,   P_u = L_u L_u^T,  z_u = noise[u] ~ N(0, I)

    so x_u ~ N(m_u, P_u^-1). Computed as L_u^-T (L_u^-1 b_u + z_u): one
    Cholesky, one forward and one back substitution per row, O(|I_u| k^2 + k^3).
    The noise is drawn by the caller from the model's seeded generator, so the
    result does not depend on thread scheduling.
    """
    n_rows, k = out.shape
    lam_mu = prior_precision @ prior_mean
    for u in prange(n_rows):
        p = prior_precision.copy()
        b = lam_mu.copy()
        for jj in range(indptr[u], indptr[u + 1]):
            i = indices[jj]
            r = targets[jj]
            for a in range(k):
                va = alpha * other[i, a]
                b[a] += va * r
                for c in range(a + 1):
                    p[a, c] += va * other[i, c]
        # In-place Cholesky of the lower triangle: P = L L^T.
        low = np.zeros((k, k))
        for a in range(k):
            for c in range(a + 1):
                s = p[a, c]
                for t in range(c):
                    s -= low[a, t] * low[c, t]
                if a == c:
                    low[a, a] = np.sqrt(s)
                else:
                    low[a, c] = s / low[c, c]
        # y = L^-1 b + z (forward substitution), then x = L^-T y (back substitution).
        y = np.empty(k)
        for a in range(k):
            s = b[a]
            for t in range(a):
                s -= low[a, t] * y[t]
            y[a] = s / low[a, a]
        for a in range(k):
            y[a] += noise[u, a]
        for a in range(k - 1, -1, -1):
            s = y[a]
            for t in range(a + 1, k):
                s -= low[t, a] * out[u, t]
            out[u, a] = s / low[a, a]


def sample_conditional_rows_reference(
    indptr: NDArray[np.integer[Any]],
    indices: NDArray[np.integer[Any]],
    targets: Float,
    other: Float,
    prior_precision: Float,
    prior_mean: Float,
    alpha: float,
    noise: Float,
) -> tuple[Float, Float, Float]:
    """Textbook per-row version of :func:`sample_conditional_rows`.

    Returns ``(samples, means, precisions)`` computed with dense numpy linear
    algebra straight from S&M 2008 eq. 12-13.
    """
    n_rows, k = noise.shape
    samples, means = np.empty((n_rows, k)), np.empty((n_rows, k))
    precisions = np.empty((n_rows, k, k))
    for u in range(n_rows):
        cols = indices[indptr[u] : indptr[u + 1]]
        v = other[cols]
        r = targets[indptr[u] : indptr[u + 1]]
        p = prior_precision + alpha * v.T @ v
        m = np.linalg.solve(p, alpha * v.T @ r + prior_precision @ prior_mean)
        chol = np.linalg.cholesky(p)
        samples[u] = m + np.linalg.solve(chol.T, noise[u])
        means[u], precisions[u] = m, p
    return samples, means, precisions


def sample_normal_wishart(
    x: Float,
    rng: np.random.Generator,
    *,
    mu0: Float | None = None,
    beta0: float = 2.0,
    nu0: float | None = None,
    w0: Float | None = None,
) -> tuple[Float, Float]:
    """Draw (mu, Lambda) from the Normal-Wishart posterior given the rows of ``x`` (S&M 2008 eq. 14).

    With N rows, mean x̄ and S = (1/N) sum (x_n - x̄)(x_n - x̄)^T::

        beta* = beta0 + N,  nu* = nu0 + N,  mu* = (beta0 mu0 + N x̄) / beta*
        W*^-1 = W0^-1 + N S + beta0 N / beta* (mu0 - x̄)(mu0 - x̄)^T
        Lambda ~ Wishart(W*, nu*),  mu ~ N(mu*, (beta* Lambda)^-1)

    Defaults are the paper's: mu0 = 0, nu0 = k, W0 = I.
    """
    n, k = x.shape
    mu0 = np.zeros(k) if mu0 is None else mu0
    nu0 = float(k) if nu0 is None else nu0
    w0_inv = np.eye(k) if w0 is None else np.linalg.inv(w0)
    xbar = x.mean(axis=0)
    centered = x - xbar
    beta_n = beta0 + n
    mu_n = (beta0 * mu0 + n * xbar) / beta_n
    d = mu0 - xbar
    w_n_inv = w0_inv + centered.T @ centered + (beta0 * n / beta_n) * np.outer(d, d)
    w_n = np.linalg.inv(w_n_inv)
    w_n = (w_n + w_n.T) / 2.0  # inverse of a symmetric matrix, symmetric up to rounding
    lam = np.atleast_2d(wishart.rvs(df=nu0 + n, scale=w_n, random_state=rng))
    chol = np.linalg.cholesky(beta_n * lam)
    mu = mu_n + np.linalg.solve(chol.T, rng.standard_normal(k))
    return mu, lam


class BPMF(Recommender):
    """Bayesian PMF with user/item bias terms, by Gibbs sampling.

    Salakhutdinov & Mnih, "Bayesian Probabilistic Matrix Factorization using
    Markov Chain Monte Carlo", ICML 2008, with biases inside the Bayesian
    model (as in Rendle's MCMC for factorization machines, "Factorization
    machines with libFM", ACM TIST 2012)::

        r_ui ~ N(mu + b_u + c_i + u_u . v_i, 1 / alpha)            (mu = training mean, fixed)
        x_u = [u_u; b_u] ~ N(mu_U, Lambda_U^-1),   y_i = [v_i; c_i] ~ N(mu_V, Lambda_V^-1)
        (mu_U, Lambda_U), (mu_V, Lambda_V) ~ Normal-Wishart(mu0=0, beta0, nu0=d, W0=I_d),  d = k + 1

    Appending the bias to the latent vector keeps every conditional the
    paper's: the user conditional of x_u is S&M eq. 12-13 with item design
    rows z_i = [v_i; 1] and targets r_ui - mu - c_i (items symmetrically), so
    one kernel, :func:`sample_conditional_rows`, samples factors and biases
    jointly. With ``sample_biases=False`` the biases are the base class's
    fixed regularized baseline and the factors (d = k) model r - mu - b_u - b_i,
    exactly the paper's model on the baseline residual.

    Each Gibbs sweep draws the user hyperparameters (:func:`sample_normal_wishart`),
    all user rows from their conditionals (one numba kernel over all users,
    noise drawn from the seeded generator), then the same for items. The
    prediction is the Monte Carlo posterior mean over the ``samples`` sweeps
    after ``burn_in``::

        r̂_ui = mu + mean_s(b_u^(s)) + mean_s(c_i^(s)) + (1/S) sum_s u_u^(s) . v_i^(s)

    Storage choice: every post-burn-in factor sample is kept in float32
    (``user_samples_`` users x samples x k, likewise ``item_samples_``;
    (n + m) x S x k x 4 bytes, e.g. 2625 x 150 x 20 x 4 = 32 MB on ML-100K),
    so any pair can be predicted after fitting and memory grows linearly in
    users + items (a dense running mean of predictions would be users x items).
    Biases enter linearly, so only their posterior means (``user_bias_``,
    ``item_bias_``) are kept. ``similar_items`` is the cosine of the
    concatenated item samples, ``sum_s v_i^(s) . v_j^(s)`` normalized, which
    is invariant to per-sample rotations of the latent space.
    """

    user_samples_: NDArray[np.float32]
    item_samples_: NDArray[np.float32]
    user_factors_: Float
    item_factors_: Float
    user_bias_: Float
    item_bias_: Float
    train_rmse_history_: list[float]

    def __init__(
        self,
        *,
        factors: int = 20,
        burn_in: int = 50,
        samples: int = 150,
        alpha: float = 2.0,
        beta0: float = 2.0,
        sample_biases: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.burn_in = burn_in
        self.samples = samples
        self.alpha = alpha
        self.beta0 = beta0
        self.sample_biases = sample_biases
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        if self.factors < 1 or self.samples < 1 or self.burn_in < 0:
            raise ValueError("factors and samples must be >= 1 and burn_in >= 0")
        k = self.factors
        n, m = data.n_users, data.n_items
        mu = self.global_mean_
        rng = np.random.default_rng(self.random_state)
        rows, cols, r32 = data.to_coo_arrays()  # CSR order, aligned with data.csr
        r = r32.astype(np.float64)
        # CSC order of the same ratings: column-major positions of the CSR entries.
        pos = data.csr.copy()
        pos.data = np.arange(data.nnz, dtype=np.float64)
        pos = pos.tocsc()
        to_csc = pos.data.astype(np.int64)
        u_ptr, u_idx = data.csr.indptr.astype(np.int64), data.csr.indices.astype(np.int64)
        i_ptr, i_idx = pos.indptr.astype(np.int64), pos.indices.astype(np.int64)
        r_csc, rows_csc = r[to_csc], rows[to_csc]
        base_u = self.baseline_user_.astype(np.float64)
        base_i = self.baseline_item_.astype(np.float64)

        # State: latent rows, with the bias appended as column k when biases are sampled.
        d = k + 1 if self.sample_biases else k
        # The paper starts from a MAP PMF solution; small random factors (and the
        # regularized baseline for biases) work as well once the burn-in has passed.
        u = rng.normal(0.0, 0.1, size=(n, d))
        v = rng.normal(0.0, 0.1, size=(m, d))
        if self.sample_biases:
            u[:, k], v[:, k] = base_u, base_i
        else:
            # Fixed baseline: the factors model r - mu - b_u - b_i.
            fixed_csr = r - mu - base_u[rows] - base_i[cols]
            fixed_csc = fixed_csr[to_csc]
        ones_u, ones_i = np.ones((n, 1)), np.ones((m, 1))
        u_samples = np.empty((n, self.samples, k), dtype=np.float32)
        v_samples = np.empty((m, self.samples, k), dtype=np.float32)
        bias_u_sum, bias_i_sum = np.zeros(n), np.zeros(m)
        pred_sum = np.zeros(data.nnz)
        history: list[float] = []
        for sweep in range(self.burn_in + self.samples):
            # Users: x_u = [u_u, b_u] against z_i = [v_i, 1] and target r - mu - c_i
            # (or u_u against v_i and the fixed-baseline residual).
            if self.sample_biases:
                other, targets = np.hstack([v[:, :k], ones_i]), r - mu - v[cols, k]
            else:
                other, targets = v, fixed_csr
            mu_u, lam_u = sample_normal_wishart(u, rng, beta0=self.beta0)
            sample_conditional_rows(
                u_ptr, u_idx, targets, other, lam_u, mu_u, self.alpha, rng.standard_normal((n, d)), u
            )
            # Items: y_i = [v_i, c_i] against [u_u, 1] and target r - mu - b_u.
            if self.sample_biases:
                other, targets = np.hstack([u[:, :k], ones_u]), r_csc - mu - u[rows_csc, k]
            else:
                other, targets = u, fixed_csc
            mu_v, lam_v = sample_normal_wishart(v, rng, beta0=self.beta0)
            sample_conditional_rows(
                i_ptr, i_idx, targets, other, lam_v, mu_v, self.alpha, rng.standard_normal((m, d)), v
            )
            s = sweep - self.burn_in
            if s >= 0:
                u_samples[:, s] = u[:, :k]
                v_samples[:, s] = v[:, :k]
                pred = np.einsum("nk,nk->n", u[rows, :k], v[cols, :k])
                if self.sample_biases:
                    bias_u_sum += u[:, k]
                    bias_i_sum += v[:, k]
                    pred += u[rows, k] + v[cols, k]
                else:
                    pred += base_u[rows] + base_i[cols]
                # Training RMSE of the running posterior mean: a cheap convergence trace.
                pred_sum += pred
                history.append(float(np.sqrt(np.mean((r - mu - pred_sum / (s + 1)) ** 2))))
        self.user_samples_, self.item_samples_ = u_samples, v_samples
        self.user_factors_ = u_samples.mean(axis=1, dtype=np.float64)
        self.item_factors_ = v_samples.mean(axis=1, dtype=np.float64)
        if self.sample_biases:
            # Predictions are linear in the biases, so their posterior mean is all we need.
            self.user_bias_, self.item_bias_ = bias_u_sum / self.samples, bias_i_sum / self.samples
        else:
            self.user_bias_, self.item_bias_ = base_u, base_i
        self.train_rmse_history_ = history

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> Float:
        dots = np.einsum("nsk,nsk->n", self.user_samples_[users], self.item_samples_[items], dtype=np.float64)
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items] + dots / self.samples

    def _score_items(self, user: int) -> Float:
        m = self.data_.n_items
        flat_v = self.item_samples_.reshape(m, -1)
        dots = (flat_v @ self.user_samples_[user].reshape(-1)).astype(np.float64)
        return self.global_mean_ + self.user_bias_[user] + self.item_bias_ + dots / self.samples

    def _similar_scores(self, item: int) -> Float:
        flat_v = self.item_samples_.reshape(self.data_.n_items, -1).astype(np.float64)
        norms = np.linalg.norm(flat_v, axis=1)
        return (flat_v @ flat_v[item]) / np.maximum(norms * norms[item], 1e-12)
