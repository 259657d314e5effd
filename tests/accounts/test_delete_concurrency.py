"""Deleting an account while other people rate the same items, on the real Postgres."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count, Sum

from catalog.account_services import user_delete
from catalog.models import Item
from ratings.models import Rating
from ratings.services import rating_delete, rating_upsert, ratings_bulk_upsert
from tests.factories import ItemFactory, UserFactory
from tests.recommender.test_concurrency import run_threads

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent writers: the Postgres leg (make test-postgres)",
    ),
]


def test_item_stats_stay_exact_when_others_rate_during_a_deletion() -> None:
    leaver = UserFactory(username="leaver")
    others = [UserFactory(username=f"stayer{n}") for n in range(4)]
    items = [ItemFactory() for _ in range(30)]
    for n, item in enumerate(items):
        rating_upsert(user=leaver, item=item, score=0.5 + (n % 10) / 2)
        rating_upsert(user=others[0], item=item, score=3.0)  # to change and delete below

    def single_writes(user_index: int) -> callable:  # type: ignore[valid-type]
        def run() -> None:
            for n, item in enumerate(items):
                rating_upsert(user=others[user_index], item=item, score=1.0 + (n + user_index) % 8 / 2)

        return run

    def bulk_writes() -> None:
        ratings_bulk_upsert(user=others[3], rows=[(item, 4.5) for item in reversed(items)])

    def changes_and_deletes() -> None:
        for n, item in enumerate(items):
            if n % 2:
                rating_delete(user=others[0], item=item)
            else:
                rating_upsert(user=others[0], item=item, score=5.0)

    def delete() -> None:
        user_delete(user=leaver)

    errors = run_threads([delete, single_writes(1), single_writes(2), bulk_writes, changes_and_deletes])
    assert errors == []

    assert not Rating.objects.filter(user__username="leaver").exists()
    assert Rating.objects.count() == 30 * 3 + 15
    for stored in Item.objects.all():
        truth = Rating.objects.filter(item=stored).aggregate(n=Count("id"), total=Sum("score"))
        assert (stored.rating_count, stored.rating_sum) == (truth["n"], truth["total"]), stored.pk
        assert stored.rating_mean == truth["total"] / truth["n"]
