"""GlobalMean and BiasBaseline against closed forms and a slow reference."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine.baseline import BiasBaseline, GlobalMean, bias_objective, fit_biases
from recommender.engine.interactions import Interactions


def _data(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Interactions:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.3
    users, items = np.nonzero(mask)
    b_u = rng.normal(0, 0.6, n_users)
    b_i = rng.normal(0, 0.8, n_items)
    r = np.clip(np.round(3.5 + b_u[users] + b_i[items] + rng.normal(0, 0.3, users.size)), 1, 5)
    return Interactions.from_arrays(users + 100, items + 500, r)


def _reference_biases(data: Interactions, lam_u: float, lam_i: float, iterations: int):
    """Textbook per-item / per-user loops, float64."""
    dense = data.csr.toarray().astype(np.float64)
    mask = data.csr.toarray() != 0
    mu = dense[mask].mean()
    b_u = np.zeros(data.n_users)
    b_i = np.zeros(data.n_items)
    for _ in range(iterations):
        for i in range(data.n_items):
            users = np.flatnonzero(mask[:, i])
            b_i[i] = np.sum(dense[users, i] - mu - b_u[users]) / (lam_i + users.size)
        for u in range(data.n_users):
            items = np.flatnonzero(mask[u])
            b_u[u] = np.sum(dense[u, items] - mu - b_i[items]) / (lam_u + items.size)
    return mu, b_u, b_i


def test_global_mean_predicts_the_mean_everywhere() -> None:
    data = _data()
    model = GlobalMean().fit(data)
    mean = float(np.mean(data.csr.data, dtype=np.float64))
    rows, cols, _ = data.to_coo_arrays()
    pred = model.predict(data.user_ids[rows[:10]], data.item_ids[(cols[:10] + 3) % data.n_items])
    np.testing.assert_allclose(pred, mean, rtol=1e-6)


def test_fit_biases_matches_reference_loops() -> None:
    data = _data(1)
    rows, cols, r = data.to_coo_arrays()
    mu, b_u, b_i = fit_biases(
        rows,
        cols,
        r,
        data.n_users,
        data.n_items,
        regularization_user=4.0,
        regularization_item=2.0,
        iterations=5,
    )
    mu_ref, bu_ref, bi_ref = _reference_biases(data, 4.0, 2.0, 5)
    assert mu == pytest.approx(mu_ref)
    np.testing.assert_allclose(b_u, bu_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b_i, bi_ref, rtol=1e-9, atol=1e-12)


def test_objective_decreases_and_converges_to_stationary_point() -> None:
    data = _data(2)
    rows, cols, r = data.to_coo_arrays()
    losses = []
    for it in range(1, 8):
        mu, b_u, b_i = fit_biases(
            rows,
            cols,
            r,
            data.n_users,
            data.n_items,
            regularization_user=3.0,
            regularization_item=5.0,
            iterations=it,
        )
        losses.append(bias_objective(rows, cols, r, mu, b_u, b_i, 3.0, 5.0))
    assert np.all(np.diff(losses) <= 1e-9 * np.abs(losses[:-1]))
    # After many sweeps the gradient of the objective w.r.t. b_i is ~0.
    mu, b_u, b_i = fit_biases(
        rows,
        cols,
        r,
        data.n_users,
        data.n_items,
        regularization_user=3.0,
        regularization_item=5.0,
        iterations=300,
    )
    resid = r - mu - b_u[rows] - b_i[cols]
    grad_i = -np.bincount(cols, weights=resid, minlength=data.n_items) + 5.0 * b_i
    grad_u = -np.bincount(rows, weights=resid, minlength=data.n_users) + 3.0 * b_u
    assert np.abs(grad_i).max() < 1e-5 and np.abs(grad_u).max() < 1e-5


def test_bias_baseline_predictions_and_fallbacks() -> None:
    data = _data(3)
    model = BiasBaseline(regularization_user=2.0, regularization_item=1.0, iterations=10).fit(data)
    u, i = data.user_ids[[0, 5]], data.item_ids[[3, 7]]
    expected = model.mu_ + model.user_bias_[[0, 5]] + model.item_bias_[[3, 7]]
    lo, hi = data.rating_scale
    np.testing.assert_allclose(model.predict(u, i), np.clip(expected, lo, hi))
    # Unknown user: mu + the base class's baseline item bias (documented fallback).
    unknown = model.predict([424242], [data.item_ids[3]])
    assert unknown[0] == pytest.approx(
        np.clip(model.global_mean_ + model.baseline_item_[3], lo, hi), rel=1e-6
    )


def test_bias_baseline_beats_global_mean_on_held_out_ratings() -> None:
    data = _data(4, n_users=80, n_items=60)
    rows, cols, r = data.to_coo_arrays()
    test = np.random.default_rng(0).random(r.size) < 0.2
    train = data.select(~test)
    u, i = data.user_ids[rows[test]], data.item_ids[cols[test]]

    def rmse(model) -> float:
        return float(np.sqrt(np.mean((model.predict(u, i) - r[test]) ** 2)))

    assert rmse(BiasBaseline().fit(train)) < 0.8 * rmse(GlobalMean().fit(train))


def test_recommend_ranks_by_item_bias_excluding_seen() -> None:
    data = _data(5)
    model = BiasBaseline().fit(data)
    recs = model.recommend(data.user_ids[0], n=5)
    seen = set(data.item_ids[data.csr.indices[data.csr.indptr[0] : data.csr.indptr[1]]].tolist())
    unseen = [j for j in range(data.n_items) if data.item_ids[j] not in seen]
    best = sorted(unseen, key=lambda j: -model.item_bias_[j])[:5]
    assert [item for item, _ in recs] == data.item_ids[best].tolist()


def test_regularization_shrinks_biases() -> None:
    data = _data(6)
    loose = BiasBaseline(regularization_user=0.1, regularization_item=0.1).fit(data)
    tight = BiasBaseline(regularization_user=100.0, regularization_item=100.0).fit(data)
    assert np.abs(tight.item_bias_).sum() < 0.5 * np.abs(loose.item_bias_).sum()
    with pytest.raises(ValueError):
        BiasBaseline(regularization_user=-1.0).fit(data)
