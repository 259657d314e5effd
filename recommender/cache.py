"""Cached recommendation lists and their invalidation: the one mechanism.

A list is cached under a key holding the user's *generation* and the ids of
the active versions. A rating change bumps the user's generation and an
activation changes the version ids, so a stale list is never read again (it
just expires). Nothing else is cached per user.

The cache only saves work: with Redis down, django-redis answers misses and
drops writes (``DJANGO_REDIS_IGNORE_EXCEPTIONS``, counted in
``config.cache_health``), so neither a page nor a rating write fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache

logger = logging.getLogger(__name__)

RECOMMENDATION_CACHE_SECONDS = 600


def _generation_key(user_id: int) -> str:
    return f"recommender:user-gen:{user_id}"


def user_generation(user_id: int) -> int:
    return int(cache.get(_generation_key(user_id)) or 0)


def user_lists_invalidate(user_id: int) -> None:
    """Make every cached list of ``user_id`` unreachable (after a rating change)."""
    key = _generation_key(user_id)
    try:
        if cache.incr(key) is not None:
            return
    except ValueError:  # no generation yet
        pass
    cache.set(key, user_generation(user_id) + 1, timeout=None)


def recommendations_key(user_id: int, version_ids: Iterable[tuple[str, int]], **params: Any) -> str:
    versions = ",".join(f"{kind}={pk}" for kind, pk in sorted(version_ids))
    options = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return f"recommender:recs:{user_id}:{user_generation(user_id)}:{versions}:{options}".replace(" ", "_")


def cached(key: str) -> Any:
    return cache.get(key)


def remember(key: str, value: Any, timeout: int = RECOMMENDATION_CACHE_SECONDS) -> None:
    cache.set(key, value, timeout)
