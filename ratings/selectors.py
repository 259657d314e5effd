"""Read-side queries about ratings."""

from __future__ import annotations

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from numpy.typing import NDArray

from catalog.models import Item

from .models import Rating


def rating_for(*, user: User | AnonymousUser, item: Item) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user_id=user.pk, item=item).first()


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


def user_rating_arrays(*, user_id: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(item ids, scores) of everything ``user_id`` rated, as numpy arrays (fold-in and scoring input)."""
    rows = list(Rating.objects.filter(user_id=user_id).values_list("item_id", "score"))
    return (
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
    )
