"""The browse page's filters say what is wrong with a bad value instead of silently ignoring it."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from catalog.forms import ItemFilterForm
from catalog.selectors import YEAR_MAX, YEAR_MIN, ItemFilters
from tests.factories import GenreFactory, ItemFactory

pytestmark = pytest.mark.django_db

GENRES = ["Comedy", "Drama"]


@pytest.fixture
def catalog(db: Any) -> None:
    comedy, drama = GenreFactory(name="Comedy"), GenreFactory(name="Drama")
    ItemFactory(title="Heat", year=1995).genres.add(drama)
    ItemFactory(title="Toy Story", year=1995).genres.add(comedy)
    ItemFactory(title="Casablanca", year=1942).genres.add(drama)


def form(**data: Any) -> ItemFilterForm:
    return ItemFilterForm({key: str(value) for key, value in data.items()}, genres=GENRES)


def browse(client: Any, **params: Any) -> tuple[str, list[str]]:
    response = client.get(reverse("catalog:item_list"), params)
    assert response.status_code == 200
    return response.content.decode(), sorted(row.item.title for row in response.context["rows"])


def test_an_unknown_genre_is_an_error_naming_it() -> None:
    bad = form(genre="Western")
    assert not bad.is_valid()
    assert bad.errors["genre"] == ["There is no genre called “Western”; pick one from the list."]


@pytest.mark.parametrize(("field", "year"), [("year_min", 3000), ("year_max", 3000), ("year_min", 1066)])
def test_a_year_outside_the_range_is_an_error_giving_the_range(field: str, year: int) -> None:
    bad = form(**{field: year})
    assert bad.errors[field] == [f"Pick a year from {YEAR_MIN} to {YEAR_MAX}."]


def test_a_to_year_before_the_from_year_is_an_error_on_the_to_year() -> None:
    bad = form(year_min=2000, year_max=1990)
    assert bad.errors == {"year_max": ["1990 is before the “from” year 2000."]}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"year_min": "nineteen"}, "year_min", "Enter a year, such as 1994."),
        ({"min_ratings": "-1"}, "min_ratings", "Enter 0 or more."),
        ({"min_ratings": "lots"}, "min_ratings", "Enter a whole number."),
        ({"min_ratings": str(2**31)}, "min_ratings", "Enter a smaller number."),
        ({"sort": "-price"}, "sort", "Pick an order from the list."),
    ],
)
def test_other_bad_values_are_errors_too(data: dict[str, str], field: str, message: str) -> None:
    assert form(**data).errors == {field: [message]}


def test_only_the_bad_filter_is_left_out() -> None:
    filters = form(q="heat", genre="Western", year_min=1990, year_max=3000, sort="title").to_filters()
    assert filters == ItemFilters(q="heat", year_min=1990, sort="title")


def test_good_values_and_no_values_are_not_errors() -> None:
    good = form(genre="Drama", year_min=1990, year_max=1990, min_ratings=0, sort="-year")
    assert good.errors == {}
    assert good.to_filters() == ItemFilters(
        genre="Drama", year_min=1990, year_max=1990, min_ratings=0, sort="-year"
    )
    assert ItemFilterForm(None, genres=GENRES).to_filters() == ItemFilters()


def test_the_page_shows_the_error_next_to_its_field_and_says_it_was_not_applied(client, catalog) -> None:  # type: ignore[no-untyped-def]
    html, titles = browse(client, genre="Western", year_min=1990)
    assert "There is no genre called “Western”; pick one from the list." in html
    assert 'data-testid="filter-errors"' in html and "Not applied: the filter marked below." in html
    # The error sits inside the genre field's label, right after its select.
    genre_label = html[html.index('name="genre"') : html.index("</label>", html.index('name="genre"'))]
    assert "There is no genre called" in genre_label
    # The good filter still applies; the bad one does not.
    assert titles == ["Heat", "Toy Story"]


def test_the_page_gives_the_year_range_and_the_order_problem(client, catalog) -> None:  # type: ignore[no-untyped-def]
    html, _ = browse(client, year_min=3000)
    assert f"Pick a year from {YEAR_MIN} to {YEAR_MAX}." in html
    html, titles = browse(client, year_min=1990, year_max=1950)
    assert "1950 is before the “from” year 1990." in html
    assert titles == ["Heat", "Toy Story"]
    html, _ = browse(client, genre="Western", year_max=3000)
    assert "Not applied: the filters marked below." in html


def test_the_page_without_bad_values_shows_no_error(client, catalog) -> None:  # type: ignore[no-untyped-def]
    html, titles = browse(client, genre="Drama", year_min=1900, year_max=2000)
    assert "errorlist" not in html
    assert titles == ["Casablanca", "Heat"]
    assert "errorlist" not in browse(client)[0]


def test_the_api_refuses_the_same_values_with_a_400(client, catalog) -> None:  # type: ignore[no-untyped-def]
    for params in ({"genre": "Western"}, {"year_min": 3000}, {"year_min": 2000, "year_max": 1990}):
        response = client.get(reverse("api:items"), params)
        assert response.status_code == 400, params
