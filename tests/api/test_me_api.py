"""The signed-in user's API: profile, For you list, hidden items and watchlist."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import Item
from ratings.lists import hidden_add, watchlist_add
from ratings.models import Hidden, Rating
from ratings.services import rating_upsert
from recommender.models import ModelVersion
from recommender.selectors import similar_items
from tests.api.conftest import as_user, assert_error
from tests.factories import ItemFactory, RatingFactory
from tests.recommender.conftest import Planted, plant_ratings
from tests.recommender.test_pipeline import train

RECOMMENDATIONS = reverse("api:me_recommendations")
HIDDEN = reverse("api:me_hidden")
WATCHLIST = reverse("api:me_watchlist")


def hidden_url(item_id: int) -> str:
    return reverse("api:me_hidden_item", kwargs={"item_id": item_id})


def watchlist_url(item_id: int) -> str:
    return reverse("api:me_watchlist_item", kwargs={"item_id": item_id})


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["item"]["id"] for row in response.json()["results"]]


@pytest.fixture
def trained(transactional_db: Any, settings: Any) -> Planted:
    """The planted ratings with active rating and ranking versions."""
    settings.TASTEBASE_TRAINING_LOCK_TTL = 5
    planted = plant_ratings()
    train("rating")
    train("ranking")
    return planted


# ---- profile --------------------------------------------------------------------------


def test_me_needs_a_signed_in_user(api: APIClient, db: Any) -> None:
    assert_error(api.get(reverse("api:me")), 401, "not_authenticated")


def test_me_shows_the_profile_and_what_the_user_keeps(api: APIClient, alice: Any, bob: Any) -> None:
    items = [ItemFactory() for _ in range(4)]
    for item in items[:3]:
        RatingFactory(user=alice, item=item)
    RatingFactory(user=bob, item=items[3])
    hidden_add(user=alice, item=items[3])
    watchlist_add(user=alice, item=items[3])
    watchlist_add(user=bob, item=items[0])

    body = as_user(api, alice).get(reverse("api:me")).json()

    assert body == {
        "id": alice.pk,
        "username": "alice",
        "date_joined": body["date_joined"],
        "is_staff": False,
        "counts": {"ratings": 3, "hidden": 1, "watchlist": 1},
    }
    assert body["date_joined"].startswith(str(alice.date_joined.year))


# ---- recommendations ------------------------------------------------------------------


def test_recommendations_have_the_documented_shape(api: APIClient, trained: Planted) -> None:
    fan = trained.user("action")
    response = as_user(api, fan).get(RECOMMENDATIONS, {"n": 5})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "source", "model_versions"}
    assert body["source"] == "ranking"
    active = dict(ModelVersion.objects.filter(status="active").values_list("kind", "pk"))
    assert body["model_versions"] == {
        "rating": active["rating"],
        "ranking": active["ranking"],
        "similarity": None,
    }
    assert len(body["results"]) == 5
    first = body["results"][0]
    assert set(first) == {"item", "predicted_rating", "score", "explanation"}
    assert set(first["item"]) == {"id", "title", "year", "genres"}
    assert first["item"]["genres"] == ["Action"]
    assert 0.5 <= first["predicted_rating"] <= 5.0
    assert first["explanation"] and all(set(e) == {"id", "title"} for e in first["explanation"])
    rated = set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))
    assert not rated & set(ids(response))


def test_recommendations_change_after_the_user_rates(api: APIClient, trained: Planted) -> None:
    fan = trained.user("action", 1)
    as_user(api, fan)
    before = ids(api.get(RECOMMENDATIONS, {"n": 5}))

    rating_upsert(user=fan, item=Item.objects.get(pk=before[0]), score=0.5)  # folded in on commit
    after = ids(api.get(RECOMMENDATIONS, {"n": 5}))

    assert before[0] not in after  # rated now, so left out
    assert after != before


def test_exclude_rated_false_brings_rated_items_back_and_genre_filters(
    api: APIClient, trained: Planted
) -> None:
    fan = trained.user("action")
    as_user(api, fan)
    rated = set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))

    everything = ids(api.get(RECOMMENDATIONS, {"n": 24, "exclude_rated": "false"}))
    romance = api.get(RECOMMENDATIONS, {"n": 3, "genre": "Romance"}).json()["results"]

    assert rated <= set(everything)
    assert romance and all(row["item"]["genres"] == ["Romance"] for row in romance)


def test_anonymous_visitors_get_the_popularity_list(api: APIClient, trained: Planted) -> None:
    body = api.get(RECOMMENDATIONS, {"n": 3}).json()

    assert body["source"] == "popularity"
    assert len(body["results"]) == 3
    assert all(row["predicted_rating"] is None and row["explanation"] == [] for row in body["results"])
    assert body["model_versions"]["ranking"] is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n": "0"}, "n"),
        ({"n": "101"}, "n"),
        ({"n": "ten"}, "n"),
        ({"genre": "No such genre"}, "genre"),
        ({"exclude_rated": "maybe"}, "exclude_rated"),
    ],
)
def test_bad_recommendation_parameters_are_a_400_naming_them(
    api: APIClient, alice: Any, params: dict[str, str], field: str
) -> None:
    error = assert_error(as_user(api, alice).get(RECOMMENDATIONS, params), 400, "invalid")
    assert set(error["fields"]) == {field}


# ---- hidden items -----------------------------------------------------------------------


def test_a_hidden_item_vanishes_from_that_users_recommendations_only(
    api: APIClient, trained: Planted
) -> None:
    fan, other = trained.user("action", 0), trained.user("action", 1)
    fan_api, other_api = as_user(api, fan), as_user(APIClient(), other)
    everything = {"n": 10, "exclude_rated": "false"}
    fan_before = ids(fan_api.get(RECOMMENDATIONS, everything))  # cached now
    other_before = ids(other_api.get(RECOMMENDATIONS, everything))
    target = next(pk for pk in fan_before if pk in other_before)

    assert fan_api.put(hidden_url(target)).status_code == 201

    fan_after = ids(fan_api.get(RECOMMENDATIONS, everything))
    assert target not in fan_after and len(fan_after) == 10
    assert target not in ids(fan_api.get(RECOMMENDATIONS, {"n": 24}))
    assert ids(other_api.get(RECOMMENDATIONS, everything)) == other_before
    # Shown again once un-hidden.
    assert fan_api.delete(hidden_url(target)).status_code == 204
    assert ids(fan_api.get(RECOMMENDATIONS, everything)) == fan_before


@pytest.mark.parametrize("served_by", ["similarity", "ranking"])
def test_a_hidden_item_vanishes_from_similar_items_for_that_user_only(
    api: APIClient, transactional_db: Any, settings: Any, served_by: str
) -> None:
    settings.TASTEBASE_TRAINING_LOCK_TTL = 5
    planted = plant_ratings()
    train(served_by)  # neighbour table, or factor cosine without one
    fan, other = planted.user("action", 0), planted.user("action", 1)
    film = planted.items[0]
    before = [s.item_id for s in similar_items(item=film, limit=5, user=fan)]
    assert len(before) == 5

    as_user(api, fan).put(hidden_url(before[0]))

    after = [s.item_id for s in similar_items(item=film, limit=5, user=fan)]
    assert before[0] not in after and after[:4] == before[1:] and len(after) == 5
    assert [s.item_id for s in similar_items(item=film, limit=5, user=other)] == before
    assert [s.item_id for s in similar_items(item=film, limit=5)] == before


def test_hiding_is_idempotent_and_unhiding_says_whether_it_was_hidden(api: APIClient, alice: Any) -> None:
    item = ItemFactory(title="Heat", year=1995)
    as_user(api, alice)

    first = api.put(hidden_url(item.pk))
    again = api.put(hidden_url(item.pk))

    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["item"] == {"id": item.pk, "title": "Heat", "year": 1995, "genres": []}
    assert again.json()["created_at"] == first.json()["created_at"]
    assert Hidden.objects.filter(user=alice).count() == 1
    listed = api.get(HIDDEN).json()
    assert listed["count"] == 1 and listed["results"][0]["item"]["id"] == item.pk
    assert api.delete(hidden_url(item.pk)).status_code == 204
    assert_error(api.delete(hidden_url(item.pk)), 404, "not_found")
    assert api.get(HIDDEN).json()["count"] == 0


def test_the_hidden_list_is_newest_first_and_paginated(api: APIClient, alice: Any) -> None:
    items = [ItemFactory() for _ in range(3)]
    as_user(api, alice)
    for item in items:
        api.put(hidden_url(item.pk))

    page = api.get(HIDDEN, {"page_size": 2}).json()

    assert page["count"] == 3 and page["next"]
    assert [row["item"]["id"] for row in page["results"]] == [items[2].pk, items[1].pk]


def test_unknown_items_are_a_404(api: APIClient, alice: Any) -> None:
    as_user(api, alice)
    for url in (hidden_url(999_999), watchlist_url(999_999)):
        assert_error(api.put(url), 404, "not_found")
        assert_error(api.delete(url), 404, "not_found")


# ---- watchlist ----------------------------------------------------------------------------


def test_watchlist_add_list_and_remove(api: APIClient, alice: Any) -> None:
    first, second = ItemFactory(), ItemFactory()
    as_user(api, alice)

    assert api.put(watchlist_url(first.pk)).status_code == 201
    assert api.put(watchlist_url(second.pk)).status_code == 201
    assert api.put(watchlist_url(first.pk)).status_code == 200
    assert [row["item"]["id"] for row in api.get(WATCHLIST).json()["results"]] == [second.pk, first.pk]

    assert api.delete(watchlist_url(first.pk)).status_code == 204
    assert_error(api.delete(watchlist_url(first.pk)), 404, "not_found")
    assert [row["item"]["id"] for row in api.get(WATCHLIST).json()["results"]] == [second.pk]
    assert api.get(HIDDEN).json()["count"] == 0  # the two lists are separate


# ---- per-user isolation --------------------------------------------------------------------


def test_each_user_sees_and_changes_only_their_own_lists(api: APIClient, alice: Any, bob: Any) -> None:
    item = ItemFactory()
    alice_api, bob_api = as_user(api, alice), as_user(APIClient(), bob)
    alice_api.put(hidden_url(item.pk))
    alice_api.put(watchlist_url(item.pk))

    assert bob_api.get(HIDDEN).json()["count"] == 0
    assert bob_api.get(WATCHLIST).json()["count"] == 0
    assert_error(bob_api.delete(hidden_url(item.pk)), 404, "not_found")
    assert_error(bob_api.delete(watchlist_url(item.pk)), 404, "not_found")
    assert bob_api.put(hidden_url(item.pk)).status_code == 201  # bob's own entry

    assert alice_api.get(HIDDEN).json()["count"] == 1
    assert alice_api.get(WATCHLIST).json()["count"] == 1
    assert Hidden.objects.filter(item=item).count() == 2


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_the_lists_need_a_signed_in_user(api: APIClient, db: Any, method: str) -> None:
    item = ItemFactory()
    for url in (HIDDEN, WATCHLIST) if method == "get" else (hidden_url(item.pk), watchlist_url(item.pk)):
        assert_error(getattr(api, method)(url), 401, "not_authenticated")


def test_a_repeated_recommendation_request_is_served_from_the_cache_in_a_few_queries(
    api: APIClient, trained: Planted, django_assert_max_num_queries: Any
) -> None:
    """The list (items with their genres) comes from the cache: no query per item or genre."""
    as_user(api, trained.user("action"))
    url = reverse("api:me_recommendations") + "?n=10"
    first = api.get(url).json()
    assert len(first["results"]) == 10 and all(r["item"]["genres"] for r in first["results"])
    # the token, and the live versions (one query for all kinds)
    with django_assert_max_num_queries(2):
        again = api.get(url).json()
    assert again == first
