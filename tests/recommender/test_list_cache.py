"""Recommendation and similar-item lists are cached under one mechanism
(recommender/cache.py) and invalidated by fold-in (a rating), hiding and activation."""

from __future__ import annotations

import pytest

from catalog.models import Item
from ratings.lists import hidden_add
from ratings.services import rating_upsert
from recommender import cache as list_cache
from recommender.models import ItemNeighbor, UserFactor
from recommender.selectors import recommendations_for_user, similar_items
from tests.recommender.test_pipeline import train

pytestmark = pytest.mark.django_db(transaction=True)


def test_similar_items_are_cached_until_a_hide_or_a_new_version(planted) -> None:  # type: ignore[no-untyped-def]
    first = train("similarity")
    film = planted.items[12]
    fan, other = planted.user("romance"), planted.user("romance", 1)
    listed = [s.item_id for s in similar_items(item=film, limit=5, user=fan)]
    assert len(listed) == 5
    assert [s.item_id for s in similar_items(item=film, limit=5, user=other)] == listed
    ItemNeighbor.objects.filter(version=first).delete()  # behind the cache's back
    assert [s.item_id for s in similar_items(item=film, limit=5, user=fan)] == listed  # served from the cache
    hidden_add(user=fan, item=Item.objects.get(pk=listed[0]))  # bumps the fan's lists only
    assert similar_items(item=film, limit=5, user=fan) == []  # recomputed: the table is empty now
    assert [s.item_id for s in similar_items(item=film, limit=5, user=other)] == listed  # still cached
    train("similarity", force=True)  # a new live version: new keys for everyone
    relisted = [s.item_id for s in similar_items(item=film, limit=5, user=other)]
    assert len(relisted) == 5
    assert listed[0] not in [s.item_id for s in similar_items(item=film, limit=5, user=fan)]


def test_recommendations_are_cached_until_a_rating_folds_the_user_in(planted) -> None:  # type: ignore[no-untyped-def]
    train("ranking")
    fan = planted.user("action", 2)
    before = recommendations_for_user(user=fan, limit=5)
    assert {r.source for r in before} == {"ranking"}
    UserFactor.objects.filter(user=fan).delete()  # behind the cache's back
    assert recommendations_for_user(user=fan, limit=5) == before  # served from the cache
    rating_upsert(
        user=fan, item=Item.objects.get(pk=before[0].item_id), score=1.0
    )  # fold-in stores factors, bumps the generation
    after = recommendations_for_user(user=fan, limit=5)
    assert before[0].item_id not in [r.item_id for r in after]
    assert {r.source for r in after} == {"ranking"}


def test_a_list_made_while_a_rating_lands_is_never_served() -> None:
    """The generation is read before the list is computed; a rating change meanwhile bumps it."""
    key = list_cache.recommendations_key(41, [("rating", 3), ("ranking", 4)], limit=10)
    assert list_cache.lookup(key) == (None, 0)
    list_cache.remember(key, ["fresh"], 0)
    assert list_cache.lookup(key) == (["fresh"], 0)

    _, generation = list_cache.lookup(list_cache.recommendations_key(41, [("rating", 3)], limit=5))
    list_cache.user_lists_invalidate(41)  # a rating lands while that list is being computed
    list_cache.remember(list_cache.recommendations_key(41, [("rating", 3)], limit=5), ["stale"], generation)
    assert list_cache.lookup(list_cache.recommendations_key(41, [("rating", 3)], limit=5)) == (None, 1)
    assert list_cache.lookup(key) == (None, 1)  # every older list of the user is gone too
    assert (
        list_cache.lookup(list_cache.recommendations_key(42, [("rating", 3)], limit=5))[1] == 0
    )  # not others'
