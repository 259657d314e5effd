"""Retrain now: the form queues a run through the staff API's function, and the progress
endpoint follows the version it creates to a final state."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from kombu import Connection

from recommender.dashboard import training_progress
from recommender.locks import training_lock
from recommender.models import ModelVersion, VersionStatus
from recommender.tasks import retrain
from tests.api.test_staff_api import celery_conf, closed_port_url
from tests.recommender.conftest import Planted
from tests.recommender.test_pipeline import train

from .conftest import HTMX, section

RETRAIN = reverse("dashboard:retrain")
QUICK = "factors=4 iterations=8 regularization=1.0"


def task_url(task_id: str) -> str:
    return reverse("dashboard:task", kwargs={"task_id": task_id})


def progress_of(html: str) -> tuple[str, str]:
    """The progress bar's state and percent."""
    state = re.search(r'id="training-progress" data-state="(\w+)"', html)
    percent = re.search(r'aria-valuenow="(\d+)" aria-label="Training progress"', html)
    assert state and percent, html
    return state.group(1), percent.group(1)


def polls(html: str) -> bool:
    return 'hx-trigger="every 1s"' in html


def test_retrain_now_runs_in_process_and_answers_with_the_final_state_and_the_new_panel(
    as_staff: Client, planted: Planted, eager: None
) -> None:
    response = as_staff.post(
        RETRAIN, {"kind": "ranking", "algorithm": "implicit_als", "params": QUICK}, **HTMX
    )

    html = response.content.decode()
    version = ModelVersion.objects.get()
    assert response.status_code == 200
    assert version.status == VersionStatus.ACTIVE and version.hyperparameters["factors"] == 4
    assert progress_of(html) == ("live", "100")
    assert not polls(html)
    assert f"#{version.pk} implicit_als is live" in html
    assert "it passed the promotion gate: holdout ndcg@10" in html
    # The ranking panel and live card come along out of band: the page shows the new version.
    assert 'id="kind-ranking" aria-labelledby="kind-ranking-title" hx-swap-oob="true"' in html
    assert f'id="version-{version.pk}"' in section(html, "kind-ranking")
    assert 'id="live-ranking" hx-swap-oob="true"' in html
    # The progress endpoint says the same, from the version (Celery keeps no eager result).
    polled = as_staff.get(task_url(version.task_id), **HTMX).content.decode()
    assert progress_of(polled) == ("live", "100") and not polls(polled)


def test_a_run_the_gate_refuses_ends_refused_with_the_gates_reason(
    as_staff: Client, planted: Planted, eager: None
) -> None:
    live = train("rating")

    html = as_staff.post(
        RETRAIN, {"kind": "rating", "params": "serving_regularization=100000 samples=20"}, **HTMX
    ).content.decode()

    refused = ModelVersion.objects.get(status=VersionStatus.READY)
    assert progress_of(html) == ("refused", "100")
    assert f"#{refused.pk} bayesian_svdpp_served was trained but not activated" in html
    assert f"promotion gate refused version #{refused.pk}: holdout rmse" in html
    assert f"active version #{live.pk}" in html
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == live.pk


def test_a_failing_run_ends_failed_with_its_error(as_staff: Client, planted: Planted, eager: None) -> None:
    html = as_staff.post(RETRAIN, {"kind": "ranking", "params": "factors=-3"}, **HTMX).content.decode()

    failed = ModelVersion.objects.get()
    assert failed.status == VersionStatus.FAILED and failed.error
    state, _ = progress_of(html)
    assert state == "failed" and not polls(html)
    assert escape(failed.error.splitlines()[0]) in html


