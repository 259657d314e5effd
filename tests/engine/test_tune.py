"""Hyperparameter search: picks the candidate an independent evaluation says is best."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recommender.engine import Interactions, Recommender
from recommender.engine.metrics import evaluate_ranking, rmse
from recommender.engine.split import random_split
from recommender.engine.tune import grid_search, random_search


class DampedItemMean(Recommender):
    """Test model: r_ui = (sum_u r_ui + damping * mu) / (n_i + damping) + offset."""

    def __init__(self, damping: float = 1.0, offset: float = 0.0) -> None:
        self.damping = damping
        self.offset = offset

    def _fit(self, data: Interactions) -> None:
        counts = np.diff(data.csc.indptr).astype(np.float64)
        sums = np.asarray(data.csc.sum(axis=0)).ravel()
        self.item_mean_ = (sums + self.damping * self.global_mean_) / (counts + self.damping) + self.offset

    def _predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_mean_[items]


def make_data(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    n_users, n_items, n = 40, 30, 900
    quality = rng.normal(0, 1, n_items)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    ratings = np.clip(np.rint(3 + quality[items] + rng.normal(0, 0.7, n)), 1, 5)
    return Interactions.from_arrays(users, items, ratings)


def independent_scores(data: Interactions, candidates: list[dict], metric: str) -> list[float]:
    """Refit every candidate by hand on the same validation split and score it."""
    train, valid = random_split(data, 0.1, random_state=3)
    out = []
    for params in candidates:
        model = DampedItemMean(**params).fit(train)
        if metric == "rmse":
            users, items, ratings = valid.to_raw_arrays()
            out.append(rmse(ratings, model.predict(users, items)))
        else:
            out.append(evaluate_ranking(model, train, valid, k=5)["ndcg@5"])
    return out


def test_grid_search_rmse_picks_the_independently_best_candidate() -> None:
    data = make_data()
    grid = {"damping": [0.0, 2.0, 20.0], "offset": [-0.5, 0.0, 0.5]}
    result = grid_search(DampedItemMean, grid, data, metric="rmse", random_state=3)
    candidates = [{"damping": d, "offset": o} for d in grid["damping"] for o in grid["offset"]]
    assert [row["params"] for row in result.results] == candidates
    expected = independent_scores(data, candidates, "rmse")
    np.testing.assert_allclose([row["score"] for row in result.results], expected, rtol=1e-12)
    assert result.best_params == candidates[int(np.argmin(expected))]
    assert result.best_score == pytest.approx(min(expected))
    assert not result.higher_is_better
    # A 0.5 offset on 1-5 ratings is clearly worse than none.
    assert result.best_params["offset"] == 0.0
    assert "damping" in result.table()


def test_grid_search_ranking_metric_maximizes() -> None:
    data = make_data(1)
    grid = {"damping": [0.0, 1.0, 50.0]}
    result = grid_search(DampedItemMean, grid, data, metric="ndcg@5", random_state=3)
    expected = independent_scores(data, [{"damping": d} for d in grid["damping"]], "ndcg")
    np.testing.assert_allclose([row["score"] for row in result.results], expected, rtol=1e-12)
    assert result.best_score == pytest.approx(max(expected))
    assert result.higher_is_better


def test_random_search_is_seeded_and_samples_within_the_space() -> None:
    data = make_data(2)
    space = {"damping": stats.uniform(0, 10), "offset": [-0.2, 0.0, 0.2]}
    a = random_search(DampedItemMean, space, data, n_iter=6, random_state=4)
    b = random_search(DampedItemMean, space, data, n_iter=6, random_state=4)
    c = random_search(DampedItemMean, space, data, n_iter=6, random_state=5)
    assert len(a.results) == 6
    assert [r["params"] for r in a.results] == [r["params"] for r in b.results]
    assert [r["params"] for r in a.results] != [r["params"] for r in c.results]
    for row in a.results:
        assert 0.0 <= row["params"]["damping"] <= 10.0
        assert row["params"]["offset"] in (-0.2, 0.0, 0.2)
    assert a.best_score == min(r["score"] for r in a.results)


def test_search_accepts_registry_names_and_fixed_params() -> None:
    data = make_data(3)
    result = grid_search(
        "bias_baseline",
        {"regularization_item": [1.0, 10.0]},
        data,
        fixed_params={"iterations": 3},
    )
    assert len(result.results) == 2
    assert result.best_params["regularization_item"] in (1.0, 10.0)


def test_search_rejects_bad_metrics_and_rating_metrics_for_ranking_only() -> None:
    data = make_data()
    with pytest.raises(ValueError, match="unknown metric"):
        grid_search(DampedItemMean, {"damping": [1.0]}, data, metric="auc")

    class RankOnly(DampedItemMean):
        ranking_only = True

    with pytest.raises(ValueError, match="ranking-only"):
        grid_search(RankOnly, {"damping": [1.0]}, data, metric="rmse")
    with pytest.raises(ValueError, match="empty"):
        grid_search(DampedItemMean, {"damping": []}, data)
