"""The configured hyperparameters of each kind's default algorithm (TASTEBASE_DEFAULT_PARAMS)."""

from __future__ import annotations

from typing import Any

import pytest

from recommender.services import model_train

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_default_similarity_model_trains_with_the_configured_measure(planted: Any, settings: Any) -> None:
    assert settings.TASTEBASE_DEFAULT_PARAMS["similarity"] == {
        "similarity": "jaccard",
        "shrinkage": "250",
        "min_support": "1",
    }
    version = model_train(kind="similarity")
    assert version.hyperparameters["similarity"] == "jaccard"
    assert float(version.hyperparameters["shrinkage"]) == 250.0


def test_a_runs_own_params_override_the_configured_ones_key_by_key(planted: Any) -> None:
    version = model_train(kind="similarity", params={"shrinkage": "10", "k": "5"})
    assert version.hyperparameters["similarity"] == "jaccard"  # still the configured measure
    assert float(version.hyperparameters["shrinkage"]) == 10.0 and int(version.hyperparameters["k"]) == 5


def test_another_algorithm_for_the_kind_gets_its_own_defaults(planted: Any, settings: Any) -> None:
    settings.TASTEBASE_DEFAULT_PARAMS = {**settings.TASTEBASE_DEFAULT_PARAMS, "ranking": {"factors": "3"}}
    version = model_train(kind="ranking", algorithm="pure_svd", params={"factors": 4})
    assert int(version.hyperparameters["factors"]) == 4  # pure_svd is not the ranking default: nothing merged
    implicit = model_train(kind="ranking", params={"iterations": 3}, force=True)
    assert int(implicit.hyperparameters["factors"]) == 3
