"""Spark-trained models on ML-100K with ``local[2]``: quality beside the engine's
ALS, and that the fold-in math is what Spark itself minimizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recommender.engine import Interactions
from recommender.engine.als import ExplicitALS
from recommender.engine.implicit_als import ImplicitALS
from recommender.engine.metrics import evaluate_ranking, evaluate_ratings
from recommender.engine.spark_als import SparkALS, SparkImplicitALS, spark_runtime
from recommender.engine.split import per_user_split

RANK = 10


@pytest.fixture(scope="module")
def ml100k_split() -> tuple[Interactions, Interactions]:
    from ratings.demo_data import ml100k_arrays

    users, items, ratings, _ = ml100k_arrays()
    # The pipeline's holdout: 10 % of each user's ratings, seed 0.
    return per_user_split(Interactions.from_arrays(users, items, ratings), test_fraction=0.1, random_state=0)


@pytest.fixture(scope="module")
def spark_model(spark: Any, ml100k_split: tuple[Interactions, Interactions]) -> SparkALS:
    with spark_runtime(lambda: spark):
        return SparkALS(factors=RANK).fit(ml100k_split[0])


def test_spark_als_holdout_rmse_is_within_001_of_the_engine_als_at_the_same_rank(
    spark_model: SparkALS, ml100k_split: tuple[Interactions, Interactions]
) -> None:
    train, test = ml100k_split
    spark_rmse = evaluate_ratings(spark_model, test)["rmse"]
    # The engine's ALS on the objective Spark minimizes (ALS-WR: lambda n_u), lambda
    # chosen on a validation split (recommender/engine/spark_als.py's docstring).
    als_wr = ExplicitALS(
        factors=RANK, regularization=0.12, bias_regularization=0.12, regularization_exponent=1.0
    )
    als_wr_rmse = evaluate_ratings(als_wr.fit(train), test)["rmse"]
    # The engine's defaults penalize lambda sqrt(n), which Spark cannot express.
    default_rmse = evaluate_ratings(ExplicitALS(factors=RANK).fit(train), test)["rmse"]
    print(
        f"holdout RMSE: spark_als {spark_rmse:.4f}, ALS-WR {als_wr_rmse:.4f}, explicit_als {default_rmse:.4f}"
    )
    assert spark_rmse < 0.93  # a real model: the baseline alone scores about 0.94
    assert spark_rmse <= als_wr_rmse + 0.01
    assert spark_rmse <= default_rmse + 0.015  # measured gap 0.0125 (docs/scaling.md)


def test_spark_implicit_als_ranks_as_well_as_the_engine_implicit_als_at_the_same_rank(
    spark: Any, ml100k_split: tuple[Interactions, Interactions]
) -> None:
    train, test = ml100k_split
    with spark_runtime(lambda: spark):
        spark_ndcg = evaluate_ranking(SparkImplicitALS(factors=RANK).fit(train), train, test, k=10)["ndcg@10"]
    engine_ndcg = evaluate_ranking(ImplicitALS(factors=RANK).fit(train), train, test, k=10)["ndcg@10"]
    print(f"holdout NDCG@10: spark_implicit_als {spark_ndcg:.4f}, implicit_als {engine_ndcg:.4f}")
    assert spark_ndcg >= engine_ndcg - 0.01


def test_a_training_user_folds_in_to_the_vector_spark_trained(spark_model: SparkALS) -> None:
    """Spark solves users last, so its user vectors are the direct solve of its
    objective on its final items: the fold-in must reproduce them."""
    tables = spark_model.export_tables()
    csr = spark_model.data_.csr
    for user in (0, 17, 500, 942):
        items = csr.indices[csr.indptr[user] : csr.indptr[user + 1]]
        ratings = csr.data[csr.indptr[user] : csr.indptr[user + 1]]
        vector, bias = spark_model.fold_in_from_tables(tables, items, ratings)
        np.testing.assert_allclose(vector, tables.user_vectors[user], rtol=1e-3, atol=2e-5)
        assert bias == pytest.approx(float(tables.user_bias[user]), abs=1e-5)


def test_a_new_user_is_scored_from_the_folded_vector(spark_model: SparkALS) -> None:
    liked = [int(i) for i in spark_model.data_.item_ids[:5]]
    vector, bias = spark_model.fold_in(liked, [5.0] * 5)
    scores = spark_model.score_vector(vector, bias)
    assert np.isfinite(scores).all() and scores.shape == (spark_model.data_.n_items,)
    # Scoring: mu + b_u + c_i + x_u . y_i, the tables' one formula.
    tables = spark_model.export_tables()
    expected = tables.global_mean + bias + tables.item_bias + tables.item_vectors.astype(np.float64) @ vector
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_spark_implicit_als_training_users_fold_in_to_their_trained_vectors(spark: Any) -> None:
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((60, 40)) < 0.25)
    data = Interactions.from_arrays(users, items, rng.integers(1, 6, users.size).astype(np.float32))
    with spark_runtime(lambda: spark):
        model = SparkImplicitALS(factors=4, regularization=0.05, alpha=2.0, iterations=8).fit(data)
    tables = model.export_tables()
    assert tables.global_mean == 0.0 and not tables.item_bias.any()
    csr = data.csr
    for user in range(0, 60, 7):
        row = slice(csr.indptr[user], csr.indptr[user + 1])
        vector, _ = model.fold_in_from_tables(tables, csr.indices[row], csr.data[row])
        np.testing.assert_allclose(vector, tables.user_vectors[user], rtol=1e-3, atol=2e-5)
    assert model.recommend(int(data.user_ids[0]), n=5)


def test_without_a_configured_session_a_fit_says_how_to_give_one(spark: Any) -> None:
    data = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])
    with pytest.raises(RuntimeError, match="spark_runtime"):
        SparkALS(factors=2).fit(data)
