"""Read-side queries over the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, QuerySet

from .models import Genre, Item

#: The sort keys users can pick -> ORDER BY. Every one ends in a unique column
#: so pagination is stable, and each is backed by an index on Item.
ITEM_SORTS: dict[str, tuple[str, list[object]]] = {
    "title": ("Title", ["title", "id"]),
    "-year": ("Newest", [F("year").desc(nulls_last=True), "title", "id"]),
    "year": ("Oldest", [F("year").asc(nulls_last=True), "title", "id"]),
    "-rating_count": ("Most rated", ["-rating_count", "id"]),
    "-rating_mean": ("Highest rated", [F("rating_mean").desc(nulls_last=True), "-rating_count", "id"]),
}
DEFAULT_SORT = "-rating_count"


@dataclass(frozen=True)
class ItemFilters:
    q: str = ""
    genre: str = ""
    year_min: int | None = None
    year_max: int | None = None
    min_ratings: int | None = None
    sort: str = DEFAULT_SORT


def item_list(*, filters: ItemFilters) -> QuerySet[Item]:
    """Items matching the filters, in the requested order (no per-row aggregation)."""
    items = Item.objects.all()
    if filters.q:
        items = items.filter(title__icontains=filters.q)
    if filters.genre:
        items = items.filter(genres__name=filters.genre)
    if filters.year_min is not None:
        items = items.filter(year__gte=filters.year_min)
    if filters.year_max is not None:
        items = items.filter(year__lte=filters.year_max)
    if filters.min_ratings:
        items = items.filter(rating_count__gte=filters.min_ratings)
    _, ordering = ITEM_SORTS.get(filters.sort, ITEM_SORTS[DEFAULT_SORT])
    return items.order_by(*ordering)  # type: ignore[arg-type]


def genre_list() -> QuerySet[Genre]:
    return Genre.objects.order_by("name")
