"""The serving contract every servable algorithm keeps (see recommender/engine/tables.py).

For each registry name whose class declares a ``serving_kind``: the tables it
exports are what the site stores (float32); folding a training user back in
from those stored tables, with a fresh unfitted instance carrying only the
version's hyperparameters (as the web process does), reproduces the user's
trained vector and their top-10. Exact (bit for bit) where the fit ends with
the same solve the fold-in runs; within the stated tolerance otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recommender.engine import Interactions
from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm, make_model
from recommender.engine.tables import (
    SERVING_KINDS,
    FactorTables,
    NeighborTables,
    NonFiniteTablesError,
    rank_items,
)
from tests.engine.test_conformance import NEURAL, SPARK, params_for

FACTOR_NAMES = sorted(
    name for name in ALGORITHM_PATHS if get_algorithm(name).serving_kind in ("rating", "ranking")
)
SIMILARITY_NAMES = sorted(
    name for name in ALGORITHM_PATHS if get_algorithm(name).serving_kind == "similarity"
)

#: Largest allowed |folded - trained| per algorithm; 0 means bit-identical float32.
#: Implicit ALS adds the shared Y^T Y from BLAS, whose summation order may
#: depend on threads and alignment (last-bit differences, amplified by the
#: solve); PureSVD's trained vectors are float64 projections while its fold-in
#: runs on the float32 tables; the bias baseline's user bias is summed by bincount.
VECTOR_TOLERANCE: dict[str, float] = {
    "embedding_mf": 0.0,
    "explicit_als": 0.0,
    "implicit_als": 1e-5,
    "sgd_mf": 0.0,
    "lbfgs_mf": 0.0,
    "pure_svd": 1e-4,
    "bias_baseline": 1e-6,
    "bayesian_svdpp_served": 0.0,
    # Spark's float32 factors against a float64 fold-in (checked in tests/spark/, on a Spark session).
    "spark_als": 1e-3,
    "spark_implicit_als": 1e-3,
}


def planted(seed: int = 3, n_users: int = 60, n_items: int = 40) -> Interactions:
    """Low rank + biases, 40% observed, half-star ratings."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    full = (
        3.5
        + 0.6 * (u @ v.T) / 3
        + rng.normal(0, 0.3, n_items)[None, :]
        + rng.normal(0, 0.3, n_users)[:, None]
    )
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.4)
    ratings = np.clip(np.round(full[users, items] * 2) / 2, 0.5, 5.0)
    return Interactions.from_arrays(users + 100, items + 5000, ratings)


def fitted(name: str, data: Interactions) -> Any:
    if name in NEURAL:
        pytest.importorskip("torch", reason="neural models need requirements-neural.txt")
    if name in SPARK:
        pytest.skip("Spark models fit on a Spark session: tests/spark/ checks them")
    return make_model(name, params_for(name)).fit(data)


def test_the_registry_is_the_one_list_of_servable_algorithms() -> None:
    kinds = {name: get_algorithm(name).serving_kind for name in ALGORITHM_PATHS}
    assert set(kinds.values()) <= {*SERVING_KINDS, None}
    assert {name for name, kind in kinds.items() if kind} == {
        "bias_baseline",
        "bayesian_svdpp_served",
        "embedding_mf",
        "explicit_als",
        "implicit_als",
        "item_knn",
        "lbfgs_mf",
        "pure_svd",
        "sgd_mf",
        "spark_als",
        "spark_implicit_als",
    }
    assert set(FACTOR_NAMES) == set(VECTOR_TOLERANCE)


@pytest.mark.parametrize("name", sorted(n for n in ALGORITHM_PATHS if get_algorithm(n).serving_kind is None))
def test_an_algorithm_without_a_serving_kind_cannot_export(name: str) -> None:
    model = fitted(name, planted())
    with pytest.raises(NotImplementedError):
        model.export_tables()


