"""One contract suite run by every registered algorithm, plus the registry itself.

Every name in ``ALGORITHM_PATHS`` is exercised with the small hyperparameters
in ``TEST_PARAMS``; nothing is skipped or xfailed, so a newly registered model
must pass the whole contract.
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

import numpy as np
import pytest

from recommender.engine import EmptyInteractionsError, Interactions
from recommender.engine.base import Recommender
from recommender.engine.registry import ALGORITHM_PATHS, ALGORITHMS, get_algorithm, make_model, parse_params

#: Small, fast hyperparameters per registry name (the defaults are sized for ML-100K).
NEURAL = {"embedding_mf", "deep_mf", "residual_mf", "autorec"}
#: Trained by Spark: their fits need a Spark session, so tests/spark/ runs them (on local[2]).
SPARK = {"spark_als", "spark_implicit_als"}
TEST_PARAMS: dict[str, dict[str, Any]] = {
    "embedding_mf": {"factors": 4, "epochs": 30, "batch_size": 32, "random_state": 0, "device": "cpu"},
    "deep_mf": {
        "embedding_dim": 4,
        "hidden": 16,
        "learning_rate": 0.01,
        "epochs": 30,
        "batch_size": 32,
        "random_state": 0,
        "device": "cpu",
    },
    "residual_mf": {
        "factors": 4,
        "mf_epochs": 30,
        "hidden": 8,
        "epochs": 3,
        "batch_size": 32,
        "random_state": 0,
        "device": "cpu",
    },
    "autorec": {
        "hidden": 16,
        "learning_rate": 0.01,
        "regularization": 1.0,
        "epochs": 50,
        "batch_size": 8,
        "random_state": 0,
        "device": "cpu",
    },
    "global_mean": {},
    "bias_baseline": {},
    "explicit_als": {"factors": 4, "iterations": 8, "random_state": 0},
    "implicit_als": {"factors": 4, "iterations": 8, "random_state": 0},
    "pure_svd": {"factors": 2, "random_state": 0},
    "ease": {"regularization": 5.0},
    "spark_als": {"factors": 4, "iterations": 8},
    "spark_implicit_als": {"factors": 4, "iterations": 8},
    "sgd_mf": {"factors": 4, "epochs": 30, "random_state": 0},
    "lbfgs_mf": {"factors": 4, "max_iter": 30, "random_state": 0},
    "bpmf": {"factors": 4, "burn_in": 10, "samples": 20, "random_state": 0},
    "bayesian_svdpp": {"factors": 4, "burn_in": 10, "samples": 20, "random_state": 0},
    "bayesian_svdpp_served": {"factors": 4, "burn_in": 10, "samples": 20, "serving_samples": 5},
    "item_knn": {"k": 10},
    "user_knn": {"k": 10},
    # Base models are built on demand (see params_for): their modules may be missing.
    "blend": {
        "models": lambda: [
            make_model("bias_baseline"),
            make_model("item_knn", {"k": 10}),
            make_model("explicit_als", {"factors": 4, "iterations": 8}),
        ],
        "validation_fraction": 0.1,
    },
    "rank_blend": {
        "models": lambda: [
            make_model("implicit_als", {"factors": 4, "iterations": 8}),
            make_model("pure_svd", {"factors": 2}),
            make_model("ease", {"regularization": 5.0}),
        ],
        "weight_grid": (0.0, 1.0),
    },
}

NAMES = sorted(ALGORITHM_PATHS)

# ---- the designed data set ---------------------------------------------------
# Two taste clusters. Cluster A (users 1..30) loves items 101..105 and 999;
# cluster B (users 1001..1020) loves 201..205. Each non-target user also rated
# one item of the other cluster badly. Target user 1 rated 101..105 but not 999,
# which all other A users rated 5. Every model family must rank 999 first for
# user 1: it has the best item bias (popularity, baselines), co-occurs most with
# user 1's items (item/user neighbours, EASE, implicit factors) and matches the
# A taste factor while the B items carry low ratings from A users (explicit MF).
# 999 has the highest raw id, i.e. the last index: index tie-breaks cannot help it.
# The clusters are just large enough (~330 ratings) that models which hold out
# part of the data internally (Blend's stacking split) see a few dozen ratings.
TARGET, BEST = 1, 999
A_ITEMS, B_ITEMS = [101, 102, 103, 104, 105], [201, 202, 203, 204, 205]
N_A_USERS, N_B_USERS, FIRST_B_USER = 30, 20, 1001
LONELY_USER, LONELY_ITEM = 5000, 201


def designed_rows() -> tuple[list[int], list[int], list[float]]:
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []

    def add(u: int, i: int, r: float) -> None:
        users.append(u)
        items.append(i)
        ratings.append(r)

    for i, r in zip(A_ITEMS, [5, 4, 5, 4, 5], strict=True):
        add(TARGET, i, r)
    for j, u in enumerate(range(2, N_A_USERS + 1)):
        for k, i in enumerate(A_ITEMS):
            add(u, i, 5.0 if (j + k) % 3 else 4.0)
        add(u, BEST, 5.0)
        add(u, B_ITEMS[j % 5], 1.0 + (j % 2))
    for j, u in enumerate(range(FIRST_B_USER, FIRST_B_USER + N_B_USERS)):
        for k, i in enumerate(B_ITEMS):
            add(u, i, 5.0 if (j + k) % 3 else 4.0)
        add(u, A_ITEMS[j % 5], 1.0 + (j % 2))
    add(LONELY_USER, LONELY_ITEM, 4.0)
    return users, items, ratings


@pytest.fixture(scope="module")
def data() -> Interactions:
    return Interactions.from_arrays(*designed_rows())


def model_class(name: str) -> type[Recommender]:
    # No skip: every registered name must import (a missing module fails here).
    return get_algorithm(name)


def params_for(name: str) -> dict[str, Any]:
    """TEST_PARAMS[name] with factory values (callables) evaluated; a model not listed
    there runs with its defaults (list small ones to keep the suite fast)."""
    return {key: value() if callable(value) else value for key, value in TEST_PARAMS.get(name, {}).items()}


def build(name: str, params: dict[str, Any] | None = None) -> Recommender:
    if name in NEURAL:
        pytest.importorskip("torch", reason="neural models need requirements-neural.txt")
    if name in SPARK:
        pytest.skip("Spark models fit on a Spark session: tests/spark/ checks them")
    cls = model_class(name)
    return cls(**(params_for(name) if params is None else params))


_FITTED: dict[str, Recommender] = {}


def fitted(name: str, data: Interactions) -> Recommender:
    """One shared fit per model for the read-only checks (keeps the suite fast)."""
    if name not in _FITTED:
        _FITTED[name] = build(name).fit(data)
    return _FITTED[name]


def rating_scale_ok(values: np.ndarray, data: Interactions) -> bool:
    lo, hi = data.rating_scale
    return bool(np.all(np.isfinite(values)) and np.all(values >= lo) and np.all(values <= hi))


# ---- the contract ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_params_round_trip(name: str, data: Interactions) -> None:
    given = params_for(name)
    model = build(name, given)
    assert model.fit(data) is model
    params = model.get_params()
    for key, value in given.items():
        assert params[key] == value
    # sklearn contract: the constructor accepts exactly what get_params returns.
    type(model)(**params)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user_and_item_get_finite_fallbacks_in_scale(name: str, data: Interactions) -> None:
    model = fitted(name, data)
    pred = model.predict([12345, TARGET, 12345], [101, 77777, 77777])
    assert pred.shape == (3,)
    assert rating_scale_ok(pred, data)
    recs = model.recommend(12345, n=3)
    assert len(recs) == 3
    assert all(np.isfinite(score) for _, score in recs)
    assert model.similar_items(77777) == []


@pytest.mark.parametrize("name", NAMES)
def test_user_with_a_single_rating(name: str, data: Interactions) -> None:
    model = fitted(name, data)
    items = data.item_ids
    pred = model.predict(np.full(items.shape[0], LONELY_USER), items)
    assert rating_scale_ok(pred, data)
    recs = model.recommend(LONELY_USER, n=5)
    assert len(recs) == 5
    assert LONELY_ITEM not in [item for item, _ in recs]
    assert all(np.isfinite(score) for _, score in recs)


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_raises_clear_error(name: str) -> None:
    empty = Interactions.from_arrays(np.array([], dtype=np.int64), np.array([], dtype=np.int64), [])
    with pytest.raises(EmptyInteractionsError, match=r"empty|no rating"):
        build(name).fit(empty)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_identical_results(name: str, data: Interactions) -> None:
    users = np.repeat(data.user_ids, data.n_items)
    items = np.tile(data.item_ids, data.n_users)
    a = build(name).fit(data)
    b = build(name).fit(data)
    np.testing.assert_array_equal(a.predict(users, items), b.predict(users, items))
    for u in (TARGET, FIRST_B_USER, LONELY_USER):
        assert a.recommend(u, n=6) == b.recommend(u, n=6)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_keeps_predictions(name: str, data: Interactions) -> None:
    model = build(name).fit(data)
    clone = pickle.loads(pickle.dumps(model))
    users = np.repeat(data.user_ids, data.n_items)
    items = np.tile(data.item_ids, data.n_users)
    np.testing.assert_array_equal(clone.predict(users, items), model.predict(users, items))
    assert clone.recommend(TARGET, n=6) == model.recommend(TARGET, n=6)
    assert set(clone.get_params()) == set(model.get_params())


@pytest.mark.parametrize("name", NAMES)
def test_known_best_item_ranks_first(name: str, data: Interactions) -> None:
    model = fitted(name, data)
    recs = model.recommend(TARGET, n=3)
    assert recs[0][0] == BEST, recs


@pytest.mark.parametrize("name", NAMES)
def test_recommend_excludes_seen_items_and_sorts_scores(name: str, data: Interactions) -> None:
    model = fitted(name, data)
    users, items, _ = designed_rows()
    for u in (TARGET, 2, FIRST_B_USER, LONELY_USER):
        seen = {i for uu, i in zip(users, items, strict=True) if uu == u}
        recs = model.recommend(u, n=data.n_items)
        assert 0 < len(recs) <= data.n_items - len(seen)
        assert not seen & {item for item, _ in recs}
        scores = [score for _, score in recs]
        assert scores == sorted(scores, reverse=True)
        # Without exclusion, seen items are candidates again.
        assert len(model.recommend(u, n=data.n_items, exclude_seen=False)) >= len(recs)


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_name_imports_a_recommender(name: str) -> None:
    module_name, class_name = ALGORITHM_PATHS[name]
    module = importlib.import_module(f"recommender.engine.{module_name}")
    cls = getattr(module, class_name)
    assert get_algorithm(name) is cls
    assert issubclass(cls, Recommender)
    # The class documents its formula and citation (team standard): a docstring exists.
    assert cls.__doc__ and len(cls.__doc__) > 40


# ---- the registry --------------------------------------------------------------------


def test_registry_names() -> None:
    assert set(ALGORITHMS) == {
        "explicit_als",
        "implicit_als",
        "bpmf",
        "bayesian_svdpp",
        "bayesian_svdpp_served",
        "item_knn",
        "user_knn",
        "bias_baseline",
        "global_mean",
        "pure_svd",
        "sgd_mf",
        "lbfgs_mf",
        "blend",
        "rank_blend",
        "ease",
        *NEURAL,
        *SPARK,
    }
    assert set(TEST_PARAMS) == set(ALGORITHMS)
    assert ALGORITHMS["bias_baseline"].__name__ == "BiasBaseline"
    assert issubclass(ALGORITHMS["global_mean"], Recommender)


def test_unknown_algorithm_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown algorithm 'svdpp'.*bias_baseline.*user_knn"):
        get_algorithm("svdpp")
    with pytest.raises(KeyError):
        ALGORITHMS["svdpp"]


def test_make_model_coerces_strings_to_default_types() -> None:
    model = make_model("bias_baseline", {"iterations": "3", "regularization_user": "2.5"})
    assert model.get_params()["iterations"] == 3
    assert isinstance(model.get_params()["iterations"], int)
    assert model.get_params()["regularization_user"] == 2.5
    svd = make_model("pure_svd", {"center": "false", "random_state": "none", "factors": "3"})
    got = svd.get_params()
    assert (got["center"], got["random_state"], got["factors"]) == (False, None, 3)
    assert make_model("pure_svd", {"center": "Yes"}).get_params()["center"] is True
    # Non-strings pass through untouched.
    assert make_model("bias_baseline", {"iterations": 7}).get_params()["iterations"] == 7


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"iterations": "three"}, r"iterations='three' is not a valid int"),
        ({"iterations": "2.5"}, r"not a valid int"),
        ({"regularization_user": "x"}, r"not a valid float"),
        ({"nope": "1"}, r"unknown parameter 'nope'.*iterations"),
    ],
)
def test_make_model_rejects_bad_values(params: dict[str, str], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make_model("bias_baseline", params)


def test_make_model_rejects_non_bool_text() -> None:
    with pytest.raises(ValueError, match="not a valid bool"):
        make_model("pure_svd", {"center": "maybe"})


def test_parse_params() -> None:
    assert parse_params(["factors=64", " alpha = 0.5 ", "name=a=b"]) == {
        "factors": "64",
        "alpha": "0.5",
        "name": "a=b",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_params(["factors"])
