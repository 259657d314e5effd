"""Read-side queries about ratings."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Subquery
from django.db.models.functions import Lower
from numpy.typing import NDArray

from catalog.models import Item

from .models import Rating
from .scale import MAX_SCORE, MIN_SCORE, SCORE_STEP


def rating_for(*, user: User | AnonymousUser, item: Item) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user_id=user.pk, item=item).first()


def rated_item_ids(*, user_id: int) -> list[int]:
    """Ids of every item ``user_id`` rated."""
    return list(Rating.objects.filter(user_id=user_id).values_list("item_id", flat=True))


def ratings_by_item(*, user: User | AnonymousUser, item_ids: list[int]) -> dict[int, float]:
    """``user``'s scores of those of ``item_ids`` they rated, by item id (one query; none if anonymous)."""
    if not user.is_authenticated or not item_ids:
        return {}
    return dict(Rating.objects.filter(user_id=user.pk, item_id__in=item_ids).values_list("item_id", "score"))


def ratings_of_user(*, user: User) -> QuerySet[Rating]:
    """A user's ratings, most recently changed first."""
    return Rating.objects.filter(user=user).select_related("item").order_by("-updated_at", "-id")


#: The orders :func:`rating_list` understands -> ORDER BY (each ends in a unique column).
RATING_ORDERINGS: dict[str, list[str]] = {
    "-updated_at": ["-updated_at", "-id"],
    "updated_at": ["updated_at", "id"],
    "-score": ["-score", "-updated_at", "-id"],
    "score": ["score", "-updated_at", "-id"],
}
DEFAULT_RATING_ORDERING = "-updated_at"


def rating_list(
    *, user: User, item_id: int | None = None, ordering: str = DEFAULT_RATING_ORDERING
) -> QuerySet[Rating]:
    """``user``'s ratings (only theirs), optionally of one item, with items and genres loaded."""
    ratings = Rating.objects.filter(user=user)
    if item_id is not None:
        ratings = ratings.filter(item_id=item_id)
    return (
        ratings.select_related("item")
        .prefetch_related("item__genres")
        .order_by(*RATING_ORDERINGS.get(ordering, RATING_ORDERINGS[DEFAULT_RATING_ORDERING]))
    )


#: The My ratings page's sorts (its ``?sort=`` values) -> ORDER BY, each ending in a unique column.
#: The first is the default; dates and scores order as the API's ``ordering`` does.
RATING_PAGE_SORTS: dict[str, list[Any]] = {
    "newest": RATING_ORDERINGS["-updated_at"],
    "oldest": RATING_ORDERINGS["updated_at"],
    "score-high": RATING_ORDERINGS["-score"],
    "score-low": RATING_ORDERINGS["score"],
    "title": [Lower("item__title"), "item__year", "id"],
}
DEFAULT_RATING_PAGE_SORT = "newest"


def rating_page_list(*, user: User, sort: str = DEFAULT_RATING_PAGE_SORT) -> QuerySet[Rating]:
    """``user``'s ratings (only theirs) in one of :data:`RATING_PAGE_SORTS`, items and genres loaded.

    An unknown ``sort`` falls back to the default: it comes straight from a URL.
    """
    ordering = RATING_PAGE_SORTS.get(sort, RATING_PAGE_SORTS[DEFAULT_RATING_PAGE_SORT])
    return (
        Rating.objects.filter(user=user)
        .select_related("item")
        .prefetch_related("item__genres")
        .order_by(*ordering)
    )


def rating_export_rows(*, user: User) -> Iterator[tuple[int, str, int | None, float, datetime]]:
    """``user``'s ratings as ``(item id, title, year, score, rated at)`` tuples in item id order.

    Streamed from the database in chunks (a server-side cursor on PostgreSQL), as
    tuples rather than model instances, so a history of any length exports in
    constant memory.
    """
    return (
        Rating.objects.filter(user=user)
        .order_by("item_id")
        .values_list("item_id", "item__title", "item__year", "score", "updated_at")
        .iterator(chunk_size=2000)
    )


