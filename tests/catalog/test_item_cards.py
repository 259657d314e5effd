"""Item cards: the plain data that cached lists hold instead of model instances."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from catalog.selectors import MAX_ID, item_cards
from tests.factories import GenreFactory, ItemFactory

pytestmark = pytest.mark.django_db


def test_cards_carry_titles_years_stats_and_genres_in_name_order(django_assert_num_queries: Any) -> None:
    heat = ItemFactory(title="Heat", year=1995, rating_count=3, rating_sum=12.0, rating_mean=4.0)
    heat.genres.set([GenreFactory(name="Thriller"), GenreFactory(name="Action"), GenreFactory(name="Crime")])
    plain = ItemFactory(title="Untitled", year=None)
    with django_assert_num_queries(1):
        cards = item_cards(item_ids=[heat.pk, plain.pk, heat.pk, plain.pk + 1000, MAX_ID + 1, -3])
    assert set(cards) == {heat.pk, plain.pk}  # unknown and out-of-range ids are simply absent
    card = cards[heat.pk]
    assert (card.id, card.pk, card.title, card.year) == (heat.pk, heat.pk, "Heat", 1995)
    assert card.genres == ("Action", "Crime", "Thriller")
    assert (card.rating_count, card.rating_mean) == (3, 4.0)
    assert str(card) == "Heat (1995)" and str(cards[plain.pk]) == "Untitled"
    assert cards[plain.pk].genres == () and cards[plain.pk].rating_mean is None
    assert pickle.loads(pickle.dumps(card)) == card


def test_no_ids_need_no_query(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert item_cards(item_ids=[]) == {}
