"""Blend: ridge stacking weights vs a direct least-squares solve, refit protocol, ML-100K."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine import BiasBaseline, Blend, ItemKNN, Recommender, UserKNN
from recommender.engine.blend import ridge_blend_weights
from recommender.engine.metrics import rmse
from tests.engine.test_implicit_als import fitted, ml100k_split
from tests.engine.test_knn import continuous_data


def test_ridge_weights_match_augmented_least_squares() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(3.5, 0.6, (300, 3))
    y = 0.4 + p @ np.array([0.5, 0.3, 0.1]) + rng.normal(0, 0.2, 300)
    lam = 7.0
    c, w = ridge_blend_weights(p, y, lam)
    # Reference: unpenalized intercept column, sqrt(lambda) I rows penalize w only.
    a = np.vstack(
        [np.column_stack([np.ones(300), p]), np.column_stack([np.zeros(3), np.sqrt(lam) * np.eye(3)])]
    )
    b = np.concatenate([y, np.zeros(3)])
    ref = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(np.concatenate([[c], w]), ref, atol=1e-10)


def test_ridge_recovers_exact_combination() -> None:
    rng = np.random.default_rng(1)
    p = rng.normal(size=(500, 2))
    y = -0.2 + 0.7 * p[:, 0] + 0.3 * p[:, 1]
    c, w = ridge_blend_weights(p, y, 1e-9)
    assert c == pytest.approx(-0.2, abs=1e-6)
    np.testing.assert_allclose(w, [0.7, 0.3], atol=1e-6)


def test_blend_refits_clones_and_combines_linearly() -> None:
    data = continuous_data(60, 30, 0.4, seed=7)
    protos = [ItemKNN(k=5, similarity="cosine"), BiasBaseline()]
    blend = fitted(Blend(models=protos, validation_fraction=0.2, random_state=3), data)
    # The prototypes are untouched; the blended models are refitted on all the data.
    assert not any(hasattr(m, "data_") for m in protos)
    assert all(m.data_ is data for m in blend.models_)
    assert [type(m) for m in blend.models_] == [ItemKNN, BiasBaseline]
    assert blend.models_[0].get_params() == protos[0].get_params()
    rows, cols, _ = data.to_coo_arrays()
    manual = blend.intercept_ + sum(
        w * m.predict_indices(rows, cols) for w, m in zip(blend.weights_, blend.models_, strict=True)
    )
    np.testing.assert_allclose(blend.predict_indices(rows, cols), np.clip(manual, 1.0, 5.0), atol=1e-12)
    # Ranking uses the blended predicted ratings.
    all_items = np.arange(data.n_items)
    expected = blend.intercept_ + sum(
        w * m.predict_indices(np.full(data.n_items, 4), all_items)
        for w, m in zip(blend.weights_, blend.models_, strict=True)
    )
    np.testing.assert_allclose(blend.score_items(4), expected, atol=1e-12)


def test_blend_weights_fitted_on_held_out_predictions() -> None:
    data = continuous_data(60, 30, 0.4, seed=8)
    protos: list[Recommender] = [ItemKNN(k=5), BiasBaseline()]
    blend = fitted(Blend(models=protos, validation_fraction=0.25, random_state=5), data)
    # Recompute the stacking step by hand with the same seeded split.
    rows, cols, r = data.to_coo_arrays()
    n_val = round(0.25 * data.nnz)
    val = np.zeros(data.nnz, dtype=bool)
    val[np.random.default_rng(5).permutation(data.nnz)[:n_val]] = True
    sub = data.select(~val)
    preds = np.column_stack(
        [type(m)(**m.get_params()).fit(sub).predict_indices(rows[val], cols[val]) for m in protos]
    )
    c, w = ridge_blend_weights(preds, r[val], 1.0, non_negative=True)
    assert blend.intercept_ == pytest.approx(c)
    np.testing.assert_allclose(blend.weights_, w)
    # Deterministic for a seed; another seed carves another split.
    again = fitted(Blend(models=protos, validation_fraction=0.25, random_state=5), data)
    np.testing.assert_array_equal(again.weights_, blend.weights_)
    other = fitted(Blend(models=protos, validation_fraction=0.25, random_state=6), data)
    assert not np.allclose(other.weights_, blend.weights_)


def test_blend_rejects_bad_arguments() -> None:
    data = continuous_data(seed=9)
    with pytest.raises(ValueError):
        Blend(models=[]).fit(data)
    with pytest.raises(ValueError):
        Blend(models=[BiasBaseline()], validation_fraction=1.5).fit(data)


@pytest.mark.slow
def test_ml100k_blend_beats_its_best_member() -> None:
    train, test = ml100k_split()
    members = [ItemKNN(), UserKNN(), BiasBaseline()]
    single = [rmse(test[2], type(m)(**m.get_params()).fit(train).predict(test[0], test[1])) for m in members]
    blend = fitted(Blend(models=members, random_state=0), train)
    score = rmse(test[2], blend.predict(test[0], test[1]))
    assert score < min(single) - 0.003


def test_non_negative_weights_are_the_constrained_optimum() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(3.5, 1.0, 400)
    good = truth + rng.normal(0, 0.3, 400)
    # A near-copy of `good`: unconstrained ridge splits weight between the two
    # with opposite signs; the constrained fit may not.
    p = np.column_stack([good, good + rng.normal(0, 0.05, 400), truth + rng.normal(0, 0.8, 400)])
    c_free, w_free = ridge_blend_weights(p, truth, 0.01)
    c_nn, w_nn = ridge_blend_weights(p, truth, 0.01, non_negative=True)
    assert np.all(w_nn >= 0)

    # Optimality: no feasible weight vector nearby does better (brute-force check on a grid).
    def loss(c: float, w: np.ndarray) -> float:
        return float(np.sum((truth - c - p @ w) ** 2) + 0.01 * w @ w)

    best = loss(c_nn, w_nn)
    for delta in np.random.default_rng(0).normal(0, 0.05, (200, 3)):
        w = np.maximum(w_nn + delta, 0)
        c = float(np.mean(truth - p @ w))
        assert loss(c, w) >= best - 1e-9
    # When the free solution is already non-negative, both agree.
    q = np.column_stack([good, truth + rng.normal(0, 0.8, 400)])
    c1, w1 = ridge_blend_weights(q, truth, 0.1)
    c2, w2 = ridge_blend_weights(q, truth, 0.1, non_negative=True)
    assert np.all(w1 > 0)
    np.testing.assert_allclose(w1, w2, atol=1e-8)
    assert c1 == pytest.approx(c2, abs=1e-8)
    del c_free, w_free


def test_blend_members_by_registry_name() -> None:
    """``members`` builds the base models from registry names (how the bench and
    ``evaluate --param`` choose them); "+" separates like "," (environment lists split on commas)."""
    data = continuous_data(60, 30, 0.4, seed=7)
    blend = fitted(Blend(members="item_knn+bias_baseline", validation_fraction=0.2, random_state=3), data)
    assert [type(m) for m in blend.models_] == [ItemKNN, BiasBaseline]
    by_list = fitted(
        Blend(members=["item_knn", "bias_baseline"], validation_fraction=0.2, random_state=3), data
    )
    np.testing.assert_array_equal(blend.weights_, by_list.weights_)
    with pytest.raises(ValueError, match=r"unknown algorithm|not_a_model"):
        Blend(members="item_knn,not_a_model").fit(data)
    with pytest.raises(ValueError, match="either models or members"):
        Blend(models=[ItemKNN()], members="item_knn").fit(data)


def test_default_members_are_core_models() -> None:
    """The default blend needs no optional extra, so it is the same model everywhere."""
    from recommender.engine.blend import DEFAULT_MEMBERS, default_models
    from recommender.engine.registry import ALGORITHM_PATHS, OPTIONAL_EXTRAS

    assert DEFAULT_MEMBERS[0] == "bayesian_svdpp_served"
    modules = {ALGORITHM_PATHS[name][0].split(".")[0] for name in DEFAULT_MEMBERS}
    assert not modules & {*OPTIONAL_EXTRAS, "spark_als"}
    assert [type(m).__name__ for m in default_models()] == ["ServedBayesianSVDpp", "ItemKNN", "UserKNN"]
