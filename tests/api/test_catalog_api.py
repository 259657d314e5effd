"""The catalog API: browse and search items, one item, similar items, genres."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import Item
from ratings.services import rating_upsert
from recommender.models import ItemNeighbor, ModelKind, ModelVersion, VersionStatus
from tests.api.conftest import as_user, assert_error
from tests.factories import GenreFactory, ItemFactory

pytestmark = pytest.mark.django_db

ITEM_KEYS = {"id", "title", "year", "genres", "rating_count", "rating_mean"}


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["title"] for row in response.json()["results"]]


@pytest.fixture
def shelf(alice: Any, bob: Any) -> dict[str, Any]:
    """Four films with genres, years and ratings that order differently on every key."""
    comedy, drama = GenreFactory(name="Comedy"), GenreFactory(name="Drama")
    films = {
        "alien": ItemFactory(title="Alien", year=1979),
        "brazil": ItemFactory(title="Brazil", year=1985),
        "casablanca": ItemFactory(title="Casablanca", year=1942),
        "dune": ItemFactory(title="Dune", year=2021),
    }
    films["brazil"].genres.add(comedy, drama)
    films["casablanca"].genres.add(drama)
    # Popularity: alien 2, brazil 1, casablanca 0, dune 1. Means: alien 3.0, brazil 5.0, dune 1.0.
    rating_upsert(user=alice, item=films["alien"], score=4.0)
    rating_upsert(user=bob, item=films["alien"], score=2.0)
    rating_upsert(user=alice, item=films["brazil"], score=5.0)
    rating_upsert(user=bob, item=films["dune"], score=1.0)
    return films


# ---- GET items/ ---------------------------------------------------------------------


def test_the_item_list_is_public_paginated_and_shows_each_item_in_one_shape(api, shelf) -> None:  # type: ignore[no-untyped-def]
    response = api.get(reverse("api:items"), {"ordering": "title"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4 and body["previous"] is None and body["next"] is None
    brazil = body["results"][1]
    assert set(brazil) == ITEM_KEYS
    assert brazil == {
        "id": shelf["brazil"].pk,
        "title": "Brazil",
        "year": 1985,
        "genres": ["Comedy", "Drama"],
        "rating_count": 1,
        "rating_mean": 5.0,
    }
    casablanca = body["results"][2]
    assert casablanca["rating_count"] == 0 and casablanca["rating_mean"] is None


def test_the_default_order_is_most_rated_first(api, shelf) -> None:  # type: ignore[no-untyped-def]
    assert titles(api.get(reverse("api:items")))[0] == "Alien"


def test_pages_follow_page_and_page_size_up_to_a_hundred(api, shelf) -> None:  # type: ignore[no-untyped-def]
    first = api.get(reverse("api:items"), {"ordering": "title", "page_size": 3}).json()
    assert [r["title"] for r in first["results"]] == ["Alien", "Brazil", "Casablanca"]
    assert first["next"] is not None
    second = api.get(reverse("api:items"), {"ordering": "title", "page_size": 3, "page": 2}).json()
    assert [r["title"] for r in second["results"]] == ["Dune"]
    Item.objects.bulk_create(ItemFactory.build_batch(150))
    assert len(api.get(reverse("api:items"), {"page_size": 1000}).json()["results"]) == 100


def test_a_page_past_the_end_is_a_404_in_the_error_shape(api, shelf) -> None:  # type: ignore[no-untyped-def]
    assert_error(api.get(reverse("api:items"), {"page": 9}), 404, "not_found")
    assert_error(api.get(reverse("api:items"), {"page": "last-ish"}), 404, "not_found")


def test_q_searches_titles_case_insensitively_as_the_site_does(api, shelf) -> None:  # type: ignore[no-untyped-def]
    assert titles(api.get(reverse("api:items"), {"q": "  ALI "})) == ["Alien"]
    assert titles(api.get(reverse("api:items"), {"q": "a", "ordering": "title"})) == [
        "Alien",
        "Brazil",
        "Casablanca",
    ]
    assert titles(api.get(reverse("api:items"), {"q": "no such film"})) == []


def test_q_with_a_nul_character_or_over_200_characters_is_a_400(api, shelf) -> None:  # type: ignore[no-untyped-def]
    assert "q" in assert_error(api.get(reverse("api:items"), {"q": "a\x00b"}), 400, "invalid")["fields"]
    assert "q" in assert_error(api.get(reverse("api:items"), {"q": "x" * 201}), 400, "invalid")["fields"]


def test_genre_filters_by_name(api, shelf) -> None:  # type: ignore[no-untyped-def]
    assert titles(api.get(reverse("api:items"), {"genre": "Drama", "ordering": "title"})) == [
        "Brazil",
        "Casablanca",
    ]
    assert titles(api.get(reverse("api:items"), {"genre": "Comedy"})) == ["Brazil"]


def test_an_unknown_genre_is_a_400_naming_it(api, shelf) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(api.get(reverse("api:items"), {"genre": "Western"}), 400, "invalid")
    assert list(error["fields"]) == ["genre"]
    assert "Western" in error["fields"]["genre"][0]


def test_year_min_and_year_max_bound_the_release_year(api, shelf) -> None:  # type: ignore[no-untyped-def]
    url = reverse("api:items")
    assert titles(api.get(url, {"year_min": 1979, "year_max": 1985, "ordering": "year"})) == [
        "Alien",
        "Brazil",
    ]
    assert titles(api.get(url, {"year_min": 2000})) == ["Dune"]
    assert titles(api.get(url, {"year_max": 1950})) == ["Casablanca"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"year_min": "1799"}, "year_min"),
        ({"year_max": "2101"}, "year_max"),
        ({"year_min": "nineteen"}, "year_min"),
        ({"year_max": "1990.5"}, "year_max"),
        ({"year_min": "2000", "year_max": "1990"}, "year_max"),
        ({"min_ratings": "-1"}, "min_ratings"),
        ({"min_ratings": "many"}, "min_ratings"),
        ({"min_ratings": str(2**31)}, "min_ratings"),
    ],
)
def test_malformed_years_and_counts_are_a_400_naming_the_parameter(api, shelf, params, field: str) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(api.get(reverse("api:items"), params), 400, "invalid")
    assert list(error["fields"]) == [field]


def test_min_ratings_keeps_items_with_at_least_that_many_ratings(api, shelf) -> None:  # type: ignore[no-untyped-def]
    url = reverse("api:items")
    assert titles(api.get(url, {"min_ratings": 2})) == ["Alien"]
    assert titles(api.get(url, {"min_ratings": 1, "ordering": "title"})) == ["Alien", "Brazil", "Dune"]
    assert len(titles(api.get(url, {"min_ratings": 0}))) == 4


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("title", ["Alien", "Brazil", "Casablanca", "Dune"]),
        ("-title", ["Dune", "Casablanca", "Brazil", "Alien"]),
        ("year", ["Casablanca", "Alien", "Brazil", "Dune"]),
        ("-year", ["Dune", "Brazil", "Alien", "Casablanca"]),
        ("popularity", ["Casablanca", "Dune", "Brazil", "Alien"]),  # ties: newest id first
        ("-popularity", ["Alien", "Brazil", "Dune", "Casablanca"]),  # ties: oldest id first
        ("mean_rating", ["Dune", "Alien", "Brazil", "Casablanca"]),  # unrated last
        ("-mean_rating", ["Brazil", "Alien", "Dune", "Casablanca"]),  # unrated last
    ],
)
def test_every_ordering_sorts_as_named(api, shelf, ordering: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert titles(api.get(reverse("api:items"), {"ordering": ordering})) == expected


def test_an_unknown_ordering_is_a_400_listing_the_allowed_values(api, shelf) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(api.get(reverse("api:items"), {"ordering": "rating_count"}), 400, "invalid")
    message = error["fields"]["ordering"][0]
    for allowed in (
        "title",
        "-title",
        "year",
        "-year",
        "popularity",
        "-popularity",
        "mean_rating",
        "-mean_rating",
    ):
        assert allowed in message


def test_the_item_list_takes_a_bounded_number_of_queries(api, shelf, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    Item.objects.bulk_create(ItemFactory.build_batch(60))
    with django_assert_max_num_queries(3):  # count, page, genres of the page
        assert len(api.get(reverse("api:items"), {"page_size": 50}).json()["results"]) == 50


# ---- GET items/{id}/ ----------------------------------------------------------------


def test_an_anonymous_visitor_sees_the_item_and_its_stats(api, shelf) -> None:  # type: ignore[no-untyped-def]
    response = api.get(reverse("api:item_detail", kwargs={"item_id": shelf["alien"].pk}))
    assert response.status_code == 200
    assert response.json() == {
        "id": shelf["alien"].pk,
        "title": "Alien",
        "year": 1979,
        "genres": [],
        "rating_count": 2,
        "rating_mean": 3.0,
        "your_rating": None,
        "predicted_rating": None,
    }


def test_a_signed_in_user_also_sees_their_rating_and_predicted_stars(api, shelf, alice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []

    def predicted(*, user: Any, item: Item) -> float:
        seen.append((user, item))
        return 3.7

    monkeypatch.setattr("catalog.api.predicted_rating_for_user", predicted)
    body = as_user(api, alice).get(reverse("api:item_detail", kwargs={"item_id": shelf["brazil"].pk})).json()
    assert body["your_rating"] == 5.0 and body["predicted_rating"] == 3.7
    assert seen == [(alice, shelf["brazil"])]


def test_without_a_rating_or_a_rating_model_both_are_null(api, shelf, charlie) -> None:  # type: ignore[no-untyped-def]
    body = as_user(api, charlie).get(reverse("api:item_detail", kwargs={"item_id": shelf["alien"].pk})).json()
    assert body["your_rating"] is None and body["predicted_rating"] is None


def test_bob_never_sees_alices_rating_on_the_item(api, shelf, bob) -> None:  # type: ignore[no-untyped-def]
    body = as_user(api, bob).get(reverse("api:item_detail", kwargs={"item_id": shelf["brazil"].pk})).json()
    assert body["your_rating"] is None  # only alice rated Brazil


@pytest.mark.parametrize("name", ["item_detail", "item_similar"])
def test_an_unknown_item_is_a_404_in_the_error_shape(api, shelf, name: str) -> None:  # type: ignore[no-untyped-def]
    missing = max(item.pk for item in shelf.values()) + 1
    error = assert_error(api.get(reverse(f"api:{name}", kwargs={"item_id": missing})), 404, "not_found")
    assert str(missing) in error["message"]
    # Beyond any database integer: still a plain 404, never a 500.
    assert_error(api.get(reverse(f"api:{name}", kwargs={"item_id": 10**30})), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/items/abc/", "/api/v1/items/-3/", "/api/v1/items/1.5/similar/"])
def test_a_malformed_item_id_matches_no_route(api, path: str) -> None:  # type: ignore[no-untyped-def]
    assert_error(api.get(path), 404, "not_found")


# ---- GET items/{id}/similar/ ----------------------------------------------------------


@pytest.fixture
def neighbours(shelf) -> list[Item]:  # type: ignore[no-untyped-def]
    """An active similarity version: Alien's neighbours are Dune, Brazil, Casablanca in that order."""
    version = ModelVersion.objects.create(
        kind=ModelKind.SIMILARITY, algorithm="item_knn", status=VersionStatus.ACTIVE
    )
    ordered = [shelf["dune"], shelf["brazil"], shelf["casablanca"]]
    ItemNeighbor.objects.bulk_create(
        ItemNeighbor(version=version, item=shelf["alien"], neighbor=n, score=0.9 - rank / 10, rank=rank)
        for rank, n in enumerate(ordered)
    )
    return ordered