@pytest.mark.parametrize("name", FACTOR_NAMES)
def test_fold_in_from_stored_tables_reproduces_trained_users_and_their_top_10(name: str) -> None:
    data = planted()
    model = fitted(name, data)
    stored = model.export_tables().as_stored()
    assert isinstance(stored, FactorTables)
    assert stored.item_vectors.dtype == np.float32 and stored.user_vectors.dtype == np.float32
    np.testing.assert_array_equal(stored.item_ids, data.item_ids)
    np.testing.assert_array_equal(stored.user_ids, data.user_ids)
    # The web process has no fitted estimator: a fresh instance with the
    # version's stored hyperparameters folds users in.
    serving = make_model(name, model.get_params())
    csr = data.csr
    tolerance = VECTOR_TOLERANCE[name]
    for user in range(data.n_users):
        start, end = csr.indptr[user], csr.indptr[user + 1]
        raw_items = data.item_ids[csr.indices[start:end]]
        shuffled = np.random.default_rng(user).permutation(end - start)
        positions = stored.item_positions(raw_items[shuffled])
        vector, bias = serving.fold_in_from_tables(stored, positions, csr.data[start:end][shuffled])
        if tolerance == 0.0:
            np.testing.assert_array_equal(vector.astype(np.float32), stored.user_vectors[user])
            assert np.float32(bias) == stored.user_bias[user]
        else:
            np.testing.assert_allclose(vector, stored.user_vectors[user], atol=tolerance, rtol=tolerance)
            assert bias == pytest.approx(float(stored.user_bias[user]), abs=tolerance)
        # Served top-10 (stored tables, the site's code path) == the model's own recommend().
        served = rank_items(stored.scores(vector, bias), 10, exclude=positions)
        own = [item for item, _ in model.recommend(data.user_ids[user], n=10)]
        assert stored.item_ids[served].tolist() == own, f"user {user}"


@pytest.mark.parametrize("name", FACTOR_NAMES)
def test_predicted_ratings_from_stored_tables_match_predict_and_clip_to_the_version_scale(name: str) -> None:
    data = planted()
    model = fitted(name, data)
    stored = model.export_tables().as_stored()
    user = 5
    positions = np.arange(data.n_items)
    served = stored.predict(positions, stored.user_vectors[user], float(stored.user_bias[user]))
    lo, hi = stored.rating_scale
    assert served.min() >= lo and served.max() <= hi
    if not model.ranking_only:
        own = model.predict(np.full(data.n_items, data.user_ids[user]), data.item_ids)
        np.testing.assert_allclose(served, own, atol=1e-4)
    narrow = FactorTables(**{**stored.__dict__, "rating_scale": (2.0, 3.0)})
    clipped = narrow.predict(positions, stored.user_vectors[user], 0.0)
    assert clipped.min() >= 2.0 and clipped.max() <= 3.0


@pytest.mark.parametrize("name", FACTOR_NAMES)
def test_a_user_without_ratings_folds_in_to_the_prior_mean(name: str) -> None:
    model = fitted(name, planted())
    stored = model.export_tables().as_stored()
    vector, bias = make_model(name, model.get_params()).fold_in_from_tables(
        stored, np.empty(0, dtype=np.int64), np.empty(0)
    )
    assert vector.shape == (stored.n_factors,)
    # PureSVD's projection of an empty row is -m^T Q, its documented prior; everyone else is at 0.
    if name != "pure_svd":
        assert not vector.any() and bias == 0.0


@pytest.mark.parametrize("name", SIMILARITY_NAMES)
def test_neighbour_tables_hold_the_top_positive_neighbours_in_rank_order(name: str) -> None:
    data = planted()
    model = fitted(name, data)
    tables = model.export_tables()
    assert isinstance(tables, NeighborTables)
    top = tables.top(5)
    assert len(top) > 0 and (top.scores > 0).all() and np.isfinite(top.scores).all()
    for item in np.unique(top.item_ids)[:10]:
        rows = top.item_ids == item
        assert top.ranks[rows].tolist() == list(range(1, rows.sum() + 1))
        assert np.all(np.diff(top.scores[rows]) <= 0)
        own = [(j, s) for j, s in model.similar_items(item, n=5) if s > 0]
        assert top.neighbor_ids[rows].tolist() == [j for j, _ in own]


def test_non_finite_tables_are_refused_naming_the_array() -> None:
    model = fitted("explicit_als", planted())
    tables = model.export_tables().as_stored()
    tables.item_vectors[3, 1] = np.nan
    with pytest.raises(NonFiniteTablesError, match="item_vectors has 1 NaN"):
        tables.check_finite()
    knn = fitted("item_knn", planted()).export_tables()
    knn.scores[0] = np.inf
    with pytest.raises(NonFiniteTablesError, match="neighbour scores"):
        knn.check_finite()
