"""The configured hyperparameters of each kind's default algorithm (TASTEBASE_DEFAULT_PARAMS)."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from typing import Any

import pytest

from recommender.engine.als import ExplicitALS
from recommender.services import default_algorithm, model_train

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


# ---- the large-catalog rule (TASTEBASE_LARGE_CATALOG_*) ---------------------------------


def test_the_rating_default_is_the_bayesian_model_and_explicit_als_above_the_threshold(settings: Any) -> None:
    assert settings.TASTEBASE_DEFAULT_ALGORITHMS["rating"] == "bayesian_svdpp_served"
    assert settings.TASTEBASE_LARGE_CATALOG_ALGORITHMS == {"rating": "explicit_als"}
    threshold = settings.TASTEBASE_LARGE_CATALOG_RATINGS
    assert default_algorithm("rating", ratings=threshold) == "bayesian_svdpp_served"
    assert default_algorithm("rating", ratings=threshold + 1) == "explicit_als"
    # Kinds without a large-catalog entry keep their default at any size.
    assert default_algorithm("ranking", ratings=10**9) == settings.TASTEBASE_DEFAULT_ALGORITHMS["ranking"]


def test_a_run_without_an_algorithm_counts_the_ratings_table(planted: Any, settings: Any) -> None:
    from ratings.models import Rating

    n = Rating.objects.count()
    settings.TASTEBASE_LARGE_CATALOG_RATINGS = n - 1
    settings.TASTEBASE_DEFAULT_PARAMS = {**settings.TASTEBASE_DEFAULT_PARAMS, "rating": {"factors": "3"}}
    version = model_train(kind="rating", params={"iterations": 3})
    assert version.algorithm == "explicit_als"
    # The rating default's configured params belong to the Bayesian model, not to its stand-in.
    assert int(version.hyperparameters["factors"]) == ExplicitALS().factors
    settings.TASTEBASE_LARGE_CATALOG_RATINGS = n
    assert default_algorithm("rating") == "bayesian_svdpp_served"


def test_the_retrain_command_uses_the_rule(planted: Any, settings: Any) -> None:
    from django.core.management import call_command

    from ratings.models import Rating
    from recommender.models import ModelVersion

    settings.TASTEBASE_LARGE_CATALOG_RATINGS = Rating.objects.count() - 1
    settings.TASTEBASE_DEFAULT_PARAMS = {
        "rating": {},
        "ranking": {"factors": "4", "iterations": "3"},
        "similarity": {"k": "5"},
    }
    call_command("retrain", "--force", stdout=StringIO(), stderr=StringIO())
    assert set(ModelVersion.objects.values_list("kind", "algorithm")) == {
        ("rating", "explicit_als"),
        ("ranking", settings.TASTEBASE_DEFAULT_ALGORITHMS["ranking"]),
        ("similarity", settings.TASTEBASE_DEFAULT_ALGORITHMS["similarity"]),
    }


def test_setting_the_large_algorithm_to_none_turns_the_rule_off() -> None:
    code = "from django.conf import settings; print(sorted(settings.TASTEBASE_LARGE_CATALOG_ALGORITHMS))"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "TASTEBASE_RATING_ALGORITHM_LARGE": "none",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
