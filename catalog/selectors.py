"""Read-side queries over the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from operator import and_

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import F, Q, QuerySet, Value

from .models import Genre, Item
from .titles import search_words

#: The largest primary key the database can hold (ids are 64-bit ``BigAutoField``\s).
MAX_ID = 2**63 - 1

#: The release years the filters accept (the site's form and the API).
YEAR_MIN, YEAR_MAX = 1800, 2100

#: The sort keys users can pick -> ORDER BY. Every one ends in a unique column
#: so pagination is stable, and each is backed by an index on Item.
#: "Highest rated" (key ``-rating_mean``, kept as the API's ordering names map to it)
#: orders by the damped mean ``(sum + K·μ) / (count + K)``: a film needs many good
#: ratings to rise above the catalog mean μ, so two 5-star ratings do not top the list.
ITEM_SORTS: dict[str, tuple[str, list[object]]] = {
    "title": ("Title", ["title", "id"]),
    "-year": ("Newest", [F("year").desc(nulls_last=True), "title", "id"]),
    "year": ("Oldest", [F("year").asc(nulls_last=True), "title", "id"]),
    "-rating_count": ("Most rated", ["-rating_count", "id"]),
    "-rating_mean": ("Highest rated", [F("rating_damped_mean").desc(nulls_last=True), "-rating_count", "id"]),
}
DEFAULT_SORT = "-rating_count"

#: Every order :func:`item_list` understands: the site's menu (``ITEM_SORTS``) and the
#: reverse directions the API also offers. Each ends in ``id`` so pages are stable.
ITEM_ORDERINGS: dict[str, list[object]] = {
    **{key: ordering for key, (_, ordering) in ITEM_SORTS.items()},
    "-title": ["-title", "-id"],
    "rating_count": ["rating_count", "-id"],
    "rating_mean": [F("rating_damped_mean").asc(nulls_last=True), "-rating_count", "id"],
}


@dataclass(frozen=True)
class ItemFilters:
    q: str = ""
    genre: str = ""
    year_min: int | None = None
    year_max: int | None = None
    min_ratings: int | None = None
    sort: str = DEFAULT_SORT


def item_list(*, filters: ItemFilters) -> QuerySet[Item]:
    """Items matching the filters, in the requested order (no per-row aggregation).

    A search (``filters.q``) keeps the items whose title has every word of the query
    (:func:`_title_search`); on PostgreSQL, when none has, the closest spellings instead.
    """
    items = Item.objects.all()
    if filters.genre:
        items = items.filter(genres__name=filters.genre)
    if filters.year_min is not None:
        items = items.filter(year__gte=filters.year_min)
    if filters.year_max is not None:
        items = items.filter(year__lte=filters.year_max)
    if filters.min_ratings:
        items = items.filter(rating_count__gte=filters.min_ratings)
    ordering = ITEM_ORDERINGS.get(filters.sort, ITEM_ORDERINGS[DEFAULT_SORT])
    if filters.q:
        return _title_search(items, query=filters.q, ordering=ordering)
    return items.order_by(*ordering)  # type: ignore[arg-type]


def _title_search(items: QuerySet[Item], *, query: str, ordering: list[object]) -> QuerySet[Item]:
    """The ``items`` whose title has every word of ``query``, in ``ordering``.

    Both sides are compared as :func:`catalog.titles.search_words` (case, accents and
    punctuation ignored) and each query word may appear anywhere in the title's
    ``search_text``, in any order: "the shining", "shining the", "SHINING" and "shin" all
    find "The Shining"; "12 monkeys" finds "Twelve Monkeys" (numbers 0-20 are stored in
    every spelling). A query without letters or digits finds nothing.

    When no item matches exactly, PostgreSQL falls back to trigram word similarity
    (pg_trgm's ``%>``, at its ``word_similarity_threshold``, 0.6 by default) and
    orders by it, most similar first: "godfater" finds "The Godfather". Only then,
    because on a small catalogue the planner scans every row for ``%>`` (9 ms on
    ML-100K against 0.4 ms for the exact match), and because exact matches followed
    by near misses would bury the right answers under noise. SQLite has no trigram
    matching: there a misspelt word finds nothing.
    """
    words = search_words(query)
    if not words:
        return items.none()
    exact = items.filter(reduce(and_, (Q(search_text__contains=word) for word in words)))
    if connection.vendor != "postgresql" or exact.exists():
        return exact.order_by(*ordering)  # type: ignore[arg-type]
    normalized = " ".join(words)
    similar = items.filter(TrigramWordSimilar(F("search_text"), Value(normalized)))
    return similar.alias(similarity=TrigramWordSimilarity(normalized, "search_text")).order_by(
        F("similarity").desc(),
        *ordering,  # type: ignore[arg-type]
    )


def item_get(*, item_id: int) -> Item | None:
    """The item with this id (its genres prefetched), or None."""
    return Item.objects.prefetch_related("genres").filter(pk=item_id).first()


def items_by_id(*, item_ids: Iterable[int]) -> dict[int, Item]:
    """The items among ``item_ids`` that exist, by id (one query; ids outside the
    database's integer range are simply absent)."""
    wanted = {pk for pk in item_ids if 0 < pk <= MAX_ID}
    return Item.objects.in_bulk(list(wanted)) if wanted else {}


@dataclass(frozen=True, slots=True)
class ItemCard:
    """What a list shows of an item (title, year, genres, stats): plain data, cheap to cache and pickle.

    Recommendation and similar-item lists are cached per user (``recommender.cache``);
    a model instance with prefetched genres costs many times more to unpickle on
    every cache hit than these six fields.
    """

    id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    rating_count: int
    rating_mean: float | None

    @property
    def pk(self) -> int:
        return self.id

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


def item_cards(*, item_ids: Iterable[int]) -> dict[int, ItemCard]:
    """The cards of the items among ``item_ids`` that exist, by id (one query: a row per item
    and genre; genres in name order)."""
    wanted = list({int(pk) for pk in item_ids if 0 < int(pk) <= MAX_ID})
    if not wanted:
        return {}
    rows = (
        Item.objects.filter(pk__in=wanted)
        .order_by("id", "genres__name")
        .values_list("id", "title", "year", "rating_count", "rating_mean", "genres__name")
    )
    fields: dict[int, tuple[str, int | None, int, float | None]] = {}
    genres: dict[int, list[str]] = {}
    for pk, title, year, count, mean, genre in rows:
        fields[pk] = (title, year, count, mean)
        names = genres.setdefault(pk, [])
        if genre is not None:
            names.append(genre)
    return {
        pk: ItemCard(
            id=pk, title=title, year=year, genres=tuple(genres[pk]), rating_count=count, rating_mean=mean
        )
        for pk, (title, year, count, mean) in fields.items()
    }


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.order_by("name")


def genre_exists(*, name: str) -> bool:
    """Whether a genre is called exactly ``name`` (as the site's genre filter matches)."""
    return Genre.objects.filter(name=name).exists()
