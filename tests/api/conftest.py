"""API test helpers: a DRF client, token sign-in, the error shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fresh_serving_state() -> Any:
    """Model version ids repeat across tests: no process-level cache may outlive one."""
    from django.core.cache import cache

    from recommender.serving import serving_cache

    serving_cache.clear()
    cache.clear()
    yield
    serving_cache.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def as_user(client: APIClient, user: Any) -> APIClient:
    """Authenticate ``client`` with ``user``'s API token (created on demand)."""
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the one error shape and ``code``; returns the error."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", None))
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]
