"""Cached recommendation lists and their invalidation: the one mechanism.

A list is cached under a key holding the user, the ids of the active versions
and the list's parameters, stored together with the user's *generation*. A
rating change bumps the user's generation and an activation changes the
version ids, so a stale list is never served again (it is overwritten or
expires). One lookup reads the list and the generation in one round trip.
Nothing else is cached per user.

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
    """The key of one list: the user, the live versions and the list's parameters.

    The user's generation is not in the key but stored with the list
    (:func:`cached`), so a hit costs one round trip to the cache, not two.
    """
    versions = ",".join(f"{kind}={pk}" for kind, pk in sorted(version_ids))
    options = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return f"recommender:recs:{user_id}:{versions}:{options}".replace(" ", "_")


def _user_of(key: str) -> int:
    return int(key.split(":", 3)[2])


def lookup(key: str) -> tuple[Any, int]:
    """(the list under ``key`` or None, the user's current generation), in one round trip.

    A list made at an older generation (before the user's latest rating change) is a miss.
    Pass the generation to :func:`remember` with the list made after this miss.
    """
    generation_key = _generation_key(_user_of(key))
    found = cache.get_many([key, generation_key])
    generation = int(found.get(generation_key) or 0)
    stored = found.get(key)
    if stored is not None and stored[0] == generation:
        return stored[1], generation
    return None, generation


def remember(key: str, value: Any, generation: int, timeout: int = RECOMMENDATION_CACHE_SECONDS) -> None:
    """Store ``value`` under ``key`` as made at ``generation``: the one :func:`lookup` returned
    *before* the list was computed, so a rating that lands meanwhile (and bumps the generation)
    keeps this possibly older list from ever being served."""
    cache.set(key, (generation, value), timeout)
