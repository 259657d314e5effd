"""Is Tastebase able to serve? The checks behind ``GET /api/v1/health/``.

* **database**: one trivial query;
* **cache**: write a fresh value and read it back. django-redis is told to
  ignore errors (a dead Redis answers misses and drops writes, see
  ``config.cache_health``), so a failure shows as the value not coming back;
* **broker**: only when tasks are queued (not the embedded default, where
  Celery runs them eagerly in-process): one short connection attempt, as
  ``retrain --async`` does before it queues;
* **models**: each live model version and its age in seconds. A kind with no
  live version is not an outage: the site then serves the popularity list.

Each check reports ``ok``, ``down`` (with the error) or ``skipped``; the whole
report is ``ok`` unless a check is ``down``. Checks never raise.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from config.cache_health import cache_errors_total

from .models import ModelKind, ModelVersion, VersionStatus

logger = logging.getLogger(__name__)

OK, DOWN, SKIPPED = "ok", "down", "skipped"

#: Seconds the broker check waits for a connection.
BROKER_TIMEOUT = 2


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "down" or "skipped"
    detail: str = ""


@dataclass(frozen=True)
class LiveModel:
    id: int
    algorithm: str
    trained_at: datetime
    activated_at: datetime | None
    age_seconds: int


@dataclass(frozen=True)
class HealthReport:
    checks: dict[str, Check]
    models: dict[str, LiveModel | None]
    cache_errors_total: int
    down: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return DOWN if self.down else OK


def _failed(name: str, exc: BaseException) -> Check:
    logger.warning("health check %s failed: %s", name, exc)
    return Check(DOWN, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500])


def database_check() -> Check:
    """One trivial query on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failed("database", exc)
    return Check(OK)


def cache_check() -> Check:
    """Write a fresh value to the default cache and read it back."""
    # A key of its own per probe: concurrent probes (two workers, a load balancer's
    # checks) must not overwrite each other's value and report a healthy cache down.
    value = uuid.uuid4().hex
    key = f"tastebase:health:probe:{value}"
    try:
        cache.set(key, value, timeout=30)
        read = cache.get(key)
        cache.delete(key)
    except Exception as exc:  # a cache that raises instead of ignoring its errors
        return _failed("cache", exc)
    if read != value:
        logger.warning("health check cache failed: the value written was not read back")
        return Check(DOWN, "the value written was not read back (see the cache errors count and the logs)")
    return Check(OK)


def broker_check() -> Check:
    """A short connection attempt to the Celery broker; skipped when tasks run eagerly."""
    from kombu.utils.url import maybe_sanitize_url

    from config.celery import app

    if app.conf.task_always_eager:
        return Check(SKIPPED, "tasks run eagerly in-process (no broker configured)")
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
    except Exception as exc:
        failed = _failed("broker", exc)
        return Check(DOWN, f"{maybe_sanitize_url(app.conf.broker_url)}: {failed.detail}")
    return Check(OK)


def live_models(*, now: datetime | None = None) -> dict[str, LiveModel | None]:
    """Each kind's active version and its age (since it finished training); None for none."""
    now = now or timezone.now()
    out: dict[str, LiveModel | None] = {kind: None for kind in ModelKind.values}
    for version in ModelVersion.objects.filter(status=VersionStatus.ACTIVE):
        trained_at = version.finished_at or version.created_at
        out[version.kind] = LiveModel(
            id=version.pk,
            algorithm=version.algorithm,
            trained_at=trained_at,
            activated_at=version.activated_at,
            age_seconds=max(int((now - trained_at).total_seconds()), 0),
        )
    return out


def health_report() -> HealthReport:
    """Every check, the live models and the cache errors this process ignored."""
    checks = {"database": database_check(), "cache": cache_check(), "broker": broker_check()}
    models: dict[str, Any] = {kind: None for kind in ModelKind.values}
    if checks["database"].status == OK:
        try:
            models = live_models()
        except Exception as exc:
            checks["database"] = _failed("database", exc)
    return HealthReport(
        checks=checks,
        models=models,
        cache_errors_total=cache_errors_total(),
        down=[name for name, check in checks.items() if check.status == DOWN],
    )
