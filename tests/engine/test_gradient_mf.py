"""Biased MF by mini-batch SGD and by L-BFGS (recommender.engine.gradient_mf)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from recommender.engine.base import Recommender
from recommender.engine.gradient_mf import (
    LBFGSMF,
    SGDMF,
    _scatter_add_rows,
    batch_loss_and_gradients,
    batch_loss_and_gradients_reference,
    objective_and_gradient,
    ridge_fold_in,
    ridge_fold_in_reference,
    sgd_momentum_step,
)
from recommender.engine.interactions import Interactions


def _random_problem(seed: int, n_users: int = 6, n_items: int = 8, k: int = 3, nnz: int = 25):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_users, size=nnz)
    cols = rng.integers(0, n_items, size=nnz)
    ratings = rng.uniform(1.0, 5.0, size=nnz)
    w = rng.normal(size=(n_users, k))
    v = rng.normal(size=(n_items, k))
    b = rng.normal(size=n_users)
    c = rng.normal(size=n_items)
    return rows, cols, ratings, w, v, b, c


def _planted(seed: int = 0, n_users: int = 60, n_items: int = 50, k: int = 3, density: float = 0.6):
    """Ratings mu + b_u + c_i + w_u . v_i (no noise) on a random subset of cells."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.6, size=(n_users, k))
    v = rng.normal(0.0, 0.6, size=(n_items, k))
    b = rng.normal(0.0, 0.3, size=n_users)
    c = rng.normal(0.0, 0.3, size=n_items)
    full = 3.0 + b[:, None] + c[None, :] + w @ v.T
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    data = Interactions.from_arrays(users, items, full[users, items])
    held_u, held_i = np.nonzero(~mask)
    return data, full, (held_u, held_i)


def _rmse(model, data: Interactions, full: np.ndarray, pairs) -> float:
    users, items = pairs
    pred = model.predict(data.user_ids[users], data.item_ids[items])
    return float(np.sqrt(np.mean((pred - full[users, items]) ** 2)))


# ---- kernels ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_gradients_match_per_rating_reference(seed: int) -> None:
    rows, cols, ratings, w, v, b, c = _random_problem(seed)  # has repeated users/items/pairs
    fast = batch_loss_and_gradients(w, v, b, c, rows, cols, ratings, 3.0, 0.3)
    slow = batch_loss_and_gradients_reference(w, v, b, c, rows, cols, ratings, 3.0, 0.3)
    for got, want in zip(fast, slow, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(6,), (6, 3)])
