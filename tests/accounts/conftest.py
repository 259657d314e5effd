"""Account tests: django-axes switched on (the test settings leave it off elsewhere)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def axes_on(settings: Any) -> Any:
    """Sign-in limits as production has them by default: 5 failures, 15 minutes."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    return settings


def login_post(client: Any, username: str, password: str, *, address: str = "127.0.0.1") -> Any:
    """Submit the site's log-in form as a browser at ``address`` would."""
    from django.urls import reverse

    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)
