"""The tuning protocol: search on a validation split of the training data only, then refit.

A spy model records every rating it is fitted on and every pair it is asked
about; the tests hold the search to the protocol with it: nothing of the test
split ever reaches a candidate, and no candidate is scored on a rating it was
fitted on.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import pytest
from scipy import stats

from recommender.engine import Interactions, Recommender
from recommender.engine.metrics import evaluate_ranking
from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm, make_model
from recommender.engine.split import kfold, random_split
from recommender.engine.tune import (
    SEARCH_SPACES,
    default_metric,
    grid_candidates,
    parse_grid,
    search,
    tune,
    validation_score,
    validation_split,
)

Pair = tuple[int, int]


def pairs(data: Interactions) -> set[Pair]:
    users, items, _ = data.to_raw_arrays()
    return set(zip(users.tolist(), items.tolist(), strict=True))


class SpyItemMean(Recommender):
    """Damped item mean, r_ui = (sum_u r_ui + damping mu) / (n_i + damping); logs what it sees."""

    fitted_on: ClassVar[list[set[Pair]]] = []
    asked: ClassVar[list[tuple[int, set[Pair]]]] = []  # (index of the fit, pairs asked about)

    def __init__(self, damping: float = 1.0) -> None:
        self.damping = damping

    def _fit(self, data: Interactions) -> None:
        SpyItemMean.fitted_on.append(pairs(data))
        self.fit_index_ = len(SpyItemMean.fitted_on) - 1
        counts = np.diff(data.csc.indptr).astype(np.float64)
        sums = np.asarray(data.csc.sum(axis=0)).ravel()
        self.item_mean_ = (sums + self.damping * self.global_mean_) / (counts + self.damping)

    def predict(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        asked = set(zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist(), strict=True))
        SpyItemMean.asked.append((self.fit_index_, asked))
        return super().predict(user_ids, item_ids)

    def score_items(self, user: int) -> np.ndarray:
        # Ranking reveals no held-out rating to the model, but log the user's scored row anyway.
        SpyItemMean.asked.append((self.fit_index_, set()))
        return super().score_items(user)

    def _predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_mean_[items]

    def _score_items(self, user: int) -> np.ndarray:
        return self.item_mean_.copy()


@pytest.fixture(autouse=True)
def clear_spy() -> None:
    SpyItemMean.fitted_on.clear()
    SpyItemMean.asked.clear()


def make_data(seed: int = 0, n_users: int = 50, n_items: int = 30, n: int = 900) -> Interactions:
    """Ratings with one rating per (user, item) pair, so a pair names a rating."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 1, n_items)
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = cells // n_items, cells % n_items
    ratings = np.clip(np.rint(3 + quality[items] + rng.normal(0, 0.7, n)), 1, 5)
    return Interactions.from_arrays(users + 1000, items + 5000, ratings)


SPACE = {"damping": [0.0, 2.0, 20.0]}


@pytest.mark.parametrize("metric", ["rmse", "ndcg@5"])
def test_the_search_never_sees_a_test_rating(metric: str) -> None:
    data = make_data()
    train, test = random_split(data, 0.2, random_state=1)
    train_pairs, test_pairs = pairs(train), pairs(test)
    assert train_pairs and test_pairs and not train_pairs & test_pairs

    result = tune(train, SpyItemMean, SPACE, metric=metric, random_state=7)

    fit_part, validation = validation_split(train, random_state=7)
    *candidate_fits, refit = SpyItemMean.fitted_on
    assert len(candidate_fits) == 3
    # Every candidate is fitted on the fit part, scored on the validation part only.
    assert all(seen == pairs(fit_part) for seen in candidate_fits)
    for fit_index, asked in SpyItemMean.asked:
        assert asked <= pairs(validation)
        assert not asked & SpyItemMean.fitted_on[fit_index]  # never scored on its own fit ratings
    # The refit sees the whole training data and nothing else; no test rating anywhere.
    assert refit == train_pairs
    seen = set().union(*SpyItemMean.fitted_on, *(a for _, a in SpyItemMean.asked))
    assert not seen & test_pairs
    assert result.model is not None and result.model.data_ is train


