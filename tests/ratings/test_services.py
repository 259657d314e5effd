"""rating_upsert / rating_delete keep the item's denormalized count and mean exact."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Item
from ratings.models import Rating
from ratings.services import item_aggregates_recompute, rating_delete, rating_upsert
from tests.factories import ItemFactory, RatingFactory


def _stats(item: Item) -> tuple[int, float | None]:
    item.refresh_from_db()
    return item.rating_count, item.rating_mean


@pytest.mark.django_db
def test_upsert_creates_then_changes_and_tracks_the_mean(alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rating_upsert(user=alice, item=item, score=4.0)
    assert _stats(item) == (1, 4.0)
    rating_upsert(user=bob, item=item, score=2.0)
    assert _stats(item) == (2, 3.0)
    changed = rating_upsert(user=alice, item=item, score=5.0)
    assert changed.score == 5.0
    assert Rating.objects.filter(item=item).count() == 2
    assert _stats(item) == (2, 3.5)


@pytest.mark.django_db
def test_delete_removes_only_that_users_rating_and_updates_the_mean(alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rating_upsert(user=alice, item=item, score=4.0)
    rating_upsert(user=bob, item=item, score=2.0)
    assert rating_delete(user=alice, item=item) is True
    assert list(Rating.objects.values_list("user__username", flat=True)) == ["bob"]
    assert _stats(item) == (1, 2.0)
    assert rating_delete(user=bob, item=item) is True
    assert _stats(item) == (0, None)
    assert rating_delete(user=bob, item=item) is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("score", "message"),
    [
        (5.5, "outside 0.5–5.0"),
        (0, "outside 0.5–5.0"),
        (3.3, "not a multiple of 0.5"),
        ("abc", "not a number"),
    ],
)
def test_upsert_rejects_bad_scores_with_a_clear_message(alice, score, message: str) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    with pytest.raises(ValidationError, match=message):
        rating_upsert(user=alice, item=item, score=score)
    assert Rating.objects.count() == 0
    assert _stats(item) == (0, None)


@pytest.mark.django_db
def test_recompute_repairs_aggregates_written_behind_the_services_back(alice, bob) -> None:  # type: ignore[no-untyped-def]
    item, untouched = ItemFactory(), ItemFactory()
    RatingFactory(user=alice, item=item, score=5.0)
    RatingFactory(user=bob, item=item, score=3.0)
    assert _stats(item) == (0, None)
    assert item_aggregates_recompute() == 1
    assert _stats(item) == (2, 4.0)
    assert _stats(untouched) == (0, None)


@pytest.mark.django_db
def test_recompute_can_be_limited_to_some_items(alice) -> None:  # type: ignore[no-untyped-def]
    first, second = ItemFactory(), ItemFactory()
    RatingFactory(user=alice, item=first, score=2.0)
    RatingFactory(user=alice, item=second, score=3.0)
    assert item_aggregates_recompute(item_ids=[second.pk]) == 1
    assert _stats(first) == (0, None)
    assert _stats(second) == (1, 3.0)
    assert item_aggregates_recompute(item_ids=[]) == 0