def test_scatter_add_rows_matches_add_at(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(9)
    index = rng.integers(0, 6, size=40)  # many repeats
    values = rng.normal(size=(40, *shape[1:]))
    target = rng.normal(size=shape)
    expected = target.copy()
    np.add.at(expected, index, values)
    _scatter_add_rows(target, index, values)
    np.testing.assert_allclose(target, expected, rtol=1e-12, atol=1e-12)


def test_sgd_momentum_step_matches_dense_textbook_update() -> None:
    rows, cols, ratings, w, v, b, c = _random_problem(5)
    rng = np.random.default_rng(5)
    params = (w.copy(), v.copy(), b.copy(), c.copy())
    velocity = tuple(rng.normal(size=p.shape) for p in params)
    expected_vel, expected_params = [], []
    grads = batch_loss_and_gradients_reference(w, v, b, c, rows, cols, ratings, 3.0, 0.2)[1:]
    for p, vel, g in zip(params, velocity, grads, strict=True):
        new_vel = 0.9 * vel - 0.01 * g
        expected_vel.append(new_vel)
        expected_params.append(p + new_vel)
    sgd_momentum_step(params, velocity, rows, cols, ratings, 3.0, 0.2, 0.01, 0.9)
    for got, want in zip(params + velocity, expected_params + expected_vel, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("regularization", [0.0, 0.1, 2.0])
def test_objective_gradient_matches_central_differences(regularization: float) -> None:
    rows, cols, ratings, w, v, b, c = _random_problem(3)
    shape, k = (w.shape[0], v.shape[0]), w.shape[1]
    x = np.concatenate([b, c, w.ravel(), v.ravel()])
    args = (rows, cols, ratings, shape, k, 3.2, regularization)

    def f(p: np.ndarray) -> float:
        return objective_and_gradient(p, *args)[0]

    def grad(p: np.ndarray) -> np.ndarray:
        return objective_and_gradient(p, *args)[1]

    # Hand-written central differences: (f(x + h e_j) - f(x - h e_j)) / 2h.
    h = 1e-6
    numeric = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    analytic = grad(x)
    rel = np.linalg.norm(numeric - analytic) / np.linalg.norm(analytic)
    assert rel < 1e-5
    # scipy's forward-difference check as a second opinion (looser: O(h) error).
    assert check_grad(f, grad, x) / np.linalg.norm(analytic) < 1e-4


def test_objective_is_mean_of_documented_sum() -> None:
    rows, cols, ratings, w, v, b, c = _random_problem(4)
    x = np.concatenate([b, c, w.ravel(), v.ravel()])
    value, _ = objective_and_gradient(x, rows, cols, ratings, (w.shape[0], v.shape[0]), w.shape[1], 3.0, 0.5)
    pred = 3.0 + b[rows] + c[cols] + np.sum(w[rows] * v[cols], axis=1)
    per_rating_penalty = (w[rows] ** 2).sum(1) + (v[cols] ** 2).sum(1) + b[rows] ** 2 + c[cols] ** 2
    expected = np.mean((ratings - pred) ** 2 + 0.5 * per_rating_penalty)
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 3, 20])
def test_ridge_fold_in_matches_augmented_least_squares(n: int) -> None:
    rng = np.random.default_rng(n)
    v = rng.normal(size=(n, 4))
    y = rng.normal(size=n)
    w_fast, b_fast = ridge_fold_in(v, y, 0.7)
    w_ref, b_ref = ridge_fold_in_reference(v, y, 0.7)
    np.testing.assert_allclose(w_fast, w_ref, atol=1e-10)
    assert b_fast == pytest.approx(b_ref, abs=1e-10)


# ---- models ------------------------------------------------------------------
def test_lbfgs_loss_decreases_and_fold_in_reproduces_trained_users() -> None:
    data, _, _ = _planted(n_users=25, n_items=20, density=0.7)
    model = LBFGSMF(factors=3, regularization=0.05, max_iter=2000, tol=1e-14).fit(data)
    hist = np.array(model.loss_history_)
    assert hist[-1] < 0.3 * hist[0]
    assert np.all(np.diff(hist) <= 1e-12)  # L-BFGS line search: monotone objective
    # At the optimum the user half is the exact ridge solution, so folding a
    # training user's own ratings back in must give its learned parameters.
    for u in (0, 7, 19):
        start, end = data.csr.indptr[u], data.csr.indptr[u + 1]
        items = data.item_ids[data.csr.indices[start:end]]
        vec, bias = model.fold_in(items, data.csr.data[start:end])
        np.testing.assert_allclose(vec, model.user_factors_[u], atol=1e-4)
        assert bias == pytest.approx(model.user_bias_[u], abs=1e-4)


def test_lbfgs_recovers_planted_low_rank_matrix() -> None:
    data, full, held = _planted()
    model = LBFGSMF(factors=3, regularization=0.001, max_iter=500).fit(data)
    baseline = float(np.sqrt(np.mean((data.csr.data.mean() - full[held]) ** 2)))
    assert _rmse(model, data, full, held) < 0.1 * baseline
    assert _rmse(model, data, full, held) < 0.05


def test_sgd_loss_decreases_and_recovers_planted_matrix() -> None:
    data, full, held = _planted()
    model = SGDMF(
        factors=3, learning_rate=0.005, regularization=0.001, batch_size=64, epochs=150, random_state=0
    ).fit(data)
    hist = np.array(model.loss_history_)
    assert hist[-1] < 0.05 * hist[0]
    assert np.mean(hist[-10:]) < np.mean(hist[:10])
    baseline = float(np.sqrt(np.mean((data.csr.data.mean() - full[held]) ** 2)))
    assert _rmse(model, data, full, held) < 0.2 * baseline


def test_sgd_and_lbfgs_minimize_the_same_objective() -> None:
    data, _, _ = _planted(n_users=30, n_items=25)
    lbfgs = LBFGSMF(factors=3, regularization=0.05, max_iter=1000).fit(data)
    sgd = SGDMF(factors=3, learning_rate=0.002, regularization=0.05, batch_size=32, epochs=200).fit(data)
    # SGD with a constant step hovers near the optimum L-BFGS converges to.
    assert sgd.objective() == pytest.approx(lbfgs.objective(), rel=0.05)
    assert lbfgs.objective() <= sgd.objective() + 1e-9


