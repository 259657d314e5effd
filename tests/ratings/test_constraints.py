"""The database itself refuses bad ratings — on SQLite and on Postgres (CI runs both)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from ratings.models import Rating
from tests.factories import ItemFactory


def _insert(user, item, score: float) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    with transaction.atomic():
        Rating.objects.create(user=user, item=item, score=score, created_at=now, updated_at=now)


@pytest.mark.django_db
def test_it_accepts_every_half_star_from_half_to_five(alice) -> None:  # type: ignore[no-untyped-def]
    for k in range(1, 11):
        _insert(alice, ItemFactory(), k / 2)
    assert sorted(Rating.objects.values_list("score", flat=True)) == [k / 2 for k in range(1, 11)]


@pytest.mark.django_db
def test_it_rejects_a_second_rating_of_the_same_item(alice) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    _insert(alice, item, 4.0)
    with pytest.raises(IntegrityError):
        _insert(alice, item, 3.0)
    assert Rating.objects.get().score == 4.0


@pytest.mark.django_db
@pytest.mark.parametrize("score", [5.5, 3.3, 0.0, -1.0, 0.25])
def test_it_rejects_a_score_off_the_half_star_scale(alice, score: float) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError):
        _insert(alice, ItemFactory(), score)
    assert Rating.objects.count() == 0


@pytest.mark.django_db
def test_two_users_may_rate_the_same_item(alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    _insert(alice, item, 4.0)
    _insert(bob, item, 2.5)
    assert Rating.objects.filter(item=item).count() == 2
