"""Thin Celery tasks: arguments in, one service call, retries and limits here."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError, transaction

from ratings.services import item_damped_means_recompute

from .export import ratings_export_shared
from .locks import TrainingAlreadyRunning, TrainingLockLost
from .models import ModelKind
from .services import PromotionRefused, model_train


def _progress(task: Task) -> Any:
    def report(stage: str, percent: int) -> None:
        if task.request.id and not task.request.is_eager:
            task.update_state(state="PROGRESS", meta={"stage": stage, "percent": percent})

    return report


@shared_task(
    bind=True,
    autoretry_for=(OperationalError,),  # transient database trouble: try again later
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=3,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    acks_late=False,  # a killed training run is not redelivered; the schedule retrains anyway
)
def retrain(
    self: Task,
    kind: str | None = None,
    algorithm: str | None = None,
    params: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Train one model version; returns a summary (the version's id, status and metrics)."""
    try:
        version = model_train(
            kind=kind,
            algorithm=algorithm,
            params=params,
            force=force,
            progress=_progress(self),
            task_id=self.request.id or "",
        )
    except TrainingAlreadyRunning as exc:
        return {"status": "refused", "error": str(exc)}
    except PromotionRefused as exc:
        return {"status": "refused", "version": exc.version.pk, "error": str(exc)}
    except TrainingLockLost as exc:  # fenced out: another run took over; nothing of ours serves
        return {"status": "failed", "error": str(exc)}
    return {"status": version.status, "version": version.pk, "metrics": version.metrics}


@shared_task
def retrain_all() -> list[dict[str, Any]]:
    """The nightly job: a fresh global mean for the items' damped means ("Top rated"), then
    the rating, ranking and similarity models, one after another."""
    item_damped_means_recompute()
    with ratings_export_shared():  # one read of the ratings table for the three runs
        return [
            retrain.run(kind=kind) for kind in (ModelKind.RATING, ModelKind.RANKING, ModelKind.SIMILARITY)
        ]


@shared_task
def refresh_similarity() -> dict[str, Any]:
    """The hourly job: recompute item neighbours."""
    return retrain.run(kind=ModelKind.SIMILARITY)  # type: ignore[no-any-return]


def enqueue_retrain(**kwargs: Any) -> None:
    """Queue a retrain once the current transaction commits (never on uncommitted data)."""
    transaction.on_commit(lambda: retrain.delay(**kwargs))


class BrokerUnavailable(RuntimeError):
    """The Celery broker (or its result backend) could not take the task; the message says where."""


def retrain_enqueue(
    *, kind: str, algorithm: str, params: dict[str, Any], force: bool = False, task_id: str | None = None
) -> str:
    """Queue one training run and return its task id, or raise :class:`BrokerUnavailable` at once.

    On the embedded default (eager Celery) the run happens here and now; its
    failure is recorded on its version (and logged), not raised. With a broker,
    the connection is tried first (once, with a short timeout): publishing
    would otherwise retry for long, and the result backend subscribes before
    publishing (20 tries a second apart).
    """
    import uuid

    from kombu.exceptions import OperationalError as BrokerError
    from kombu.utils.url import maybe_sanitize_url

    task_id = task_id or str(uuid.uuid4())
    kwargs = {"kind": kind, "algorithm": algorithm, "params": params, "force": force}
    app = retrain.app
    if app.conf.task_always_eager:
        retrain.apply(kwargs=kwargs, task_id=task_id, throw=False)
        return task_id
    where = f"the Celery broker at {maybe_sanitize_url(app.conf.broker_url)}"
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except (BrokerError, OSError) as exc:
        raise BrokerUnavailable(f"{where} is unreachable ({exc})") from None
    try:
        retrain.apply_async(kwargs=kwargs, task_id=task_id, retry=False)
    except (BrokerError, OSError, RuntimeError) as exc:  # RuntimeError: the result backend gave up
        backend = maybe_sanitize_url(str(app.conf.result_backend))
        raise BrokerUnavailable(
            f"{where} (results: {backend}) refused the task: {' '.join(str(exc).split())}"
        ) from None
    return task_id
