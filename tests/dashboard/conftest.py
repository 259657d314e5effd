"""Dashboard test helpers. Personas from tests/conftest.py: anonymous, alice (a user), staff.

Training runs take the training lock from a heartbeat thread, so tests that train use a
transactional database (as tests/api/test_staff_api.py does) and eager Celery.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.api.test_staff_api import celery_conf
from tests.recommender.conftest import Planted, plant_ratings

#: What htmx sends with every request it makes (django-htmx reads it into ``request.htmx``).
HTMX: dict[str, str] = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/dashboard/"}


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings: Any) -> Iterator[None]:
    """Version ids repeat across tests: no process-level cache may outlive one."""
    from django.core.cache import cache

    from recommender.serving import serving_cache

    serving_cache.clear()
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")  # only the cache's keys: FLUSHDB would drop another run's lock
    else:
        cache.clear()
    # Short, so a lock a failed test leaves behind lapses soon; not 5 s: once on the Postgres
    # leg at load ~6 a run in the request lost its lock after 5 s without a renewal.
    settings.TASTEBASE_TRAINING_LOCK_TTL = 15
    yield
    serving_cache.clear()


@pytest.fixture
def planted(transactional_db: Any) -> Planted:
    return plant_ratings()


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in-process, as on the embedded default (also on the broker leg)."""
    with celery_conf(task_always_eager=True):
        yield


@pytest.fixture
def as_staff(client: Client, staff: Any) -> Client:
    client.force_login(staff)
    return client


def figures(html: str) -> dict[str, str]:
    """Each chart's markup by its title (``<span class="chart__title">``), in page order."""
    found: dict[str, str] = {}
    for figure in re.findall(r"<figure class=\"chart.*?</figure>", html, flags=re.S):
        title = re.search(r'<span class="chart__title">(.*?)</span>', figure)
        assert title, figure
        found.setdefault(title.group(1), figure)
    return found


def section(html: str, element_id: str) -> str:
    """The markup of the element with ``id=element_id`` up to the next top-level card."""
    start = html.index(f'id="{element_id}"')
    rest = html[start:]
    end = min(
        (
            i
            for i in (rest.find('<section class="dash-card', 1), rest.find('<article class="dash-card', 1))
            if i > 0
        ),
        default=len(rest),
    )
    return rest[:end]
