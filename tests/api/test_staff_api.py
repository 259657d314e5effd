"""The operator's API: any user's list, model versions, retraining, activation, tasks."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from kombu import Connection
from rest_framework.test import APIClient

from recommender.locks import training_lock
from recommender.models import ModelVersion, VersionStatus
from recommender.tasks import retrain
from tests.api.conftest import as_user, assert_error
from tests.recommender.conftest import Planted, plant_ratings
from tests.recommender.test_pipeline import FAST, train

MODELS = reverse("api:models")
RETRAIN = reverse("api:models_retrain")
ROLLBACK = reverse("api:models_rollback")
QUICK = FAST["implicit_als"]


def activate_url(version_id: int) -> str:
    return reverse("api:model_activate", kwargs={"version_id": version_id})


def task_url(task_id: str) -> str:
    return reverse("api:task", kwargs={"task_id": task_id})


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def planted(transactional_db: Any, settings: Any) -> Planted:
    settings.TASTEBASE_TRAINING_LOCK_TTL = 5
    return plant_ratings()


@contextmanager
def celery_conf(**changes: Any) -> Iterator[None]:
    """Celery settings changed for the block (monkeypatch cannot restore them)."""
    conf = retrain.app.conf
    saved = {name: conf[name] for name in changes}
    conf.update(changes)
    try:
        yield
    finally:
        conf.update(saved)


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in-process, as on the embedded default (also on the broker leg)."""
    with celery_conf(task_always_eager=True):
        yield


# ---- who may call ------------------------------------------------------------------------

STAFF_CALLS = [
    ("get", "user_recommendations", {"user_id": 1}, None),
    ("get", "models", {}, None),
    ("post", "models_retrain", {}, {"kind": "ranking"}),
    ("post", "model_activate", {"version_id": 1}, {"force": True}),
    ("post", "models_rollback", {}, {"kind": "ranking"}),
    ("get", "task", {"task_id": "abc"}, None),
]


@pytest.mark.parametrize(("method", "name", "kwargs", "body"), STAFF_CALLS, ids=[c[1] for c in STAFF_CALLS])
def test_staff_endpoints_refuse_everyone_else(
    api: APIClient, charlie: Any, method: str, name: str, kwargs: dict[str, Any], body: Any
) -> None:
    url = reverse(f"api:{name}", kwargs=kwargs)
    assert_error(getattr(api, method)(url, body), 401, "not_authenticated")
    assert_error(getattr(as_user(api, charlie), method)(url, body), 403, "permission_denied")
    assert not ModelVersion.objects.exists()


# ---- a user's recommendations --------------------------------------------------------------


def test_staff_sees_the_list_a_user_sees(api: APIClient, planted: Planted, staff: Any) -> None:
    train("ranking", params=QUICK)
    fan = planted.user("romance")
    url = reverse("api:user_recommendations", kwargs={"user_id": fan.pk})

    as_staff = as_user(api, staff).get(url, {"n": 4}).json()
    as_fan = as_user(APIClient(), fan).get(reverse("api:me_recommendations"), {"n": 4}).json()

    assert as_staff == as_fan
    assert as_staff["source"] == "ranking" and len(as_staff["results"]) == 4


def test_an_unknown_user_is_a_404_and_bad_parameters_a_400(api: APIClient, staff: Any) -> None:
    as_user(api, staff)
    assert_error(api.get(reverse("api:user_recommendations", kwargs={"user_id": 999_999})), 404, "not_found")
    url = reverse("api:user_recommendations", kwargs={"user_id": staff.pk})
    assert_error(api.get(url, {"n": "1000"}), 400, "invalid")


# ---- model versions ------------------------------------------------------------------------


