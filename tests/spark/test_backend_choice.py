"""Choosing the training backend: the setting, ``retrain --backend``, and what
each sends to the pipeline. None of this needs Spark, so it runs everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from recommender.management.commands.retrain import Command as RetrainCommand
from recommender.spark import backend_algorithm
from tests.test_settings import _start

NEEDS_SPARK = False


def test_the_spark_backend_swaps_only_the_algorithms_with_a_spark_twin(settings: Any) -> None:
    assert backend_algorithm("explicit_als", backend="spark") == "spark_als"
    assert backend_algorithm("implicit_als", backend="spark") == "spark_implicit_als"
    assert backend_algorithm("item_knn", backend="spark") == "item_knn"
    assert backend_algorithm("explicit_als", backend="local") == "explicit_als"
    assert backend_algorithm("spark_als", backend="local") == "spark_als"  # named explicitly: Spark
    settings.TASTEBASE_TRAINING_BACKEND = "spark"
    assert backend_algorithm("explicit_als") == "spark_als"
    with pytest.raises(ValueError, match="backend"):
        backend_algorithm("explicit_als", backend="gpu")


def test_an_unknown_backend_stops_start_up_naming_the_variable() -> None:
    result = _start(DEBUG="1", TASTEBASE_TRAINING_BACKEND="gpu")
    assert result.returncode != 0
    assert "TASTEBASE_TRAINING_BACKEND='gpu' is not one of: local, spark" in result.stderr
    started = _start(DEBUG="1", TASTEBASE_TRAINING_BACKEND="spark", SPARK_MASTER="spark://spark-master:7077")
    assert started.returncode == 0, started.stderr


@pytest.mark.django_db
def test_retrain_backend_spark_queues_the_spark_algorithms(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    queued: list[tuple[str, str]] = []

    def enqueue(self: Any, kind: str, algorithm: str, params: dict[str, Any], force: bool) -> str:
        queued.append((kind, algorithm))
        return f"task-{len(queued)}"

    monkeypatch.setattr(RetrainCommand, "_enqueue", enqueue)
    # A large catalog: the rating default is explicit_als, which Spark trains as spark_als.
    settings.TASTEBASE_LARGE_CATALOG_RATINGS = -1
    call_command("retrain", "--backend", "spark", "--async")
    assert sorted(queued) == [
        ("ranking", "spark_implicit_als"),
        ("rating", "spark_als"),
        ("similarity", "item_knn"),
    ]
    # Below the threshold the Bayesian rating default has no Spark twin and trains in the worker.
    queued.clear()
    settings.TASTEBASE_LARGE_CATALOG_RATINGS = 2_000_000
    call_command("retrain", "--backend", "spark", "--async")
    assert ("rating", "bayesian_svdpp_served") in queued and ("ranking", "spark_implicit_als") in queued


@pytest.mark.django_db
def test_retrain_backend_local_cannot_be_queued() -> None:
    with pytest.raises(CommandError, match="--async"):
        call_command("retrain", "--backend", "local", "--async")