def test_similar_items_come_most_similar_first_with_scores(api, shelf, neighbours) -> None:  # type: ignore[no-untyped-def]
    response = api.get(reverse("api:item_similar", kwargs={"item_id": shelf["alien"].pk}))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["item"]["title"] for r in results] == ["Dune", "Brazil", "Casablanca"]
    assert [r["score"] for r in results] == pytest.approx([0.9, 0.8, 0.7])
    assert set(results[1]) == {"item", "score"} and set(results[1]["item"]) == ITEM_KEYS
    assert results[1]["item"]["genres"] == ["Comedy", "Drama"]


def test_n_limits_the_similar_items(api, shelf, neighbours) -> None:  # type: ignore[no-untyped-def]
    url = reverse("api:item_similar", kwargs={"item_id": shelf["alien"].pk})
    assert [r["item"]["title"] for r in api.get(url, {"n": 2}).json()["results"]] == ["Dune", "Brazil"]


@pytest.mark.parametrize("n", ["0", "101", "ten", "-1"])
def test_n_outside_one_to_a_hundred_is_a_400(api, shelf, n: str) -> None:  # type: ignore[no-untyped-def]
    url = reverse("api:item_similar", kwargs={"item_id": shelf["alien"].pk})
    assert list(assert_error(api.get(url, {"n": n}), 400, "invalid")["fields"]) == ["n"]


