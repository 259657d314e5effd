"""The API's fixed-window throttles (config/throttling.py): per user, per anonymous IP, per scope.

On the Postgres leg the cache is the real Redis, so the concurrency test runs
against Redis's INCR; on SQLite against the local-memory cache.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import AnonRateThrottle as DrfAnonRateThrottle
from rest_framework.throttling import ScopedRateThrottle as DrfScopedRateThrottle
from rest_framework.throttling import UserRateThrottle as DrfUserRateThrottle
from rest_framework.views import APIView

from config.throttling import AnonRateThrottle, UserRateThrottle
from tests.api.conftest import assert_error
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


class Clock:
    """A settable ``time.time`` for the throttles."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    cache.clear()
    fixed = Clock(1_800_000_000.0)  # the start of a minute
    # The throttles read ``self.timer()``; DRF's classes hold ``time.time`` there.
    for throttle in (DrfAnonRateThrottle, DrfUserRateThrottle, DrfScopedRateThrottle):
        monkeypatch.setattr(throttle, "timer", staticmethod(fixed))
    return fixed


def _rates(monkeypatch: pytest.MonkeyPatch, **rates: str) -> None:
    merged = {"anon": "1000/minute", "user": "1000/minute", "login": "1000/minute", **rates}
    for throttle in (DrfAnonRateThrottle, DrfUserRateThrottle, DrfScopedRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", merged)


def test_anonymous_requests_are_counted_per_window_and_told_when_to_retry(
    api: APIClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rates(monkeypatch, anon="3/minute")
    assert [api.get(reverse("api:genres")).status_code for _ in range(3)] == [200, 200, 200]
    clock.now += 45  # 15 s left in this minute
    response = api.get(reverse("api:genres"))
    assert_error(response, 429, "throttled")
    assert response["Retry-After"] == "15"
    clock.now += 15  # the next minute starts afresh
    assert api.get(reverse("api:genres")).status_code == 200


def test_signed_in_users_have_their_own_budget(
    api: APIClient, alice: Any, bob: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rates(monkeypatch, anon="1/minute", user="2/minute")
    api.force_authenticate(alice)
    assert [api.get(reverse("api:me")).status_code for _ in range(3)] == [200, 200, 429]
    api.force_authenticate(bob)
    assert api.get(reverse("api:me")).status_code == 200  # alice's requests are not bob's
    api.force_authenticate(None)
    assert [api.get(reverse("api:genres")).status_code for _ in range(2)] == [200, 429]


def test_the_login_scope_limits_password_guessing(
    api: APIClient, alice: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _rates(monkeypatch, login="2/minute")
    wrong = {"username": "alice", "password": "guess"}
    assert [api.post(reverse("api:token"), wrong, format="json").status_code for _ in range(2)] == [401, 401]
    right = {"username": "alice", "password": PASSWORD}
    assert_error(api.post(reverse("api:token"), right, format="json"), 429, "throttled")


def test_concurrent_requests_never_pass_more_than_the_rate(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DRF's timestamp list loses updates when requests read it at once; an INCR cannot."""
    _rates(monkeypatch, anon="50/minute")
    request = APIRequestFactory().get("/api/v1/genres/", REMOTE_ADDR="198.51.100.7")
    request.user = AnonymousUser()
    view = APIView()
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def client() -> None:
        start.wait()
        for _ in range(25):
            allowed.append(AnonRateThrottle().allow_request(request, view))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 200
    assert sum(allowed) == 50


def test_a_throttle_lets_requests_through_when_the_cache_is_down(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """django-redis answers None instead of raising when Redis is down (DJANGO_REDIS_IGNORE_EXCEPTIONS):
    the site keeps serving, unthrottled, rather than failing every request."""
    _rates(monkeypatch, user="1/minute")

    class DownCache:
        def incr(self, key: str) -> None:
            return None

    throttle = UserRateThrottle()
    monkeypatch.setattr(throttle, "cache", DownCache())
    request = APIRequestFactory().get("/api/v1/me/")
    request.user = type("U", (), {"is_authenticated": True, "pk": 1})()
    assert all(throttle.allow_request(request, APIView()) for _ in range(3))
