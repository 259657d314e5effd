"""Training through Celery: eagerly on the embedded default, and with a real
worker process on Redis + Postgres (the CI leg that sets REDIS_URL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from recommender.models import ModelVersion, UserFactor, VersionStatus
from recommender.selectors import recommendations_for_user
from recommender.tasks import retrain
from tests.recommender.conftest import plant_ratings

ROOT = Path(__file__).resolve().parents[2]
QUICK = {"factors": 4, "iterations": 5, "regularization": 1.0}
SLOW = {"factors": 64, "iterations": 150, "regularization": 1.0}  # ~4 s per fit on the bigger table
# The rating kind's default (bayesian_svdpp_served) takes Gibbs sweeps, not iterations.
QUICK_RATING = {"factors": 4, "burn_in": 10, "samples": 20, "serving_samples": 10}
SLOW_RATING = {"factors": 8, "burn_in": 20, "samples": 100}  # several seconds per fit on the bigger table

pytestmark = pytest.mark.django_db(transaction=True)
needs_worker = pytest.mark.skipif(
    not settings.REDIS_URL, reason="the real-worker leg runs with REDIS_URL set (make test-postgres)"
)


@pytest.mark.skipif(bool(settings.REDIS_URL), reason="the eager leg is the embedded default (no REDIS_URL)")
def test_retrain_task_runs_eagerly_on_the_embedded_default(planted) -> None:  # type: ignore[no-untyped-def]
    result = retrain.delay(kind="ranking", params=QUICK)
    summary = result.get()
    assert summary["status"] == VersionStatus.ACTIVE
    assert ModelVersion.objects.get(pk=summary["version"]).status == VersionStatus.ACTIVE


class Worker:
    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/tastebase-worker-{queue}.log")

    def start(self, concurrency: int = 1) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "TASTEBASE_TRAINING_LOCK_TTL": "10",
            "DEBUG": "1",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "config",
                "worker",
                "--queues",
                self.queue,
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{self.queue}-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def send(self, **kwargs: Any) -> Any:
        return retrain.apply_async(kwargs=kwargs, queue=self.queue)


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker(queue=f"test-{uuid.uuid4().hex[:8]}")
    yield w
    w.stop()
    if w.log.exists():
        sys.stdout.write(w.log.read_text()[-3000:])


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@needs_worker
def test_a_real_worker_trains_and_activates_a_version(planted, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    worker.start()
    summary = worker.send(kind="ranking", params=QUICK).get(timeout=120)
    assert summary["status"] == VersionStatus.ACTIVE
    version = ModelVersion.objects.get(pk=summary["version"])
    assert version.status == VersionStatus.ACTIVE and version.task_id
    assert UserFactor.objects.filter(version=version).count() == version.n_users > 0
    recs = recommendations_for_user(user=planted.user("action"), limit=5)
    assert len(recs) == 5 and {r.source for r in recs} == {"ranking"}


@needs_worker
def test_two_retrain_requests_at_once_exactly_one_runs(db, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    plant_ratings(n_users=600, n_items=200)
    worker.start(concurrency=2)
    first, second = worker.send(kind="ranking", params=SLOW), worker.send(kind="ranking", params=SLOW)
    outcomes = sorted([first.get(timeout=300)["status"], second.get(timeout=300)["status"]])
    assert outcomes == ["active", "refused"]
    assert ModelVersion.objects.count() == 1


@needs_worker
def test_killing_the_worker_mid_training_keeps_the_active_version_serving(db, worker: Worker) -> None:  # type: ignore[no-untyped-def]
    planted = plant_ratings(n_users=600, n_items=200)
    worker.start()
    live = worker.send(kind="ranking", params=QUICK).get(timeout=120)
    fan = planted.user("action")
    before = [r.item_id for r in recommendations_for_user(user=fan, limit=5)]

    worker.send(kind="ranking", params=SLOW)
    doomed = wait_for(
        lambda: ModelVersion.objects.filter(
            status=VersionStatus.TRAINING, stage__in=["fit", "evaluate", "refit"]
        ).first(),
        what="the slow run to reach the fit stage",
    )
    worker.kill()

    doomed.refresh_from_db()
    assert doomed.status == VersionStatus.TRAINING  # nobody finished it
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == live["version"]
    assert [r.item_id for r in recommendations_for_user(user=fan, limit=5)] == before

    worker.start()

    # The killed run's lock expires after its TTL (10 s here); until then a run is refused.
    def next_run() -> Any:
        summary = worker.send(kind="ranking", params=QUICK, force=True).get(timeout=120)
        return summary if summary["status"] == "active" else None

    summary = wait_for(next_run, timeout=60, what="a retrain after the kill to succeed")
    doomed.refresh_from_db()
    assert doomed.status == VersionStatus.FAILED and "interrupted" in doomed.error
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == summary["version"]


@needs_worker
def test_a_rating_made_during_a_slow_retrain_on_a_real_worker_is_in_the_new_version(
    db, worker: Worker
) -> None:  # type: ignore[no-untyped-def]
    """Issue 7, defect 3: the worker exports, then trains for seconds while a user
    rates; at activation that user is folded into the new version before it serves."""
    import numpy as np

    from ratings.models import Rating
    from ratings.services import rating_upsert
    from recommender.models import vector_from_bytes
    from recommender.serving import load_serving_version

    planted = plant_ratings(n_users=600, n_items=200)
    worker.start()
    first = worker.send(kind="rating", params=QUICK_RATING).get(timeout=120)
    assert first["status"] == VersionStatus.ACTIVE
    result = worker.send(kind="rating", params=SLOW_RATING, force=True)
    wait_for(
        lambda: ModelVersion.objects.filter(
            status=VersionStatus.TRAINING, stage__in=["fit", "judge"]
        ).exists(),
        what="the slow run to pass its export",
    )
    fan = planted.user("action", 7)
    rated = set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))
    new_items = [item for item in planted.items[10:20] if item.pk not in rated][:2]
    for item in new_items:  # two romance films, loved: the fan's taste moves
        rating_upsert(user=fan, item=item, score=5.0)
    summary = result.get(timeout=300)
    assert summary["status"] == VersionStatus.ACTIVE
    new = ModelVersion.objects.get(pk=summary["version"])
    assert new.n_ratings == Rating.objects.count() - len(new_items)  # its export missed them
    stored = UserFactor.objects.get(version=new, user=fan)
    ratings = list(Rating.objects.filter(user=fan).values_list("item_id", "score"))
    expected = load_serving_version(new).fold_in(
        np.array([r[0] for r in ratings], dtype=np.int64), np.array([r[1] for r in ratings], dtype=np.float64)
    )
    assert expected is not None
    np.testing.assert_allclose(vector_from_bytes(stored.vector), expected[0], rtol=1e-5, atol=1e-5)
    assert stored.bias == pytest.approx(expected[1], abs=1e-5)
