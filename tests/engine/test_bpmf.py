"""Bayesian PMF by Gibbs sampling (recommender.engine.bpmf)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine.base import Recommender
from recommender.engine.bpmf import (
    BPMF,
    sample_conditional_rows,
    sample_conditional_rows_reference,
    sample_normal_wishart,
)
from recommender.engine.interactions import Interactions


def _tiny_rows(seed: int, n_rows: int = 7, n_cols: int = 9, k: int = 4):
    rng = np.random.default_rng(seed)
    mat = sp.random(n_rows, n_cols, density=0.4, random_state=seed, format="csr")
    mat.data = rng.normal(size=mat.nnz)
    # Force one row without observations: its conditional is the prior.
    mat = sp.vstack([mat, sp.csr_matrix((1, n_cols))], format="csr")
    other = rng.normal(size=(n_cols, k))
    a = rng.normal(size=(k, k))
    prior_precision = a @ a.T + np.eye(k)
    prior_mean = rng.normal(size=k)
    return mat, other, prior_precision, prior_mean


def _planted(seed: int = 0, n_users: int = 80, n_items: int = 60, k: int = 3, density: float = 0.5):
    """mu + user/item offsets + low-rank signal + N(0, 0.3^2) noise on a subset of cells."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.7, size=(n_users, k))
    v = rng.normal(0.0, 0.7, size=(n_items, k))
    full = 3.0 + rng.normal(0, 0.3, n_users)[:, None] + rng.normal(0, 0.3, n_items)[None, :] + w @ v.T
    noisy = full + rng.normal(0.0, 0.3, size=full.shape)
    mask = rng.random(full.shape) < density
    users, items = np.nonzero(mask)
    data = Interactions.from_arrays(users, items, noisy[users, items])
    return data, full, np.nonzero(~mask)


# ---- kernels ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conditional_kernel_matches_textbook_reference(seed: int) -> None:
    mat, other, lam, mu = _tiny_rows(seed)
    n, k = mat.shape[0], other.shape[1]
    noise = np.random.default_rng(100 + seed).normal(size=(n, k))
    args = (mat.indptr.astype(np.int64), mat.indices.astype(np.int64), mat.data, other, lam, mu, 2.0)
    out = np.empty((n, k))
    sample_conditional_rows(*args, noise, out)
    ref_samples, ref_means, ref_prec = sample_conditional_rows_reference(*args, noise)
    np.testing.assert_allclose(out, ref_samples, rtol=1e-9, atol=1e-9)
    # Zero noise gives the conditional mean: m_u = P_u^-1 (alpha V_I^T r + Lambda mu).
    sample_conditional_rows(*args, np.zeros((n, k)), out)
    np.testing.assert_allclose(out, ref_means, rtol=1e-9, atol=1e-9)
    # The reference is the textbook formula; spell it out once more for one row.
    u = 0
    cols = mat.indices[mat.indptr[u] : mat.indptr[u + 1]]
    r = mat.data[mat.indptr[u] : mat.indptr[u + 1]]
    precision = lam + 2.0 * sum((np.outer(other[i], other[i]) for i in cols), np.zeros((k, k)))
    np.testing.assert_allclose(ref_prec[u], precision)
    np.testing.assert_allclose(
        ref_means[u], np.linalg.inv(precision) @ (2.0 * other[cols].T @ r + lam @ mu), rtol=1e-9
    )
    # The empty row falls back to the prior mean.
    np.testing.assert_allclose(ref_means[-1], mu, rtol=1e-9)


def test_conditional_kernel_draws_have_posterior_mean_and_covariance() -> None:
    mat, other, lam, mu = _tiny_rows(5, k=3)
    row = 1
    start, end = mat.indptr[row], mat.indptr[row + 1]
    reps = 20000
    # The same row repeated: every output row is an independent draw from one conditional.
    indptr = np.arange(reps + 1, dtype=np.int64) * (end - start)
    indices = np.tile(mat.indices[start:end].astype(np.int64), reps)
    targets = np.tile(mat.data[start:end], reps)
    noise = np.random.default_rng(0).normal(size=(reps, 3))
    out = np.empty((reps, 3))
    sample_conditional_rows(indptr, indices, targets, other, lam, mu, 2.0, noise, out)
    _, means, precisions = sample_conditional_rows_reference(
        mat.indptr, mat.indices, mat.data, other, lam, mu, 2.0, np.zeros((mat.shape[0], 3))
    )
    cov = np.linalg.inv(precisions[row])
    se = np.sqrt(np.diag(cov) / reps)
    assert np.all(np.abs(out.mean(axis=0) - means[row]) < 5 * se)
    np.testing.assert_allclose(np.cov(out.T), cov, atol=0.05 * np.abs(cov).max())


def test_normal_wishart_draws_match_posterior_moments() -> None:
    rng = np.random.default_rng(1)
    k, n = 2, 30
    x = rng.normal(size=(n, k)) @ np.array([[1.0, 0.3], [0.0, 0.5]]) + np.array([0.5, -1.0])
    # Textbook posterior (S&M 2008 eq. 14) with a per-row loop for the scatter matrix.
    beta0, nu0 = 2.0, float(k)
    xbar = x.mean(axis=0)
    scatter = np.zeros((k, k))
    for row in x:
        scatter += np.outer(row - xbar, row - xbar)
    beta_n, nu_n = beta0 + n, nu0 + n
    w_n = np.linalg.inv(np.eye(k) + scatter + beta0 * n / beta_n * np.outer(xbar, xbar))
    mu_n = n * xbar / beta_n
    draws = [sample_normal_wishart(x, rng, beta0=beta0) for _ in range(2000)]
    lam_mean = np.mean([lam for _, lam in draws], axis=0)
    mu_mean = np.mean([mu for mu, _ in draws], axis=0)
    np.testing.assert_allclose(lam_mean, nu_n * w_n, rtol=0.05, atol=0.05 * np.abs(nu_n * w_n).max())
    np.testing.assert_allclose(mu_mean, mu_n, atol=0.03)
    # Lambda must be symmetric positive definite for the row conditionals.
    assert all(np.all(np.linalg.eigvalsh(lam) > 0) for _, lam in draws[:50])


