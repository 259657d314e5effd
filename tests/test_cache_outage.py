"""When Redis (the cache) goes away, the site keeps answering: a cache error is a
miss, logged and counted, never a 500. Runs on both legs: the test starts its
own throw-away redis-server and points the cache at it."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.cache import cache, caches
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from config.cache_health import cache_errors_total
from ratings.models import Rating
from recommender.models import ModelVersion, VersionStatus
from tests.conftest import PASSWORD
from tests.recommender.conftest import plant_ratings

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
FAST = ["--param", "factors=4", "--param", "iterations=5", "--param", "regularization=1.0"]

needs_redis_server = pytest.mark.skipif(
    not shutil.which(REDIS_SERVER),
    reason=f"{REDIS_SERVER} is not installed (apt-get install redis-server; CI installs it)",
)


class RedisServer:
    """A redis-server on a free port of 127.0.0.1, without persistence."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def keys(self) -> int:
        return int(redis.Redis.from_url(self.url).dbsize())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The default cache on ``redis_server``, configured as with ``REDIS_URL`` set.

    django-redis reads ``DJANGO_REDIS_IGNORE_EXCEPTIONS`` and friends from the
    settings on both legs; override_settings(CACHES=...) makes Django drop its
    cache connections, so ``cache`` is rebuilt on the new configuration.
    """
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "outage-test",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
        }
    }
    with override_settings(CACHES=caches):
        yield redis_server


def test_each_error_django_redis_logs_is_counted() -> None:
    from django.conf import settings

    before = cache_errors_total()
    logging.getLogger(settings.DJANGO_REDIS_LOGGER).error("Exception ignored")
    assert cache_errors_total() == before + 1


@needs_redis_server
def test_override_settings_points_the_default_cache_at_the_test_server(redis_cache: RedisServer) -> None:
    cache.set("probe", 1)
    assert type(caches["default"]).__module__ == "django_redis.cache"
    assert redis_cache.keys() == 1


@needs_redis_server
@pytest.mark.django_db(transaction=True)  # rating listeners run on commit, inside the request
def test_the_site_keeps_working_when_redis_stops(client: Any, alice: Any, redis_cache: RedisServer) -> None:
    planted = plant_ratings()
    for algorithm in ("implicit_als", "explicit_als"):
        call_command("retrain", "--algorithm", algorithm, *FAST, stdout=StringIO(), stderr=StringIO())
    assert ModelVersion.objects.filter(status=VersionStatus.ACTIVE).count() == 2
    first, second, *_ = planted.items
    assert client.login(username=alice.username, password=PASSWORD)
    client.post(reverse("ratings:rate", args=[first.pk]), {"score": "5.0"})
    assert client.get(reverse("recommender:for_you")).status_code == 200
    assert redis_cache.keys() > 0  # the pages above really used Redis

    redis_cache.stop()
    errors_before = cache_errors_total()

    response = client.post(reverse("ratings:rate", args=[second.pk]), {"score": "4.5"})
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:item_detail", args=[second.pk])
    assert Rating.objects.get(user=alice, item=second).score == 4.5

    for_you = client.get(reverse("recommender:for_you"))
    assert for_you.status_code == 200
    assert for_you.context["personalized"]
    assert client.get(reverse("catalog:item_detail", args=[second.pk])).status_code == 200

    assert cache_errors_total() > errors_before