def test_the_validation_carving_partitions_the_training_part_of_every_fold() -> None:
    data = make_data(1)
    for train, test in kfold(data, 5, random_state=0):
        fit_part, validation = validation_split(train, 0.1, random_state=0)
        assert pairs(fit_part) | pairs(validation) == pairs(train)
        assert not pairs(fit_part) & pairs(validation)
        assert not (pairs(fit_part) | pairs(validation)) & pairs(test)
        assert validation.nnz == round(0.1 * train.nnz)

        SpyItemMean.fitted_on.clear()
        SpyItemMean.asked.clear()
        tune(train, SpyItemMean, SPACE)
        seen = set().union(*SpyItemMean.fitted_on, *(a for _, a in SpyItemMean.asked))
        assert seen <= pairs(train) and not seen & pairs(test)


def test_a_seed_fixes_the_search_and_another_seed_changes_the_validation_split() -> None:
    data = make_data(2)
    space = {"regularization_user": [1.0, 5.0, 25.0], "regularization_item": [1.0, 10.0]}
    a = tune(data, "bias_baseline", space, random_state=3)
    b = tune(data, "bias_baseline", space, random_state=3)
    c = tune(data, "bias_baseline", space, random_state=4)
    assert a.search is not None and b.search is not None and c.search is not None
    assert a.params == b.params and a.validation_score == b.validation_score
    assert [r["score"] for r in a.search.results] == [r["score"] for r in b.search.results]
    assert [r["params"] for r in a.search.results] == [r["params"] for r in b.search.results]
    assert [r["score"] for r in a.search.results] != [r["score"] for r in c.search.results]
    assert a.model is not None and b.model is not None
    np.testing.assert_array_equal(
        a.model.predict(*data.to_raw_arrays()[:2]), b.model.predict(*data.to_raw_arrays()[:2])
    )


def test_random_search_samples_the_same_candidates_for_the_same_seed() -> None:
    data = make_data(3)
    space = {"damping": stats.uniform(0, 20)}
    a = tune(data, SpyItemMean, space, n_iter=4, random_state=5)
    b = tune(data, SpyItemMean, space, n_iter=4, random_state=5)
    assert a.search is not None and b.search is not None
    assert [r["params"] for r in a.search.results] == [r["params"] for r in b.search.results]
    assert all(0.0 <= r["params"]["damping"] <= 20.0 for r in a.search.results)
    assert a.params == b.params


def test_the_chosen_params_are_the_best_candidate_and_are_reported() -> None:
    data = make_data(4)
    # Strings, as the command line gives them, come back as the estimator's types.
    result = tune(data, "bias_baseline", {"regularization_item": ["0", "3", "300"]}, random_state=0)
    assert result.search is not None
    rows = result.search.results
    best = min(rows, key=lambda r: r["score"])
    assert result.params == {"regularization_item": best["params"]["regularization_item"]}
    assert isinstance(result.params["regularization_item"], float)
    assert result.validation_score == best["score"] and result.metric == "rmse"
    assert result.n_candidates == 3
    assert f"regularization_item={result.params['regularization_item']}" in result.summary()
    assert "validation rmse" in result.summary()
    assert result.table().count("\n") == 1 + len(rows)
    # The refitted model carries exactly the chosen configuration.
    assert result.model is not None
    assert result.model.get_params()["regularization_item"] == result.params["regularization_item"]


def test_pinned_params_leave_the_search_and_a_single_candidate_is_not_searched() -> None:
    data = make_data(5)
    space = {"regularization_user": [1.0, 5.0], "regularization_item": [1.0, 10.0]}
    pinned = tune(data, "bias_baseline", space, fixed_params={"regularization_user": "7"})
    assert pinned.search is not None and pinned.n_candidates == 2
    assert pinned.params["regularization_user"] == 7.0
    assert all("regularization_user" not in r["params"] for r in pinned.search.results)

    single = tune(data, "bias_baseline", {"regularization_item": [2.0]})
    assert single.search is None and single.validation_score is None
    assert single.params == {"regularization_item": 2.0}
    assert "nothing searched" in single.summary()
    assert tune(data, "global_mean").params == {}  # SEARCH_SPACES["global_mean"] is empty


