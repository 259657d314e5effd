"""The server-rendered pages, through Django's test client."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import Item
from ratings.models import Rating
from ratings.services import rating_upsert
from tests.conftest import PASSWORD
from tests.factories import GenreFactory, ItemFactory, UserFactory


@pytest.fixture
def catalog(db):  # type: ignore[no-untyped-def]
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    heat = ItemFactory(title="Heat", year=1995)
    heat.genres.add(drama)
    toy = ItemFactory(title="Toy Story", year=1995)
    toy.genres.add(comedy)
    casablanca = ItemFactory(title="Casablanca", year=1942)
    casablanca.genres.add(drama)
    fans = [UserFactory() for _ in range(3)]
    for fan in fans:
        rating_upsert(user=fan, item=toy, score=4.0)
    rating_upsert(user=fans[0], item=casablanca, score=5.0)
    return {"heat": heat, "toy": toy, "casablanca": casablanca}


def _titles(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.item.title for row in response.context["rows"]]


def test_browse_lists_items_most_rated_first(client, catalog) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("catalog:item_list"))
    assert response.status_code == 200
    assert _titles(response) == ["Toy Story", "Casablanca", "Heat"]
    assert b"Toy Story" in response.content


def test_search_matches_part_of_a_title_case_insensitively(client, catalog) -> None:  # type: ignore[no-untyped-def]
    assert _titles(client.get(reverse("catalog:item_list"), {"q": "story"})) == ["Toy Story"]


def test_genre_and_year_filters(client, catalog) -> None:  # type: ignore[no-untyped-def]
    url = reverse("catalog:item_list")
    assert sorted(_titles(client.get(url, {"genre": "Drama"}))) == ["Casablanca", "Heat"]
    assert _titles(client.get(url, {"genre": "Drama", "year_max": 1950})) == ["Casablanca"]
    assert sorted(_titles(client.get(url, {"year_min": 1990}))) == ["Heat", "Toy Story"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("title", ["Casablanca", "Heat", "Toy Story"]),
        ("year", ["Casablanca", "Heat", "Toy Story"]),
        ("-rating_mean", ["Casablanca", "Toy Story", "Heat"]),
        ("-rating_count", ["Toy Story", "Casablanca", "Heat"]),
    ],
)
def test_sorting(client, catalog, sort: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert _titles(client.get(reverse("catalog:item_list"), {"sort": sort})) == expected


def test_pagination_splits_long_lists_and_keeps_the_filters(client, db) -> None:  # type: ignore[no-untyped-def]
    for n in range(30):
        ItemFactory(title=f"Alien {n:02d}")
    ItemFactory(title="Zorro")
    first = client.get(reverse("catalog:item_list"), {"q": "alien", "sort": "title"})
    assert len(_titles(first)) == 24
    assert b"q=alien&amp;sort=title&amp;page=2" in first.content
    second = client.get(reverse("catalog:item_list"), {"q": "alien", "sort": "title", "page": 2})
    assert _titles(second) == [f"Alien {n:02d}" for n in range(24, 30)]


def test_item_page_shows_average_count_and_your_rating(client, catalog, alice) -> None:  # type: ignore[no-untyped-def]
    rating_upsert(user=alice, item=catalog["toy"], score=2.5)
    client.force_login(alice)
    response = client.get(reverse("catalog:item_detail", args=[catalog["toy"].pk]))
    text = response.content.decode()
    assert "<strong>3.63★</strong><span>average rating</span>" in text
    assert "<strong>4</strong><span>ratings</span>" in text
    # the half-star widget has your 2.5 checked, and only that
    assert text.count(" checked>") == 1
    assert f'id="rate-{catalog["toy"].pk}-2.5" name="score" value="2.5" checked>' in text
    assert "You rated it 2.5" in text


def test_rate_change_and_delete_with_plain_form_posts(client, catalog, alice) -> None:  # type: ignore[no-untyped-def]
    heat = catalog["heat"]
    client.force_login(alice)
    rate_url = reverse("ratings:rate", args=[heat.pk])
    response = client.post(rate_url, {"score": "4.5"})
    assert response.status_code == 302
    assert Rating.objects.get(user=alice, item=heat).score == 4.5
    client.post(rate_url, {"score": "3.0"})
    assert Rating.objects.get(user=alice, item=heat).score == 3.0
    heat.refresh_from_db()
    assert (heat.rating_count, heat.rating_mean) == (1, 3.0)
    client.post(reverse("ratings:delete", args=[heat.pk]))
    assert not Rating.objects.filter(user=alice, item=heat).exists()


def test_an_off_scale_score_is_refused(client, catalog, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(reverse("ratings:rate", args=[catalog["heat"].pk]), {"score": "5.5"}, follow=True)
    assert "Pick a rating between 0.5 and 5.0" in response.content.decode()
    assert not Rating.objects.filter(user=alice).exists()


def test_you_cannot_change_or_delete_someone_elses_rating(client, catalog, alice, bob) -> None:  # type: ignore[no-untyped-def]
    heat = catalog["heat"]
    rating_upsert(user=alice, item=heat, score=5.0)
    client.force_login(bob)
    client.post(reverse("ratings:rate", args=[heat.pk]), {"score": "1.0"})
    client.post(reverse("ratings:delete", args=[heat.pk]))
    # Bob's posts only ever touch Bob's own rating; Alice's is intact.
    assert Rating.objects.get(user=alice, item=heat).score == 5.0
    assert not Rating.objects.filter(user=bob, item=heat).exists()
    client.force_login(alice)
    assert "5.0" in client.get(reverse("ratings:my_ratings")).content.decode()


def test_anonymous_users_are_sent_to_log_in_before_rating(client, catalog) -> None:  # type: ignore[no-untyped-def]
    url = reverse("ratings:rate", args=[catalog["heat"].pk])
    response = client.post(url, {"score": "4.0"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Rating.objects.filter(item=catalog["heat"]).count() == 0
    assert client.get(reverse("ratings:my_ratings"))["Location"].startswith(reverse("login"))


def test_rating_redirect_ignores_offsite_next(client, catalog, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    heat = catalog["heat"]
    response = client.post(
        reverse("ratings:rate", args=[heat.pk]), {"score": "4.0", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("catalog:item_detail", args=[heat.pk])


def test_my_ratings_lists_only_my_ratings_newest_first(client, catalog, alice, bob) -> None:  # type: ignore[no-untyped-def]
    rating_upsert(user=alice, item=catalog["heat"], score=3.5)
    rating_upsert(user=alice, item=catalog["casablanca"], score=4.5)
    rating_upsert(user=bob, item=catalog["toy"], score=1.0)
    client.force_login(alice)
    page = client.get(reverse("ratings:my_ratings")).context["page"]
    assert [(r.item.title, r.score) for r in page] == [("Casablanca", 4.5), ("Heat", 3.5)]


def test_sign_up_logs_you_in(client, db) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("signup"), {"username": "dora", "password1": PASSWORD, "password2": PASSWORD}, follow=True
    )
    assert response.context["user"].username == "dora"
    assert response.context["user"].is_authenticated


def test_log_in_and_out(client, alice) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.context["user"].is_authenticated
    response = client.post(reverse("logout"), follow=True)
    assert not response.context["user"].is_authenticated


def test_unknown_item_is_404(client, db) -> None:  # type: ignore[no-untyped-def]
    assert client.get(reverse("catalog:item_detail", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    "name",
    [
        "admin:catalog_item_changelist",
        "admin:catalog_genre_changelist",
        "admin:ratings_rating_changelist",
        "admin:ratings_rating_add",
        "admin:catalog_item_add",
    ],
)
def test_admin_pages_load_for_staff(client, catalog, staff, name: str) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    response = client.get(reverse(name), {"q": "Toy"} if name.endswith("changelist") else {})
    assert response.status_code == 200


def test_admin_is_staff_only(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.get(reverse("admin:ratings_rating_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_item_autocomplete_finds_items(client, catalog, staff) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    response = client.get(
        "/admin/autocomplete/",
        {"term": "toy", "app_label": "ratings", "model_name": "rating", "field_name": "item"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == [str(catalog["toy"])]


def test_admin_edit_goes_through_the_service(client, catalog, staff, alice) -> None:  # type: ignore[no-untyped-def]
    rating = rating_upsert(user=alice, item=catalog["heat"], score=2.0)
    client.force_login(staff)
    url = reverse("admin:ratings_rating_change", args=[rating.pk])
    response = client.post(url, {"user": alice.pk, "item": catalog["heat"].pk, "score": "4.0"})
    assert response.status_code == 302
    heat = Item.objects.get(pk=catalog["heat"].pk)
    assert (heat.rating_count, heat.rating_mean) == (1, 4.0)
