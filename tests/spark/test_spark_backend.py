"""The Spark backend through the whole pipeline: retrain on Spark, persist,
gate, activate, serve, fold users in; and a failing Spark job changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from recommender.engine.spark_als import spark_explicit_row_reference
from recommender.models import ItemFactor, ModelVersion, UserFactor, VersionStatus, vector_from_bytes
from recommender.selectors import recommendations_for_user
from recommender.services import model_train
from recommender.serving import serving_cache
from tests.recommender.conftest import Planted, plant_ratings
from tests.spark.conftest import TEST_MASTER

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = {"factors": 4, "iterations": 8}


@pytest.fixture
def planted(db: Any) -> Planted:
    return plant_ratings()


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings: Any) -> Any:
    from django.core.cache import cache

    serving_cache.clear()
    if hasattr(cache, "delete_pattern"):  # only the cache's keys, not another run's lock
        cache.delete_pattern("*")
    else:
        cache.clear()
    settings.TASTEBASE_TRAINING_LOCK_TTL = 5
    yield
    serving_cache.clear()


@pytest.fixture
def spark_settings(settings: Any, spark: Any, tmp_path: Path) -> Any:
    settings.SPARK_MASTER = TEST_MASTER  # the shared session's master: reused, not rebuilt
    settings.TASTEBASE_SPARK_SHARED_DIR = str(tmp_path / "spark-shared")
    return settings


def test_retrain_on_spark_activates_a_version_that_serves_and_folds_in_new_users(
    spark_settings: Any, planted: Any, client: Any, charlie: Any
) -> None:
    call_command(
        "retrain",
        "--backend",
        "spark",
        "--algorithm",
        "explicit_als",
        *(f"--param={k}={v}" for k, v in SMALL.items()),
    )
    version = ModelVersion.objects.get(kind="rating", status=VersionStatus.ACTIVE)
    assert version.algorithm == "spark_als"  # where it trained is recorded, nothing else differs
    assert version.metrics["rmse"] < 1.0
    assert UserFactor.objects.filter(version=version).count() == len(planted.users)

    # It serves: an action fan is recommended the action films they have not rated.
    fan = planted.user("action")
    recs = recommendations_for_user(user=fan, limit=3)
    assert len(recs) == 3 and {r.source for r in recs} == {"rating"}
    assert recs[0].item_id in {i.pk for i in planted.items[:10]}

    # A new user rates on the site and is folded in by Spark's objective.
    client.force_login(charlie)
    scores = [5.0, 4.5, 5.0, 1.0, 4.0]
    rated = [*planted.items[10:14], planted.items[0]]
    for item, score in zip(rated, scores, strict=True):
        client.post(reverse("ratings:rate", args=[item.pk]), {"score": str(score)})
    stored = UserFactor.objects.get(version=version, user=charlie)
    rows = {row.item_id: row for row in ItemFactor.objects.filter(version=version, item__in=rated)}
    y = np.stack([vector_from_bytes(rows[item.pk].vector) for item in rated]).astype(np.float64)
    residual = np.array(scores) - version.global_mean - np.array([rows[item.pk].bias for item in rated])
    bias = residual.sum() / (10.0 + len(scores))  # SparkALS's default bias_regularization
    expected = spark_explicit_row_reference(y, residual - bias, 0.15)  # its default regularization
    np.testing.assert_allclose(vector_from_bytes(stored.vector), expected, rtol=1e-4, atol=1e-5)
    assert stored.bias == pytest.approx(bias, abs=1e-5)
    recs = recommendations_for_user(user=charlie, limit=3)
    assert {r.source for r in recs} == {"rating"}
    assert recs[0].item_id in {i.pk for i in planted.items[10:20]}


def test_a_failing_spark_job_leaves_the_live_version_serving(
    spark_settings: Any, planted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = model_train(kind="rating", algorithm="explicit_als", params=SMALL, backend="local")
    fan = planted.user("romance")
    before = [r.item_id for r in recommendations_for_user(user=fan, limit=5)]

    # The export Spark reads is corrupt: Spark's read job fails inside the run.
    def corrupt_parquet(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"this is not a parquet file")

    monkeypatch.setattr("pyarrow.parquet.write_table", corrupt_parquet)
    with pytest.raises(Exception, match="Job aborted due to stage failure"):
        model_train(kind="rating", algorithm="explicit_als", params=SMALL, backend="spark")

    failed = ModelVersion.objects.get(status=VersionStatus.FAILED)
    assert failed.algorithm == "spark_als" and "SparkException" in failed.error
    assert not UserFactor.objects.filter(version=failed).exists()
    assert ModelVersion.objects.get(kind="rating", status=VersionStatus.ACTIVE).pk == live.pk
    serving_cache.clear()
    assert [r.item_id for r in recommendations_for_user(user=fan, limit=5)] == before
    # The export directory was cleaned up after the failure.
    shared = Path(spark_settings.TASTEBASE_SPARK_SHARED_DIR)
    assert not list(shared.glob("tastebase-spark-*"))