def test_models_lists_versions_with_their_metrics_and_progress(
    api: APIClient, planted: Planted, staff: Any
) -> None:
    ranking = train("ranking", params=QUICK)
    rating = train("rating")
    as_user(api, staff)

    page = api.get(MODELS).json()
    only_ranking = api.get(MODELS, {"kind": "ranking"}).json()

    assert page["count"] == 2 and [v["id"] for v in page["results"]] == [rating.pk, ranking.pk]
    version = only_ranking["results"][0]
    assert only_ranking["count"] == 1 and version["id"] == ranking.pk
    assert version["kind"] == "ranking" and version["algorithm"] == "implicit_als"
    assert version["status"] == "active" and version["stage"] == "done" and version["progress"] == 100
    assert 0 <= version["metrics"]["ndcg@10"] <= 1
    assert {"export", "fit", "persist"} <= set(version["timings"])
    assert version["fold_in_failures"] == 0 and "holdout" in version["evaluation"]
    assert version["created_at"] and version["finished_at"] and version["activated_at"]
    assert_error(api.get(MODELS, {"kind": "popularity"}), 400, "invalid")
    assert_error(api.get(MODELS, {"status": "done"}), 400, "invalid")


# ---- retraining -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({"kind": "popularity"}, "kind"),
        ({"kind": "ranking", "algorithm": "no_such_model"}, "algorithm"),
        ({"kind": "ranking", "algorithm": "global_mean"}, "algorithm"),  # cannot be served
        ({"kind": "ranking", "algorithm": "explicit_als"}, "algorithm"),  # a rating model
        ({"kind": "ranking", "params": {"no_such_param": 1}}, "params"),
        ({"kind": "ranking", "params": {"factors": "many"}}, "params"),
        ({"kind": "ranking", "params": {"factors": [4]}}, "params"),
        ({"kind": "ranking", "params": ["factors=4"]}, "params"),
    ],
)
def test_a_retrain_request_is_checked_against_the_registry_before_queuing(
    api: APIClient, staff: Any, body: dict[str, Any], field: str
) -> None:
    error = assert_error(as_user(api, staff).post(RETRAIN, body), 400, "invalid")
    assert set(error["fields"]) == {field}
    assert not ModelVersion.objects.exists()


def test_retrain_answers_202_with_a_task_whose_progress_staff_can_follow(
    api: APIClient, planted: Planted, staff: Any, eager: None
) -> None:
    as_user(api, staff)

    response = api.post(RETRAIN, {"kind": "ranking", "params": QUICK})

    assert response.status_code == 202
    body = response.json()
    assert body["kind"] == "ranking" and body["algorithm"] == "implicit_als"
    task = api.get(task_url(body["task_id"])).json()
    version = ModelVersion.objects.get(task_id=body["task_id"])
    # Run in-process: Celery keeps no eager result, the version has the outcome.
    assert task["task_id"] == body["task_id"] and task["state"] == "PENDING"
    assert task["version"] == {
        "id": version.pk,
        "kind": "ranking",
        "algorithm": "implicit_als",
        "status": "active",
        "stage": "done",
        "percent": 100,
        "error": "",
    }
    assert version.hyperparameters["factors"] == QUICK["factors"]


def test_a_failing_eager_run_is_recorded_on_its_version_not_a_500(
    api: APIClient, planted: Planted, staff: Any, eager: None
) -> None:
    as_user(api, staff)
    body = api.post(RETRAIN, {"kind": "ranking", "params": {"factors": -3}}).json()

    task = api.get(task_url(body["task_id"])).json()

    assert task["version"]["status"] == "failed" and task["version"]["error"]


def test_retrain_is_refused_with_409_while_a_training_run_holds_the_lock(
    api: APIClient, planted: Planted, staff: Any, eager: None
) -> None:
    as_user(api, staff)
    with training_lock():
        error = assert_error(api.post(RETRAIN, {"kind": "ranking", "params": QUICK}), 409, "conflict")
    assert "training run is in progress" in error["message"]
    assert not ModelVersion.objects.exists()
    assert api.post(RETRAIN, {"kind": "ranking", "params": QUICK}).status_code == 202  # free again


def test_retrain_answers_503_when_the_broker_is_unreachable(
    api: APIClient, staff: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retrain.app, "connection_for_write", lambda **kwargs: Connection(closed_port_url()))

    with celery_conf(task_always_eager=False):
        error = assert_error(as_user(api, staff).post(RETRAIN, {"kind": "ranking"}), 503, "unavailable")

    assert "broker" in error["message"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="the real-worker leg runs with REDIS_URL set")