def user_rating_arrays(*, user_id: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(item ids, scores) of everything ``user_id`` rated, as numpy arrays (fold-in and scoring input)."""
    rows = list(Rating.objects.filter(user_id=user_id).values_list("item_id", "score"))
    return (
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
    )


def item_score_histogram(*, item_id: int) -> list[tuple[float, int]]:
    """How many ratings of ``item_id`` gave each half star, for every half star (zeros included)."""
    counts = dict(
        Rating.objects.filter(item_id=item_id)
        .values_list("score")
        .annotate(n=Count("id"))
        .values_list("score", "n")
    )
    steps = round((MAX_SCORE - MIN_SCORE) / SCORE_STEP) + 1
    return [
        (MIN_SCORE + SCORE_STEP * k, int(counts.get(MIN_SCORE + SCORE_STEP * k, 0))) for k in range(steps)
    ]


#: "Popular now" counts the items of this many most recent ratings: a period defined by volume,
#: not by days, so an imported old dataset still has a "now" and a few fresh ratings on the site
#: (a demo account's, say) do not make up the whole shelf.
POPULAR_NOW_RATINGS = 5000


def items_popular_recently(*, limit: int = 12, window: int = POPULAR_NOW_RATINGS) -> list[int]:
    """Ids of the items rated most often among the ``window`` most recent ratings, most first.

    Cached for ten minutes: finding the newest ratings scans the table's updated_at order.
    """
    key = f"ratings:popular-now:{limit}:{window}"
    found = cache.get(key)
    if found is not None:
        return list(found)
    recent = Rating.objects.order_by("-updated_at", "-id").values("id")[:window]
    ids = list(
        Rating.objects.filter(id__in=Subquery(recent))
        .values("item_id")
        .annotate(n=Count("id"))
        .order_by("-n", "item_id")
        .values_list("item_id", flat=True)[:limit]
    )
    cache.set(key, ids, 600)
    return ids


#: A rating at or above this is a "like" for "people who liked this also liked".
LIKE_SCORE = 4.0


def items_also_liked(
    *, item_id: int, limit: int = 10, exclude: list[int] | None = None
) -> list[tuple[int, float]]:
    """People who liked ``item_id`` also liked: ``(item id, score)``, best first.

    score = co-likes(i, j) / sqrt(likes(j)) (binary cosine up to the constant sqrt(likes(i))),
    so an item everyone likes does not top every list. The 100 items most often co-liked are
    re-ranked; the result is cached per item for ten minutes (``exclude``, such as the viewer's
    hidden items, is applied after the cache).
    """
    key = f"ratings:also-liked:{item_id}"
    ranked = cache.get(key)
    if ranked is None:
        likers = Rating.objects.filter(item_id=item_id, score__gte=LIKE_SCORE).values("user_id")
        co = list(
            Rating.objects.filter(user_id__in=likers, score__gte=LIKE_SCORE)
            .exclude(item_id=item_id)
            .values("item_id")
            .annotate(n=Count("id"))
            .order_by("-n", "item_id")
            .values_list("item_id", "n")[:100]
        )
        likes = dict(
            Rating.objects.filter(item_id__in=[j for j, _ in co], score__gte=LIKE_SCORE)
            .values("item_id")
            .annotate(n=Count("id"))
            .values_list("item_id", "n")
        )
        ranked = sorted(((j, n / math.sqrt(likes[j])) for j, n in co if likes.get(j)), key=lambda p: -p[1])
        cache.set(key, ranked, 600)
    skip = set(exclude or [])
    return [(j, s) for j, s in ranked if j not in skip][:limit]


def demo_history_source(*, popular: int = 300, min_ratings: int = 40, max_ratings: int = 120) -> str | None:
    """The ML-100K user (``ml<id>``) whose history best shows off recommendations: between
    ``min_ratings`` and ``max_ratings`` ratings, most of them liked films among the ``popular``
    most rated (so a visitor recognises the taste); ties go to the lowest id. None if there is none."""
    top = Item.objects.order_by("-rating_count", "id").values_list("id", flat=True)[:popular]
    candidates = (
        Rating.objects.filter(user__username__regex=r"^ml[0-9]+$")
        .values("user__username", "user_id")
        .annotate(
            n=Count("id"),
            liked_known=Count("id", filter=Q(score__gte=LIKE_SCORE, item_id__in=Subquery(top))),
        )
        .filter(n__gte=min_ratings, n__lte=max_ratings)
        .order_by("-liked_known", "user_id")
        .values_list("user__username", flat=True)[:1]
    )
    return next(iter(candidates), None)
