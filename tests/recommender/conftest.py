"""A small, structured ratings table the pipeline tests train on.

Two taste groups: 'action' users love items 0-9 and dislike 10-19, 'romance'
users the reverse; items 20-23 are rated by almost nobody. Each user leaves
some of their group's items unrated, so a working model must put those first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Genre, Item
from ratings.models import Rating
from ratings.services import item_aggregates_recompute
from tests.factories import UserFactory


@dataclass
class Planted:
    users: list[Any]
    items: list[Item]
    group: dict[int, str]  # user pk -> "action" | "romance"

    def user(self, group: str, n: int = 0) -> Any:
        return [u for u in self.users if self.group[u.pk] == group][n]


def plant_ratings(n_users: int = 40, n_items: int = 24, seed: int = 0) -> Planted:
    rng = np.random.default_rng(seed)
    action, romance = (
        Genre.objects.get_or_create(name="Action")[0],
        Genre.objects.get_or_create(name="Romance")[0],
    )
    items = [
        Item.objects.create(title=f"Film {i:02d}", year=1990 + i, source="test", external_id=str(i))
        for i in range(n_items)
    ]
    for i, item in enumerate(items):
        item.genres.add(action if i < 10 else romance)
    users = [UserFactory(username=f"planted{u:02d}") for u in range(n_users)]
    group = {}
    now = timezone.now()
    rows = []
    for u, user in enumerate(users):
        g = "action" if u % 2 == 0 else "romance"
        group[user.pk] = g
        liked = range(0, 10) if g == "action" else range(10, 20)
        disliked = range(10, 20) if g == "action" else range(0, 10)
        for i in liked:
            if rng.random() < 0.7:
                rows.append(
                    Rating(
                        user=user,
                        item=items[i],
                        score=float(rng.choice([4.0, 4.5, 5.0])),
                        created_at=now,
                        updated_at=now,
                    )
                )
        for i in disliked:
            if rng.random() < 0.3:
                rows.append(
                    Rating(
                        user=user,
                        item=items[i],
                        score=float(rng.choice([1.0, 1.5, 2.0])),
                        created_at=now,
                        updated_at=now,
                    )
                )
        if u < 3:
            rows.append(Rating(user=user, item=items[20 + u], score=3.0, created_at=now, updated_at=now))
    Rating.objects.bulk_create(rows)
    item_aggregates_recompute()
    return Planted(users=users, items=items, group=group)


@pytest.fixture
def planted(db: Any) -> Planted:
    return plant_ratings()


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings: Any) -> Any:
    from django.core.cache import cache

    from recommender.serving import serving_cache

    serving_cache.clear()
    # Only the cache's own keys: FLUSHDB (cache.clear() on Redis) would also drop
    # the training lock of a run in another xdist process.
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    settings.TASTEBASE_TRAINING_LOCK_TTL = 5
    yield
    serving_cache.clear()
