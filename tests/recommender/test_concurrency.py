"""Concurrent rating writes and fold-ins on the real Postgres (threads, real connections).

Before issue 7: two simultaneous first ratings of one (user, item) both found
no row under ``select_for_update`` and one insert hit the unique constraint
(24 threads: 11 IntegrityErrors); and two fold-ins of one user could store
factors computed from an older set of ratings.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from django.db import connection, connections, transaction

from catalog.models import Item
from ratings.models import Rating, UserRatingStamp
from ratings.services import rating_upsert
from tests.factories import ItemFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent writers: the Postgres leg (make test-postgres)",
    ),
]


def run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def wrap(target: Any) -> None:
        try:
            start.wait()
            target()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_concurrent_first_ratings_never_fail_and_keep_item_aggregates_exact() -> None:
    users = [UserFactory(username=f"racer{u}") for u in range(6)]
    items = [ItemFactory(), ItemFactory(), ItemFactory()]
    rng = np.random.default_rng(0)
    plans = []
    for user in users:
        for item in items[:2]:  # six users x two items, all racing for the first rating
            scores = [float(s) for s in rng.choice(np.arange(1, 11) / 2, size=3)]
            plans.append((user, item, scores))
    # ...and one pair hammered by four threads at once.
    plans += [(users[0], items[2], [5.0, 0.5, 3.0]) for _ in range(4)]

    def writer(user: Any, item: Item, scores: list[float]) -> Any:
        return lambda: [rating_upsert(user=user, item=item, score=s) for s in scores]

    errors = run_threads([writer(*plan) for plan in plans])
    assert errors == []
    assert Rating.objects.count() == 6 * 2 + 1
    for item in items:
        item.refresh_from_db()
        scores = list(Rating.objects.filter(item=item).values_list("score", flat=True))
        assert item.rating_count == len(scores)
        assert item.rating_sum == pytest.approx(sum(scores))
        assert item.rating_mean == pytest.approx(sum(scores) / len(scores))
    assert UserRatingStamp.objects.count() == 6


def test_a_fold_in_waits_for_the_users_rating_write_and_uses_the_newer_ratings(planted) -> None:  # type: ignore[no-untyped-def]
    from recommender.models import UserFactor, vector_from_bytes
    from recommender.services import user_fold_in_version
    from recommender.serving import serving_cache
    from tests.recommender.test_pipeline import train

    version = train("rating")
    fan = planted.user("action")
    item = Rating.objects.filter(user=fan).first().item  # type: ignore[union-attr]
    rating_upsert(user=fan, item=item, score=4.0)  # creates the user's stamp row
    serving = serving_cache.active()["rating"]
    locked = threading.Event()

    def slow_rating_write() -> None:
        # What rating_upsert does, held open: lock the user's row, change the rating, commit later.
        with transaction.atomic():
            UserRatingStamp.objects.select_for_update().get(user=fan)
            Rating.objects.filter(user=fan, item=item).update(score=0.5)
            locked.set()
            time.sleep(1.0)

    def fold_in() -> None:
        locked.wait(10)
        user_fold_in_version(version=serving, user_id=fan.pk)

    assert run_threads([slow_rating_write, fold_in]) == []
    stored = UserFactor.objects.get(version=version, user=fan)
    ratings = list(Rating.objects.filter(user=fan).values_list("item_id", "score"))
    assert (item.pk, 0.5) in ratings
    expected = serving.fold_in(
        np.array([r[0] for r in ratings], dtype=np.int64), np.array([r[1] for r in ratings], dtype=np.float64)
    )
    assert expected is not None
    np.testing.assert_allclose(vector_from_bytes(stored.vector), expected[0], rtol=1e-6, atol=1e-6)
