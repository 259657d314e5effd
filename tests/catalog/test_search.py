"""Title search: articles, word order, case, accents, punctuation and numbers do not matter;
the site's browse page and the API search through the same selector (SQLite and PostgreSQL)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from catalog.models import Item
from catalog.selectors import ItemFilters, item_list
from catalog.titles import title_search_text
from ratings.importing import movielens_import
from tests.factories import GenreFactory, ItemFactory
from tests.ratings.test_movielens_parsing import write_csv_dataset

pytestmark = pytest.mark.django_db

ON_POSTGRES = connection.vendor == "postgresql"


def found(query: str, **filters: Any) -> list[str]:
    return [item.title for item in item_list(filters=ItemFilters(q=query, sort="title", **filters))]


@pytest.fixture
def shelf(db: Any) -> dict[str, Item]:
    titles = [
        "The Shining",
        "Twelve Monkeys",  # ML-100K's form
        "12 Angry Men",
        "The Godfather",
        "The Godfather: Part II",
        "Les Misérables",
        "Schindler's List",
        "L.A. Confidential",
        "Amélie",
        "Spider-Man",
    ]
    return {title: ItemFactory(title=title) for title in titles}


@pytest.mark.parametrize("query", ["the shining", "shining the", "Shining, The", "SHINING", "  shin  "])
def test_articles_word_order_case_and_spaces_do_not_matter(shelf, query: str) -> None:  # type: ignore[no-untyped-def]
    assert found(query) == ["The Shining"]


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("miserables", "Les Misérables"),
        ("les misérables", "Les Misérables"),
        ("MISÉRABLES", "Les Misérables"),
        ("amelie", "Amélie"),
        ("schindlers list", "Schindler's List"),
        ("schindler’s list", "Schindler's List"),
        ("la confidential", "L.A. Confidential"),
        ("l.a. confidential", "L.A. Confidential"),
        ("spiderman", "Spider-Man"),
        ("spider man", "Spider-Man"),
    ],
)
def test_accents_and_punctuation_do_not_matter(shelf, query: str, title: str) -> None:  # type: ignore[no-untyped-def]
    assert found(query) == [title]


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("12 monkeys", "Twelve Monkeys"),
        ("twelve monkeys", "Twelve Monkeys"),
        ("twelve angry men", "12 Angry Men"),
        ("godfather 2", "The Godfather: Part II"),
        ("godfather part two", "The Godfather: Part II"),
        ("godfather part ii", "The Godfather: Part II"),
    ],
)
def test_small_numbers_match_in_digits_words_or_roman_numerals(shelf, query: str, title: str) -> None:  # type: ignore[no-untyped-def]
    assert found(query) == [title]


def test_12_monkeys_finds_ml_latests_aka_title_too(db) -> None:  # type: ignore[no-untyped-def]
    ItemFactory(title="Twelve Monkeys (a.k.a. 12 Monkeys)")
    assert found("12 monkeys") == found("twelve monkeys") == ["Twelve Monkeys (a.k.a. 12 Monkeys)"]


def test_every_word_must_match(shelf) -> None:  # type: ignore[no-untyped-def]
    assert found("godfather") == ["The Godfather", "The Godfather: Part II"]
    assert found("godfather shining") == []


def test_a_query_without_letters_or_digits_finds_nothing(shelf) -> None:  # type: ignore[no-untyped-def]
    assert found("!!! ...") == []


def test_search_combines_with_the_other_filters(shelf) -> None:  # type: ignore[no-untyped-def]
    crime = GenreFactory(name="Crime")
    shelf["The Godfather: Part II"].genres.add(crime)
    assert found("godfather", genre="Crime") == ["The Godfather: Part II"]


@pytest.mark.skipif(not ON_POSTGRES, reason="trigram similarity is PostgreSQL's pg_trgm")
def test_on_postgres_a_misspelling_finds_the_closest_titles(shelf) -> None:  # type: ignore[no-untyped-def]
    assert found("godfater") == ["The Godfather", "The Godfather: Part II"]
    assert found("the shinning") == ["The Shining"]
    assert found("shawshank redemtion") == []  # nothing close enough


@pytest.mark.skipif(not ON_POSTGRES, reason="trigram similarity is PostgreSQL's pg_trgm")
def test_on_postgres_the_closest_title_comes_first_whatever_the_order(shelf) -> None:  # type: ignore[no-untyped-def]
    ItemFactory(title="The Shining Star of the Shoeshine Boys")
    assert found("the shinning star") == ["The Shining Star of the Shoeshine Boys", "The Shining"]
    by_title_descending = item_list(filters=ItemFilters(q="shinning star", sort="-title"))
    assert by_title_descending[0].title == "The Shining Star of the Shoeshine Boys"


@pytest.mark.skipif(not ON_POSTGRES, reason="trigram similarity is PostgreSQL's pg_trgm")
def test_on_postgres_near_misses_only_show_when_nothing_matches_exactly(shelf) -> None:  # type: ignore[no-untyped-def]
    comedy = GenreFactory(name="Comedy")
    ItemFactory(title="The Godfaher Returns").genres.add(comedy)
    assert found("godfather") == ["The Godfather", "The Godfather: Part II"]
    assert found("godfather", genre="Comedy") == ["The Godfaher Returns"]


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite has no trigram matching")
def test_on_sqlite_a_misspelling_finds_nothing(shelf) -> None:  # type: ignore[no-untyped-def]
    assert found("godfater") == []


def test_the_browse_page_and_the_api_search_alike(client, shelf) -> None:  # type: ignore[no-untyped-def]
    for query in ["the shining", "12 monkeys", "godfather", "godfater", "!!!"]:
        page = client.get(reverse("catalog:item_list"), {"q": query, "sort": "title"})
        api = client.get(reverse("api:items"), {"q": query, "ordering": "title"})
        assert [row.item.title for row in page.context["rows"]] == [r["title"] for r in api.json()["results"]]
        assert [row.item.title for row in page.context["rows"]] == found(query)


# ---- keeping search_text -----------------------------------------------------------------


def test_search_text_follows_the_title_on_save_and_bulk_create(db) -> None:  # type: ignore[no-untyped-def]
    item = Item.objects.create(title="The Shining", external_id="shining")
    assert item.search_text == "the shining"
    item.title = "The Shining (Extended)"
    item.save()
    item.refresh_from_db()
    assert item.search_text == "the shining extended"
    [bulk] = Item.objects.bulk_create([Item(title="Twelve Monkeys", external_id="bulk")])
    assert Item.objects.get(pk=bulk.pk).search_text == "twelve monkeys 12 xii"


MOVIES = (
    "movieId,title,genres\n"
    '1,"Shining, The (1980)",Horror\n'
    "2,Twelve Monkeys (a.k.a. 12 Monkeys) (1995),Sci-Fi\n"
    '3,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Fantasy\n'
)
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n"


def test_the_importer_stores_display_titles_that_search_finds(tmp_path: Path) -> None:
    movielens_import(path=write_csv_dataset(tmp_path, ratings=RATINGS, movies=MOVIES))
    titles = dict(Item.objects.filter(source="movielens").values_list("external_id", "title"))
    assert titles == {
        "1": "The Shining",
        "2": "Twelve Monkeys (a.k.a. 12 Monkeys)",
        "3": "The City of Lost Children (La Cité des enfants perdus)",
    }
    assert found("the shining") == ["The Shining"]
    assert found("cite des enfants perdus") == ["The City of Lost Children (La Cité des enfants perdus)"]


def test_a_reimport_changes_nothing_and_a_changed_title_is_updated_in_place(tmp_path: Path) -> None:
    movielens_import(path=write_csv_dataset(tmp_path / "a", ratings=RATINGS, movies=MOVIES))
    pks = dict(Item.objects.values_list("external_id", "id"))
    again = movielens_import(path=write_csv_dataset(tmp_path / "b", ratings=RATINGS, movies=MOVIES))
    assert (again.items_created, again.items_updated) == (0, 0)
    renamed = MOVIES.replace('"Shining, The (1980)"', '"Shining, The (Director\'s Cut) (1980)"')
    summary = movielens_import(path=write_csv_dataset(tmp_path / "c", ratings=RATINGS, movies=renamed))
    assert (summary.items_created, summary.items_updated) == (0, 1)
    assert dict(Item.objects.values_list("external_id", "id")) == pks  # same rows, no duplicates
    shining = Item.objects.get(source="movielens", external_id="1")
    assert shining.title == "The Shining (Director's Cut)"
    assert shining.search_text == title_search_text("The Shining (Director's Cut)")
    assert found("directors cut") == ["The Shining (Director's Cut)"]


def test_the_data_migration_converts_existing_rows(db) -> None:  # type: ignore[no-untyped-def]
    """Rows imported before display titles: MovieLens titles move their articles, every
    row gets its search text, and a re-import afterwards finds nothing to change."""
    migration = importlib.import_module("catalog.migrations.0004_display_titles_search_text_damped_means")
    movielens = ItemFactory(title="Usual Suspects, The", source="movielens")
    mine = ItemFactory(title="Paris, The Musical", source="tastebase")
    Item.objects.filter(pk__in=[movielens.pk, mine.pk]).update(search_text="")  # as after 0003
    migration.forwards(apps, None)  # it needs no schema editor
    movielens.refresh_from_db()
    mine.refresh_from_db()
    assert (movielens.title, movielens.search_text) == ("The Usual Suspects", "the usual suspects")
    assert (mine.title, mine.search_text) == ("Paris, The Musical", "paris the musical")
