"""``GET /api/v1/health/``: public; 200 when what the site needs answers, 503 naming what does not."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from kombu import Connection
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tests.api.conftest import as_user
from tests.recommender.conftest import plant_ratings
from tests.recommender.test_pipeline import FAST, train

HEALTH = reverse("api:health")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_health_is_public_and_ok(api: APIClient, db: Any) -> None:
    response = api.get(HEALTH)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["database"] == {"status": "ok", "detail": ""}
    assert body["checks"]["cache"] == {"status": "ok", "detail": ""}
    # The embedded default queues nothing (tasks run in-process); the broker leg checks its broker.
    assert body["checks"]["broker"]["status"] == ("skipped" if celery_app.conf.task_always_eager else "ok")
    assert body["models"] == {"rating": None, "ranking": None, "similarity": None}
    assert isinstance(body["cache_errors_total"], int)


@pytest.mark.django_db(transaction=True)
def test_health_shows_the_age_of_each_live_model(api: APIClient, staff: Any) -> None:
    plant_ratings()
    version = train("ranking", params=FAST["implicit_als"])

    body = as_user(api, staff).get(HEALTH).json()  # credentials are ignored: it is public

    live = body["models"]["ranking"]
    assert live["id"] == version.pk and live["algorithm"] == "implicit_als"
    assert 0 <= live["age_seconds"] < 600
    assert live["activated_at"] and live["trained_at"]
    assert body["models"]["rating"] is None and body["models"]["similarity"] is None


def test_health_answers_503_naming_the_cache_when_it_is_broken(api: APIClient, db: Any) -> None:
    broken = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    with override_settings(CACHES=broken):
        from config.cache_health import cache_errors_total

        before = cache_errors_total()
        response = api.get(HEALTH)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["down"] == ["cache"]
    assert body["checks"]["cache"]["status"] == "down" and body["checks"]["cache"]["detail"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["cache_errors_total"] > before  # django-redis ignored the errors and they were counted


def test_health_answers_503_naming_the_broker_when_it_is_unreachable(
    api: APIClient, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        celery_app,
        "connection_for_write",
        lambda **kwargs: Connection(f"redis://127.0.0.1:{closed_port()}/0"),
    )
    conf = celery_app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    try:
        response = api.get(HEALTH)
    finally:
        conf.task_always_eager = eager

    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"]["status"] == "down" and body["checks"]["broker"]["detail"]


def test_concurrent_cache_probes_never_report_a_healthy_cache_down(db: Any) -> None:
    """Under load two workers probe at once; a shared probe key made one of them read the
    other's value and answer 503 (seen in bench_api: about 4% of health checks)."""
    import threading

    from recommender.health import cache_check

    results: list[str] = []

    def probe() -> None:
        for _ in range(200):
            results.append(cache_check().status)

    threads = [threading.Thread(target=probe) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 1200 and set(results) == {"ok"}