def test_a_retrain_queued_on_the_broker_reports_progress_from_a_real_worker(
    api: APIClient, planted: Planted, staff: Any
) -> None:
    from tests.recommender.test_celery import Worker, wait_for

    # Only this test's worker listens on its queue: nothing queued elsewhere reaches it.
    worker = Worker(queue=f"api-test-{uuid.uuid4().hex[:8]}")
    as_user(api, staff)
    seen: list[str] = []

    def finished(task_id: str) -> dict[str, Any] | None:
        task: dict[str, Any] = api.get(task_url(task_id)).json()
        seen.append(task["state"])
        return task if task["state"] in ("SUCCESS", "FAILURE") else None

    with celery_conf(task_default_queue=worker.queue):
        worker.start()
        try:
            queued = api.post(RETRAIN, {"kind": "ranking", "params": QUICK})
            assert queued.status_code == 202, queued.json()
            task_id = queued.json()["task_id"]
            task = wait_for(lambda: finished(task_id), timeout=120, what="the queued retrain to finish")
        finally:
            worker.stop()

    assert task["state"] == "SUCCESS", task
    assert task["result"]["status"] == "active"
    assert task["version"]["id"] == task["result"]["version"]
    assert task["version"]["stage"] == "done" and task["version"]["percent"] == 100
    assert set(seen) <= {"PENDING", "STARTED", "PROGRESS", "SUCCESS"}


def test_an_unknown_task_is_pending_as_celery_says(api: APIClient, staff: Any) -> None:
    task = as_user(api, staff).get(task_url("no-such-task")).json()
    assert task == {
        "task_id": "no-such-task",
        "state": "PENDING",
        "result": None,
        "error": "",
        "version": None,
    }


# ---- activation and rollback -------------------------------------------------------------------


def test_activation_the_gate_refuses_is_a_409_with_its_reason_and_force_overrides(
    api: APIClient, planted: Planted, staff: Any
) -> None:
    good = train("rating")
    with pytest.raises(Exception, match="promotion gate refused"):
        train("rating", params={"serving_regularization": 1e5})  # users folded in to ~0: item means only
    worse = ModelVersion.objects.get(status=VersionStatus.READY)
    as_user(api, staff)

    error = assert_error(api.post(activate_url(worse.pk), {"force": False}), 409, "conflict")
    assert error["message"].startswith(f"promotion gate refused version #{worse.pk}")
    assert ModelVersion.objects.get(kind="rating", status="active").pk == good.pk

    forced = api.post(activate_url(worse.pk), {"force": True})
    assert forced.status_code == 200 and forced.json()["status"] == "active"
    good.refresh_from_db()
    assert good.status == VersionStatus.RETIRED


def test_activating_an_unknown_or_failed_version(api: APIClient, staff: Any) -> None:
    failed = ModelVersion.objects.create(kind="ranking", algorithm="implicit_als", status="failed")
    as_user(api, staff)
    assert_error(api.post(activate_url(999_999), {}), 404, "not_found")
    error = assert_error(api.post(activate_url(failed.pk), {"force": True}), 409, "conflict")
    assert "failed" in error["message"]
    assert_error(api.post(activate_url(failed.pk), {"force": "perhaps"}), 400, "invalid")


def test_rollback_reactivates_the_previous_version(api: APIClient, planted: Planted, staff: Any) -> None:
    first = train("ranking", params=QUICK)
    second = train("ranking", params=QUICK, force=True)
    as_user(api, staff)

    back = api.post(ROLLBACK, {"kind": "ranking"})

    assert back.status_code == 200 and back.json()["id"] == first.pk and back.json()["status"] == "active"
    forward = api.post(ROLLBACK, {"kind": "ranking", "to": second.pk}).json()
    assert forward["id"] == second.pk and forward["status"] == "active"
    assert_error(api.post(ROLLBACK, {"kind": "rating"}), 409, "conflict")  # nothing to go back to
    assert_error(api.post(ROLLBACK, {"kind": "ranking", "to": 999_999}), 409, "conflict")
    assert_error(api.post(ROLLBACK, {"kind": "nope"}), 400, "invalid")
