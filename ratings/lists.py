"""A user's own lists: items they hid and items they mean to watch.

Services (``*_add``, ``*_remove``) write; selectors (``*_items``,
``hidden_item_ids``, ``user_list_counts``) only read. Adding is idempotent
(the ``(user, item)`` pair is unique, so concurrent adds cannot duplicate),
removing says whether there was anything to remove.

A hidden item is left out of the user's recommendations and of the similar
items shown to them (``recommender.selectors``). Recommendation lists are
cached per user, so hiding or un-hiding an item makes that user's cached lists
unreachable once the change commits (``recommender.cache.user_lists_invalidate``,
the one invalidation mechanism); the watchlist changes no list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

from catalog.models import Item
from recommender.cache import user_lists_invalidate

from .models import Hidden, Rating, Watchlist


def _lists_changed(user_id: int) -> None:
    # robust: a cache failure after commit is logged, never an error for a saved change.
    transaction.on_commit(functools.partial(user_lists_invalidate, user_id), robust=True)


# ---- hidden items --------------------------------------------------------------


@transaction.atomic
def hidden_add(*, user: User, item: Item) -> tuple[Hidden, bool]:
    """Hide ``item`` from ``user``'s recommendations; returns the entry and whether it is new."""
    entry, created = Hidden.objects.get_or_create(user=user, item=item)
    if created:
        _lists_changed(user.pk)
    return entry, created


@transaction.atomic
def hidden_remove(*, user: User, item: Item) -> bool:
    """Show ``item`` to ``user`` again; False if it was not hidden."""
    deleted, _ = Hidden.objects.filter(user=user, item=item).delete()
    if deleted:
        _lists_changed(user.pk)
    return bool(deleted)


def hidden_items(*, user: User) -> QuerySet[Hidden]:
    """``user``'s hidden items, most recently hidden first, with each item and its genres."""
    return (
        Hidden.objects.filter(user=user)
        .select_related("item")
        .prefetch_related("item__genres")
        .order_by("-created_at", "-id")
    )


def hidden_item_ids(*, user_id: int) -> list[int]:
    """Ids of the items ``user_id`` hid (none for an anonymous visitor, ``user_id`` < 0)."""
    if user_id < 0:
        return []
    return list(Hidden.objects.filter(user_id=user_id).values_list("item_id", flat=True))


# ---- watchlist -----------------------------------------------------------------


@transaction.atomic
def watchlist_add(*, user: User, item: Item) -> tuple[Watchlist, bool]:
    """Put ``item`` on ``user``'s watchlist; returns the entry and whether it is new."""
    return Watchlist.objects.get_or_create(user=user, item=item)


@transaction.atomic
def watchlist_remove(*, user: User, item: Item) -> bool:
    """Take ``item`` off ``user``'s watchlist; False if it was not on it."""
    deleted, _ = Watchlist.objects.filter(user=user, item=item).delete()
    return bool(deleted)


def watchlist_items(*, user: User) -> QuerySet[Watchlist]:
    """``user``'s watchlist, most recently added first, with each item and its genres."""
    return (
        Watchlist.objects.filter(user=user)
        .select_related("item")
        .prefetch_related("item__genres")
        .order_by("-created_at", "-id")
    )


def hidden_contains(*, user: User, item: Item) -> bool:
    return Hidden.objects.filter(user=user, item=item).exists()


def watchlist_contains(*, user: User, item: Item) -> bool:
    return Watchlist.objects.filter(user=user, item=item).exists()


@dataclass(frozen=True)
class ItemListState:
    """Which of some items a user hid and which are on their watchlist (for a page of items)."""

    hidden: frozenset[int]
    watchlisted: frozenset[int]


def item_list_state(*, user: User, item_ids: list[int]) -> ItemListState:
    """Two queries for a whole page of items, not two per item."""
    hidden = Hidden.objects.filter(user=user, item_id__in=item_ids).values_list("item_id", flat=True)
    watchlisted = Watchlist.objects.filter(user=user, item_id__in=item_ids).values_list("item_id", flat=True)
    return ItemListState(hidden=frozenset(hidden), watchlisted=frozenset(watchlisted))


def watchlist_item_ids(*, user_id: int) -> list[int]:
    """Ids of the items on ``user_id``'s watchlist (none for an anonymous visitor, ``user_id`` < 0)."""
    if user_id < 0:
        return []
    return list(Watchlist.objects.filter(user_id=user_id).values_list("item_id", flat=True))


# ---- counts --------------------------------------------------------------------


@dataclass(frozen=True)
class ListCounts:
    ratings: int
    hidden: int
    watchlist: int


def user_list_counts(*, user: User) -> ListCounts:
    """How many items ``user`` rated, hid and put on the watchlist."""
    return ListCounts(
        ratings=Rating.objects.filter(user=user).count(),
        hidden=Hidden.objects.filter(user=user).count(),
        watchlist=Watchlist.objects.filter(user=user).count(),
    )