@pytest.mark.parametrize("cls", [SGDMF, LBFGSMF])
def test_deterministic_for_a_seed(cls) -> None:
    data, _, _ = _planted(n_users=20, n_items=15)
    kw = {"epochs": 5} if cls is SGDMF else {"max_iter": 20}
    a = cls(factors=3, random_state=7, **kw).fit(data)
    b = cls(factors=3, random_state=7, **kw).fit(data)
    c = cls(factors=3, random_state=8, **kw).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)
    assert not np.allclose(a.item_factors_, c.item_factors_)


def test_sgd_divergence_is_reported() -> None:
    data, _, _ = _planted(n_users=20, n_items=15)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        SGDMF(factors=3, learning_rate=5.0, epochs=20).fit(data)


def test_similar_items_are_cosine_of_item_vectors() -> None:
    data, _, _ = _planted(n_users=20, n_items=15)
    model = LBFGSMF(factors=3, max_iter=50).fit(data)
    v = model.item_factors_
    sims = [
        (j, float(v[j] @ v[4] / np.linalg.norm(v[j]) / np.linalg.norm(v[4]))) for j in range(15) if j != 4
    ]
    best = sorted(sims, key=lambda t: -t[1])[:5]
    got = model.similar_items(data.item_ids[4], n=5)
    assert [data.item_index([i])[0] for i, _ in got] == [j for j, _ in best]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in best], rtol=1e-9)


def test_fold_in_ignores_unknown_items_and_scores_in_scale() -> None:
    data, _, _ = _planted(n_users=20, n_items=15)
    model = SGDMF(factors=3, epochs=10).fit(data)
    known = data.item_ids[[1, 2, 3]]
    vec, bias = model.fold_in(known, [5.0, 1.0, 4.0])
    vec2, bias2 = model.fold_in([*known, 10_000], [5.0, 1.0, 4.0, 1.0])
    np.testing.assert_allclose(vec, vec2)
    assert bias == bias2
    by_index = model.fold_in_indices(data.item_index(known), [5.0, 1.0, 4.0])
    np.testing.assert_allclose(by_index[0], vec)
    np.testing.assert_allclose(model.score_vector(vec, bias)[:3], by_index[1] + model.score_vector(vec)[:3])
    with pytest.raises(ValueError, match="out of range"):
        model.fold_in_indices(np.array([99]), [3.0])
    empty_vec, empty_bias = model.fold_in([], [])
    assert not empty_vec.any() and empty_bias == 0.0
    lo, hi = data.rating_scale
    pred = model.predict(data.user_ids[[0, 0, 3]], data.item_ids[[0, 5, 9]])
    assert np.all((pred >= lo) & (pred <= hi))


@pytest.mark.slow
def test_ml100k_rmse_on_the_team_split() -> None:
    """Small, fast configurations on real ML-100K beat the bias baseline clearly."""
    from ratings.demo_data import ml100k_arrays

    users, items, ratings, _ = ml100k_arrays()
    n = len(ratings)
    perm = np.random.default_rng(42).permutation(n)
    train_rows, test_rows = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
    train = Interactions.from_arrays(users[train_rows], items[train_rows], ratings[train_rows])
    truth = ratings[test_rows]

    def rmse(model: Recommender) -> float:
        return float(np.sqrt(np.mean((model.predict(users[test_rows], items[test_rows]) - truth) ** 2)))

    baseline = rmse(_BaselineOnly().fit(train))
    sgd = rmse(SGDMF(factors=16, epochs=20, learning_rate=0.0007, batch_size=1024).fit(train))
    lbfgs = rmse(LBFGSMF(factors=16, max_iter=60).fit(train))
    assert sgd < baseline - 0.01 and sgd <= 0.935
    assert lbfgs < baseline - 0.005 and lbfgs <= 0.94


class _BaselineOnly(Recommender):
    """The base class's default prediction: the regularized baseline mu + b_u + b_i."""

    def _fit(self, data: Interactions) -> None:
        pass