# ---- model -------------------------------------------------------------------
@pytest.mark.parametrize("sample_biases", [True, False])
def test_bpmf_beats_baseline_on_planted_data(sample_biases: bool) -> None:
    data, full, held = _planted()
    model = BPMF(factors=5, burn_in=30, samples=60, random_state=0, sample_biases=sample_biases).fit(data)
    baseline = _Baseline().fit(data)
    users, items = data.user_ids[held[0]], data.item_ids[held[1]]
    truth = full[held]
    rmse_model = np.sqrt(np.mean((model.predict(users, items) - truth) ** 2))
    rmse_base = np.sqrt(np.mean((baseline.predict(users, items) - truth) ** 2))
    assert rmse_model < 0.6 * rmse_base
    # The chain's training fit of the running posterior mean settles near the noise level.
    assert model.train_rmse_history_[-1] < 0.6


class _Baseline(Recommender):
    """mu + b_u + b_i only: the base class's default prediction."""

    def _fit(self, data: Interactions) -> None:
        pass


@pytest.mark.parametrize("sample_biases", [True, False])
def test_prediction_is_mean_over_stored_samples(sample_biases: bool) -> None:
    data, _, _ = _planted(n_users=30, n_items=20)
    model = BPMF(factors=3, burn_in=5, samples=7, random_state=3, sample_biases=sample_biases).fit(data)
    assert model.user_samples_.shape == (30, 7, 3)
    if sample_biases:
        # Biases are sampled, so they move away from the fixed starting baseline.
        assert not np.allclose(model.user_bias_, model.baseline_user_, atol=1e-3)
    else:
        np.testing.assert_allclose(model.user_bias_, model.baseline_user_)
    u, i = 4, 11
    dots = [float(model.user_samples_[u, s] @ model.item_samples_[i, s]) for s in range(7)]
    expected = model.global_mean_ + model.user_bias_[u] + model.item_bias_[i] + np.mean(dots)
    lo, hi = data.rating_scale
    got = model.predict(data.user_ids[[u]], data.item_ids[[i]])[0]
    assert got == pytest.approx(np.clip(expected, lo, hi), abs=1e-5)
    # Ranking scores agree with pairwise predictions (before clipping).
    scores = model.score_items(u)
    pairs = model._predict_indices(np.full(20, u), np.arange(20))
    np.testing.assert_allclose(scores, pairs, rtol=1e-5, atol=1e-5)


def test_predictions_in_scale_and_similar_items_valid() -> None:
    data, _, _ = _planted(n_users=30, n_items=20)
    model = BPMF(factors=3, burn_in=5, samples=10).fit(data)
    users = np.repeat(data.user_ids, 20)
    items = np.tile(data.item_ids, 30)
    pred = model.predict(users, items)
    lo, hi = data.rating_scale
    assert np.all((pred >= lo) & (pred <= hi))
    sims = model.similar_items(data.item_ids[2], n=5)
    assert len(sims) == 5 and data.item_ids[2] not in [i for i, _ in sims]
    assert all(-1.0 - 1e-9 <= s <= 1.0 + 1e-9 for _, s in sims)
    assert [s for _, s in sims] == sorted((s for _, s in sims), reverse=True)


def test_deterministic_for_a_seed() -> None:
    data, _, _ = _planted(n_users=30, n_items=20)
    a = BPMF(factors=3, burn_in=5, samples=5, random_state=11).fit(data)
    b = BPMF(factors=3, burn_in=5, samples=5, random_state=11).fit(data)
    c = BPMF(factors=3, burn_in=5, samples=5, random_state=12).fit(data)
    np.testing.assert_array_equal(a.user_samples_, b.user_samples_)
    np.testing.assert_array_equal(a.item_samples_, b.item_samples_)
    assert not np.allclose(a.item_samples_, c.item_samples_)


@pytest.mark.slow
def test_ml100k_rmse_on_the_team_split() -> None:
    """A short chain on real ML-100K already beats the SVD++ reference (0.925)."""
    from ratings.demo_data import ml100k_arrays

    users, items, ratings, _ = ml100k_arrays()
    n = len(ratings)
    perm = np.random.default_rng(42).permutation(n)
    train_rows, test_rows = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
    train = Interactions.from_arrays(users[train_rows], items[train_rows], ratings[train_rows])
    model = BPMF(factors=10, burn_in=20, samples=60, random_state=0).fit(train)
    truth = ratings[test_rows]
    rmse = np.sqrt(np.mean((model.predict(users[test_rows], items[test_rows]) - truth) ** 2))
    base = _Baseline().fit(train).predict(users[test_rows], items[test_rows])
    assert rmse < np.sqrt(np.mean((base - truth) ** 2)) - 0.02
    assert rmse <= 0.915