def test_items_the_user_hid_are_not_among_their_similar_items(api, shelf, neighbours, alice) -> None:  # type: ignore[no-untyped-def]
    from ratings.lists import hidden_add

    hidden_add(user=alice, item=shelf["dune"])
    url = reverse("api:item_similar", kwargs={"item_id": shelf["alien"].pk})
    assert [r["item"]["title"] for r in as_user(api, alice).get(url).json()["results"]] == [
        "Brazil",
        "Casablanca",
    ]
    assert len(APIClient().get(url).json()["results"]) == 3  # others still see Dune


def test_without_a_model_there_are_no_similar_items(api, shelf) -> None:  # type: ignore[no-untyped-def]
    response = api.get(reverse("api:item_similar", kwargs={"item_id": shelf["alien"].pk}))
    assert response.status_code == 200 and response.json() == {"results": []}


# ---- GET genres/ --------------------------------------------------------------------


def test_genres_lists_every_genre_by_name(api, shelf) -> None:  # type: ignore[no-untyped-def]
    GenreFactory(name="Animation")
    response = api.get(reverse("api:genres"))
    assert response.status_code == 200
    assert [g["name"] for g in response.json()] == ["Animation", "Comedy", "Drama"]
    assert all(set(g) == {"id", "name"} for g in response.json())
