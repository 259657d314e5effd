"""Bayesian MF with SVD++ implicit feedback on both sides (recommender.engine.bayesian_svdpp)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine.bayesian_svdpp import (
    BayesianSVDpp,
    ServedBayesianSVDpp,
    fold_in_per_sample,
    implicit_conditional_reference,
    residual_caches,
    sample_implicit_rows,
)
from recommender.engine.bpmf import BPMF
from recommender.engine.interactions import Interactions
from recommender.engine.metrics import rmse


def _tiny_state(seed: int, n: int = 7, m: int = 9, k: int = 3):
    """Ratings in CSR order, implicit sets = the rated cells, and a random sampler state."""
    rng = np.random.default_rng(seed)
    mat = sp.random(n, m, density=0.5, random_state=seed, format="csr")
    # One row with nothing rated: its weight is irrelevant and its vector is p_u alone.
    mat = sp.vstack([mat, sp.csr_matrix((1, m))], format="csr")
    n += 1
    rows, cols = mat.nonzero()
    order = np.lexsort((cols, rows))
    rows, cols = rows[order].astype(np.int64), cols[order].astype(np.int64)
    r = rng.normal(size=rows.size)
    rated = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, m))
    weights = 1.0 / np.sqrt(np.maximum(np.diff(rated.indptr), 1))
    other = rng.normal(size=(m, k))
    own = rng.normal(size=(n, k))
    implicit = rng.normal(size=(m, k))
    prior = rng.gamma(2.0, size=k)
    return rows, cols, r, rated, weights, other, own, implicit, prior


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_implicit_block_gibbs_pass_matches_brute_force_conditionals(seed: int) -> None:
    rows, cols, r, rated, weights, other, own, implicit, prior = _tiny_state(seed)
    n, m, k, alpha = own.shape[0], other.shape[0], other.shape[1], 1.7
    noise = np.random.default_rng(50 + seed).normal(size=(m, k))

    def effective(y: np.ndarray) -> np.ndarray:
        return own + weights[:, None] * (rated @ y)

    def residuals(y: np.ndarray) -> np.ndarray:
        return r - np.einsum("nk,nk->n", effective(y)[rows], other[cols])

    fast = implicit.copy()
    eff = effective(fast)
    gram, lin = np.empty((n, k, k)), np.empty((n, k))
    residual_caches(
        rated.indptr.astype(np.int64),
        rated.indices.astype(np.int64),
        residuals(fast),
        other,
        alpha,
        gram,
        lin,
    )
    csc = rated.tocsc()
    sample_implicit_rows(
        csc.indptr.astype(np.int64), csc.indices.astype(np.int64), weights, gram, lin, prior, fast, eff, noise
    )
    # Reference: each y_j in turn from its conditional, recomputing every residual from scratch.
    slow = implicit.copy()
    for j in range(m):
        mean, precision = implicit_conditional_reference(
            rows, cols, residuals(slow), rated, weights, other, prior, alpha, j, slow[j]
        )
        slow[j] = mean + np.linalg.solve(np.linalg.cholesky(precision).T, noise[j])
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10)
    # The kernel kept the effective vectors in step with its draws.
    np.testing.assert_allclose(eff, effective(fast), rtol=1e-10, atol=1e-10)


def test_implicit_conditional_with_zero_noise_is_the_least_squares_mean() -> None:
    rows, cols, r, rated, weights, other, own, implicit, prior = _tiny_state(4)
    n, m, k, alpha = own.shape[0], other.shape[0], other.shape[1], 2.0
    eff = own + weights[:, None] * (rated @ implicit)
    e = r - np.einsum("nk,nk->n", eff[rows], other[cols])
    gram, lin = np.empty((n, k, k)), np.empty((n, k))
    residual_caches(rated.indptr.astype(np.int64), rated.indices.astype(np.int64), e, other, alpha, gram, lin)
    # Only item 0 (the first y updated) is checked: later ones see its draw.
    mean, precision = implicit_conditional_reference(
        rows, cols, e, rated, weights, other, prior, alpha, 0, implicit[0]
    )
    # Spelled out: minimise alpha ||t - X y||^2 + y^T diag(lambda) y over the ratings that see y_0.
    sees = np.isin(rows, np.flatnonzero(rated[:, 0].toarray().ravel()))
    x = weights[rows[sees], None] * other[cols[sees]]
    t = e[sees] + x @ implicit[0]
    np.testing.assert_allclose(precision, np.diag(prior) + alpha * x.T @ x)
    np.testing.assert_allclose(mean, np.linalg.solve(np.diag(prior) + alpha * x.T @ x, alpha * x.T @ t))
    y = implicit.copy()
    csc = rated.tocsc()
    sample_implicit_rows(
        csc.indptr.astype(np.int64),
        csc.indices.astype(np.int64),
        weights,
        gram,
        lin,
        prior,
        y,
        eff,
        np.zeros((m, k)),
    )
    np.testing.assert_allclose(y[0], mean, rtol=1e-10, atol=1e-10)


def test_residual_caches_are_the_weighted_gram_and_projection() -> None:
    rows, cols, r, rated, _, other, _, _, _ = _tiny_state(5)
    n, k = rated.shape[0], other.shape[1]
    gram, lin = np.empty((n, k, k)), np.empty((n, k))
    residual_caches(rated.indptr.astype(np.int64), rated.indices.astype(np.int64), r, other, 1.5, gram, lin)
    for u in range(n):
        o = other[cols[rows == u]]
        np.testing.assert_allclose(gram[u], 1.5 * o.T @ o, atol=1e-12)
        np.testing.assert_allclose(lin[u], 1.5 * o.T @ r[rows == u], atol=1e-12)


# ---- the model ---------------------------------------------------------------
def _implicit_planted(
    seed: int = 0, n_rows: int = 300, n_cols: int = 40, k: int = 3, per_row: int = 5, flip: bool = False
):
    """Ratings whose row vectors are the SVD++ implicit term: ``r = 3 + (|N(u)|^-1/2 sum_{j in N(u)} y_j) . q_i``.

    Each row rates only ``per_row`` columns (too few to pin down a k-vector
    from the ratings alone), while every column's y_j is shared by ~40 rows:
    the set of rated columns carries the taste. Returns the training
    Interactions (N(u) = its rated cells) and every unrated cell with its
    noise-free value. ``flip`` swaps the roles: rows become items and the
    signal is the item-side term ``|N(i)|^-1/2 sum_{v in N(i)} z_v``.
    """
    rng = np.random.default_rng(seed)
    rated = np.zeros((n_rows, n_cols), dtype=bool)
    for u in range(n_rows):
        rated[u, rng.choice(n_cols, per_row, replace=False)] = True
    row_vectors = (rated @ rng.normal(size=(n_cols, k))) / np.sqrt(per_row)
    full = 3.0 + row_vectors @ rng.normal(size=(n_cols, k)).T
    noisy = full + rng.normal(0, 0.3, full.shape)
    rows, cols = np.nonzero(rated)
    t_rows, t_cols = np.nonzero(~rated)
    if flip:
        return Interactions.from_arrays(cols, rows, noisy[rows, cols]), (t_cols, t_rows, full[t_rows, t_cols])
    return Interactions.from_arrays(rows, cols, noisy[rows, cols]), (t_rows, t_cols, full[t_rows, t_cols])


def test_without_implicit_terms_and_with_a_fixed_alpha_it_is_bpmf() -> None:
    train, (users, items, _) = _implicit_planted()
    params = {"factors": 3, "burn_in": 5, "samples": 10, "alpha": 2.0, "random_state": 3}
    plain = BayesianSVDpp(implicit_user=False, implicit_item=False, **params).fit(train)
    bpmf = BPMF(**params).fit(train)
    np.testing.assert_allclose(plain.predict(users, items), bpmf.predict(users, items), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("side", ["user", "item"])
def test_it_recovers_an_implicit_signal_that_bpmf_cannot(side: str) -> None:
    train, (users, items, truth) = _implicit_planted(flip=side == "item")
    params = {"factors": 3, "burn_in": 30, "samples": 60, "random_state": 0}
    one_side = BayesianSVDpp(implicit_user=side == "user", implicit_item=side == "item", **params).fit(train)
    wrong_side = BayesianSVDpp(implicit_user=side != "user", implicit_item=side != "item", **params).fit(
        train
    )
    plain = BPMF(**params).fit(train)
    err = rmse(truth, one_side.predict(users, items))
    # Plain BPMF and the implicit term on the wrong side are ~0.6; the right side ~0.23.
    assert err < 0.5 * rmse(truth, plain.predict(users, items))
    assert err < 0.5 * rmse(truth, wrong_side.predict(users, items))
    # The sampled noise precision finds the planted 1 / 0.3^2 ~ 11.
    assert 6.0 < np.mean(one_side.alpha_history_[-20:]) < 16.0


def test_fits_are_reproducible_for_a_seed() -> None:
    train, (users, items, _) = _implicit_planted(1)
    a = BayesianSVDpp(factors=2, burn_in=3, samples=4, random_state=7).fit(train)
    b = BayesianSVDpp(factors=2, burn_in=3, samples=4, random_state=7).fit(train)
    np.testing.assert_array_equal(a.predict(users, items), b.predict(users, items))


# ---- the served form ---------------------------------------------------------------
def test_fold_in_per_sample_is_an_average_of_per_sample_ridge_fits() -> None:
    rng = np.random.default_rng(0)
    d, n_samples, n = 3, 4, 12
    samples = rng.normal(size=(n, n_samples, d))
    stored = samples.reshape(n, -1) / np.sqrt(n_samples)
    t = rng.normal(size=n)
    lam = 0.7
    vector = fold_in_per_sample(stored, t, n_samples, lam)
    expected = np.zeros(n)
    for s in range(n_samples):
        # Ridge as an augmented least squares problem: [X; sqrt(lambda) I] w ~ [t; 0].
        x = samples[:, s]
        augmented = np.vstack([x, np.sqrt(lam) * np.eye(d)])
        sol = np.linalg.lstsq(augmented, np.concatenate([t, np.zeros(d)]), rcond=None)[0]
        np.testing.assert_allclose(vector[s * d : (s + 1) * d] * np.sqrt(n_samples), sol, atol=1e-10)
        expected += (x @ sol) / n_samples
    # One dot product on the concatenated tables = the average over samples.
    np.testing.assert_allclose(stored @ vector, expected, atol=1e-10)


def test_whitened_fold_in_is_the_samplers_conditional_mean_of_a_user() -> None:
    """With one stored sample, serving is S&M eq. 12-13's user mean under that sample's prior."""
    train, _ = _implicit_planted(flip=True)
    model = ServedBayesianSVDpp(
        factors=2, burn_in=5, samples=10, serving_samples=1, serving_regularization=0.5, random_state=1
    ).fit(train)
    s = 0  # serving_samples=1 keeps the first kept sweep
    user = 3
    csr = train.csr
    items = csr.indices[csr.indptr[user] : csr.indptr[user + 1]]
    r = csr.data[csr.indptr[user] : csr.indptr[user + 1]].astype(np.float64)
    z = np.hstack([model.item_samples_[items, s, :].astype(np.float64), np.ones((items.size, 1))])
    mu_prior, lam_prior = model.user_prior_means_[s], model.user_prior_precisions_[s]
    alpha = 1.0 / 0.5
    target = r - model.global_mean_ - model.item_bias_[items]
    precision = lam_prior + alpha * z.T @ z
    mean = np.linalg.solve(precision, alpha * z.T @ target + lam_prior @ mu_prior)
    all_items = np.arange(train.n_items)
    z_all = np.hstack([model.item_samples_[:, s, :].astype(np.float64), np.ones((train.n_items, 1))])
    expected = model.global_mean_ + model.item_bias_ + z_all @ mean
    served = model.predict_indices(np.full(train.n_items, user), all_items)
    np.testing.assert_allclose(served, np.clip(expected, *train.rating_scale), atol=2e-4)


def test_served_model_predicts_from_its_tables_and_keeps_the_item_side_gain() -> None:
    train, (users, items, truth) = _implicit_planted(flip=True)
    params = {"factors": 3, "burn_in": 30, "samples": 60, "random_state": 0}
    model = ServedBayesianSVDpp(serving_samples=20, serving_regularization=0.5, **params).fit(train)
    tables = model.export_tables()
    assert tables.n_factors == (3 + 1) * 20
    user = 4
    own = model.predict(np.full(train.n_items, train.user_ids[user]), train.item_ids)
    from_tables = tables.predict(
        np.arange(train.n_items), tables.user_vectors[user], float(tables.user_bias[user])
    )
    np.testing.assert_allclose(own, from_tables, atol=1e-5)
    u_idx, i_idx = train.user_index(users), train.item_index(items)
    served = rmse(truth, model.predict(users, items))
    full = rmse(truth, np.clip(model.posterior_predict_indices(u_idx, i_idx), 1.0, 5.0))
    plain = rmse(truth, BPMF(**params).fit(train).predict(users, items))
    # The item-side implicit term lives in the stored item samples, so serving keeps the gain.
    assert served < 0.5 * plain
    assert served < full + 0.05