def test_ranking_only_models_default_to_ndcg_and_refuse_rating_metrics() -> None:
    data = make_data(6)
    assert default_metric("implicit_als") == "ndcg@10" and default_metric("explicit_als") == "rmse"
    result = tune(data, "pure_svd", {"factors": [1, 2]})
    assert result.metric == "ndcg@10" and result.search is not None and result.search.higher_is_better
    with pytest.raises(ValueError, match="ranking-only"):
        tune(data, "pure_svd", {"factors": [1, 2]}, metric="rmse")
    with pytest.raises(ValueError, match="unknown parameters"):
        tune(data, "pure_svd", {"rank": [1, 2]})


def test_search_scores_a_foreign_model_on_the_same_validation_split() -> None:
    data = make_data(7)
    space = {"regularization_item": [1.0, 10.0]}
    tuned = tune(data, "bias_baseline", space, random_state=2, refit=False)
    foreign = search(
        grid_candidates(space),
        data,
        lambda params, part: make_model("bias_baseline", params).fit(part),
        metric="rmse",
        random_state=2,
    )
    assert tuned.model is None and tuned.search is not None
    assert [r["score"] for r in foreign.results] == [r["score"] for r in tuned.search.results]


def test_parse_grid_reads_comma_separated_values() -> None:
    assert parse_grid(["factors=8, 16", "alpha=1"]) == {"factors": ["8", "16"], "alpha": ["1"]}
    with pytest.raises(ValueError, match="key=value1"):
        parse_grid(["factors"])


@pytest.mark.parametrize("name", sorted(SEARCH_SPACES))
def test_every_default_search_space_names_a_model_and_its_parameters(name: str) -> None:
    assert name in ALGORITHM_PATHS
    try:
        cls = get_algorithm(name)
    except ImportError as exc:  # an optional dependency missing here
        pytest.skip(f"{name}: {exc}")
    keywords = set(inspect.signature(cls.__init__).parameters)
    assert set(SEARCH_SPACES[name]) <= keywords
    for candidate in grid_candidates(SEARCH_SPACES[name]):
        make_model(name, candidate)  # every candidate constructs
    assert len(grid_candidates(SEARCH_SPACES[name])) <= 12  # modest: the 5-fold bench runs each 6 times


class FixedScores(Recommender):
    """Ranks every user's items by one fixed score per raw item id (ranking only)."""

    ranking_only = True

    def __init__(self, scores: dict[int, float] | None = None) -> None:
        self.scores = scores

    def _fit(self, data: Interactions) -> None:
        table = self.scores or {}
        self.item_scores_ = np.array([table.get(int(i), 0.0) for i in data.item_ids], dtype=np.float64)

    def _score_items(self, user: int) -> np.ndarray:
        return self.item_scores_.copy()


def test_validation_ranking_leaves_out_items_without_a_rating_in_the_fit_part() -> None:
    # Item 9 is rated only by user 1, and that rating is held out for validation:
    # the fit part keeps item 9 in its vocabulary but knows nothing about it,
    # as a test split's catalog never holds an item without a training rating.
    users = np.array([1, 1, 1, 2, 2, 2, 3, 3])
    items = np.array([7, 8, 9, 7, 8, 6, 6, 8])
    ratings = np.array([4.0, 5.0, 5.0, 2.0, 3.0, 4.0, 4.0, 5.0])
    data = Interactions.from_arrays(users, items, ratings)
    u, i, _ = data.to_raw_arrays()
    held_out = ((u == 1) & ((i == 8) | (i == 9))) | ((u == 2) & (i == 6))
    fit_part, validation = data.select(~held_out), data.select(held_out)
    assert 9 in data.item_ids.tolist() and 9 not in fit_part.to_raw_arrays()[1].tolist()

    # The model puts the unrateable item 9 first, then 8, then 6.
    model = FixedScores({9: 3.0, 8: 2.0, 6: 1.0}).fit(fit_part)
    # User 1 (validation: 8 and 9, both relevant) gets [8, ...] once 9 is neither
    # ranked nor relevant: a hit at rank 1 of one relevant item. User 2 (validation:
    # 6; rated 7 and 8) gets [9, 6] unfiltered, [6] filtered.
    assert validation_score(model, fit_part, validation, "precision@1") == 1.0
    assert validation_score(model, fit_part, validation, "ndcg@2") == 1.0
    # Ranked and counted as relevant, item 9 would hit user 1 at rank 1 and miss user 2.
    unfiltered = evaluate_ranking(model, fit_part, validation, k=1)
    assert unfiltered["precision@1"] == 0.5
