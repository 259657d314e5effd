"""The Spark models' fold-in is a direct solve of Spark's objective (pure numpy, no Spark).

Checked two ways: against the slow references (which for the implicit model
sums over every item, not through the Gram shortcut) and by the optimality
condition itself (the objective's gradient is zero at the folded vector).
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine.spark_als import (
    SparkALS,
    SparkImplicitALS,
    spark_explicit_row_reference,
    spark_implicit_row_reference,
)
from recommender.engine.tables import FactorTables

NEEDS_SPARK = False


def random_tables(n_items: int = 30, k: int = 5, seed: int = 0) -> FactorTables:
    rng = np.random.default_rng(seed)
    return FactorTables(
        item_ids=np.arange(n_items) * 10,
        item_vectors=rng.normal(0.0, 0.5, (n_items, k)).astype(np.float32),
        item_bias=rng.normal(0.0, 0.3, n_items).astype(np.float32),
        global_mean=3.6,
        rating_scale=(0.5, 5.0),
    )


def new_user(n_items: int, n_rated: int = 7, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.choice(n_items, size=n_rated, replace=False)
    return items, rng.choice(np.arange(0.5, 5.5, 0.5), size=n_rated)


@pytest.mark.parametrize("residuals", ["baseline", "mean", "none"])
def test_explicit_fold_in_solves_spark_als_wr_objective(residuals: str) -> None:
    tables = random_tables()
    if residuals != "baseline":  # what fit() stores for these modes
        tables.item_bias = np.zeros_like(tables.item_bias)
    if residuals == "none":
        tables.global_mean = 0.0
    items, r = new_user(30)
    model = SparkALS(factors=5, regularization=0.2, residuals=residuals, bias_regularization=4.0)
    vector, bias = model.fold_in_from_tables(tables, items, r)

    residual = r - tables.global_mean - tables.item_bias[items].astype(np.float64)
    expected_bias = residual.sum() / (4.0 + items.size) if residuals == "baseline" else 0.0
    assert bias == pytest.approx(expected_bias, rel=1e-12)
    y = tables.item_vectors[items].astype(np.float64)
    t = residual - expected_bias
    np.testing.assert_allclose(vector, spark_explicit_row_reference(y, t, 0.2), rtol=1e-10)
    # Zero gradient of sum (t - y.x)^2 + lambda n |x|^2: Spark's ALS-WR penalty, scaled by n.
    gradient = -2 * y.T @ (t - y @ vector) + 2 * 0.2 * items.size * vector
    np.testing.assert_allclose(gradient, 0.0, atol=1e-9)
    # Not the constant penalty of plain ridge: that solve differs.
    ridge = np.linalg.solve(y.T @ y + 0.2 * np.eye(5), y.T @ t)
    assert not np.allclose(vector, ridge, rtol=1e-3)


def test_implicit_fold_in_solves_spark_implicit_objective_over_every_item() -> None:
    tables = random_tables(n_items=40, k=4, seed=3)
    items, r = new_user(40, n_rated=9, seed=4)
    model = SparkImplicitALS(factors=4, regularization=0.3, alpha=2.0)
    vector, bias = model.fold_in_from_tables(tables, items, r)
    assert bias == 0.0
    # Spark sees t = r - r_min + 1 > 0: every rating is a positive preference.
    t = r - tables.rating_scale[0] + 1.0
    reference = spark_implicit_row_reference(tables.item_vectors, items, t, 0.3, 2.0)
    np.testing.assert_allclose(vector, reference, rtol=1e-8)


def test_no_ratings_fold_in_to_the_prior() -> None:
    tables = random_tables()
    empty = np.array([], dtype=np.int64)
    for model in (SparkALS(factors=5), SparkImplicitALS(factors=5)):
        vector, bias = model.fold_in_from_tables(tables, empty, [])
        assert bias == 0.0 and not vector.any() and vector.shape == (5,)