def test_without_javascript_retrain_redirects_to_a_progress_page(
    as_staff: Client, planted: Planted, eager: None
) -> None:
    response = as_staff.post(RETRAIN, {"kind": "similarity", "params": "k=10"})

    version = ModelVersion.objects.get()
    assert response.status_code == 302 and response["Location"] == task_url(version.task_id)
    page = as_staff.get(response["Location"]).content.decode()
    assert "<!doctype html>" in page and "This run has ended." in page
    assert progress_of(page) == ("live", "100")
    assert 'http-equiv="refresh"' not in page  # ended: nothing to follow


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"kind": "ranking", "algorithm": "explicit_als"},
            "algorithm",
            "trains a rating model, not a ranking model",
        ),
        ({"kind": "ranking", "params": "no_such_param=1"}, "params", "unknown parameter 'no_such_param'"),
        ({"kind": "ranking", "params": "factors=many"}, "params", "is not a valid int"),
        ({"kind": "ranking", "params": "factors"}, "params", "is not of the form key=value"),
        ({"kind": "popularity"}, "kind", "Select a valid choice"),
        ({"kind": "ranking", "algorithm": "global_mean"}, "algorithm", "Select a valid choice"),
    ],
)
def test_a_bad_request_is_shown_on_its_field_and_queues_nothing(
    as_staff: Client, db: Any, eager: None, body: dict[str, str], field: str, message: str
) -> None:
    htmx = as_staff.post(RETRAIN, body, **HTMX)
    plain = as_staff.post(RETRAIN, body)

    card = htmx.content.decode()
    assert htmx.status_code == 200 and card.lstrip().startswith('<section class="dash-card dash-retrain"')
    errors = re.search(rf'<label for="id_{field}">.*?<ul class="errorlist">(.*?)</ul>', card, flags=re.S)
    assert errors and escape(message) in errors.group(1), card
    assert plain.status_code == 400 and escape(message) in plain.content.decode()
    assert not ModelVersion.objects.exists()


def test_retrain_is_refused_while_a_training_run_holds_the_lock(
    as_staff: Client, planted: Planted, eager: None
) -> None:
    with training_lock():
        html = as_staff.post(RETRAIN, {"kind": "ranking", "params": QUICK}, **HTMX).content.decode()

    assert "a training run is in progress" in html and 'role="alert"' in html
    assert not ModelVersion.objects.exists()


def test_retrain_says_when_the_broker_is_unreachable(
    as_staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retrain.app, "connection_for_write", lambda **kwargs: Connection(closed_port_url()))

    with celery_conf(task_always_eager=False):
        html = as_staff.post(RETRAIN, {"kind": "ranking"}, **HTMX).content.decode()

    assert "could not queue the training run" in html and "broker" in html
    assert not ModelVersion.objects.exists()


# ---- the progress endpoint on its own ------------------------------------------------------------


def test_a_run_in_progress_shows_its_stage_and_percent_and_keeps_polling(as_staff: Client) -> None:
    version = ModelVersion.objects.create(
        kind="ranking", algorithm="implicit_als", status="training", stage="fit", progress=15, task_id="t-1"
    )

    html = as_staff.get(task_url("t-1"), **HTMX).content.decode()
    page = as_staff.get(reverse("dashboard:index")).content.decode()

    assert progress_of(html) == ("running", "15")
    assert polls(html) and f'hx-get="{task_url("t-1")}"' in html
    assert f"Training #{version.pk} implicit_als" in html and "Stage <strong>fit</strong>" in html
    # Whoever opens the dashboard meanwhile sees the same bar, following the run.
    assert progress_of(section(page, "retrain-card")) == ("running", "15")
    full = as_staff.get(task_url("t-1")).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in full  # follows without JS too


def test_a_queued_task_waits_for_a_worker_and_an_eager_one_without_a_version_did_not_start(db: Any) -> None:
    with celery_conf(task_always_eager=False):
        queued = training_progress(task_id="no-such-task")
    with celery_conf(task_always_eager=True):
        vanished = training_progress(task_id="no-such-task")

    assert (queued.state, queued.final) == ("queued", False)
    assert (vanished.state, vanished.final) == ("failed", True)
    assert "another training run held the lock" in vanished.detail


def test_a_version_that_was_live_and_then_replaced_is_a_final_state(db: Any) -> None:
    ModelVersion.objects.create(kind="rating", algorithm="explicit_als", status="retired", task_id="t-2")

    progress = training_progress(task_id="t-2")

    assert progress.state == "replaced" and progress.final and progress.percent == 100
