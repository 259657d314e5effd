"""The engine's conformance checks (tests/engine/test_conformance.py) on the Spark
models, fitted once on the designed data set with a ``local[2]`` session.

The engine suite skips the Spark models (it has no Spark session); here each is
fitted on Spark and handed to the suite's read-only checks through its shared
cache of fitted models, so both models pass the same contract as every other.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from recommender.engine import Interactions
from recommender.engine.registry import make_model
from recommender.engine.spark_als import spark_runtime
from tests.engine import test_conformance as conformance

CHECKS: list[Callable[[str, Interactions], None]] = [
    conformance.test_unknown_user_and_item_get_finite_fallbacks_in_scale,
    conformance.test_user_with_a_single_rating,
    conformance.test_known_best_item_ranks_first,
    conformance.test_recommend_excludes_seen_items_and_sorts_scores,
]


@pytest.fixture(scope="module")
def designed() -> Interactions:
    return Interactions.from_arrays(*conformance.designed_rows())


@pytest.fixture(scope="module")
def spark_fitted(spark: Any, designed: Interactions) -> Iterator[None]:
    with spark_runtime(lambda: spark):
        for name in sorted(conformance.SPARK):
            conformance._FITTED[name] = make_model(name, conformance.params_for(name)).fit(designed)
    yield
    for name in conformance.SPARK:
        conformance._FITTED.pop(name, None)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(conformance.SPARK))
def test_spark_models_pass_the_engine_conformance_checks(
    name: str, check: Callable[[str, Interactions], None], designed: Interactions, spark_fitted: None
) -> None:
    check(name, designed)


def test_a_spark_model_pickles_without_its_session(spark: Any, designed: Interactions) -> None:
    with spark_runtime(lambda: spark):
        model = make_model("spark_als", conformance.params_for("spark_als")).fit(designed)
    users, items, _ = designed.to_coo_arrays()
    raw_users, raw_items = designed.user_ids[users[:20]], designed.item_ids[items[:20]]
    copy = pickle.loads(pickle.dumps(model))
    assert (copy.predict(raw_users, raw_items) == model.predict(raw_users, raw_items)).all()
