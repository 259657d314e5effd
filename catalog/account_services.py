"""Writes to a person's own account: their email address, and deleting the account.

Deleting an account takes everything of theirs with it (ratings, hidden items,
watchlist, API token, stored factors, sign-in records) and leaves every item's
denormalized rating stats (``Item.rating_count`` / ``rating_sum`` /
``rating_mean``) exact, as ``ratings.services`` keeps them on every other write.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from axes.utils import reset as axes_reset
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ratings.models import Rating
from ratings.services import item_aggregates_recompute, user_ratings_lock
from recommender.cache import user_lists_invalidate

from .models import Item

#: Items per statement when locking and recomputing a deleted user's rated items
#: (one bound parameter each; SQLite allows 32,766, Postgres 65,535).
ITEM_BATCH_SIZE = 5000


@dataclass(frozen=True)
class AccountDeletion:
    username: str
    ratings: int
    items_updated: int


def user_email_update(*, user: User, email: str) -> User:
    """Set the address password-reset links are sent to ("" removes it)."""
    user.email = User.objects.normalize_email(email.strip())
    user.save(update_fields=["email"])
    return user


def user_lockout_clear(*, username: str) -> int:
    """Forget the failed sign-ins of ``username`` from every address (after a password
    reset: whoever set the new password may sign in at once). Returns the records removed."""
    return axes_reset(username=username)


@transaction.atomic
def user_delete(*, user: User) -> AccountDeletion:
    """Delete ``user`` and everything that is theirs, in one transaction.

    Item stats stay exact under concurrent rating writes by other people:

    1. the user's rating stamp is locked (:func:`ratings.services.user_ratings_lock`),
       so a rating of theirs still in flight (another tab, an API client) finishes
       first or waits and then finds no user;
    2. the items they rated are locked in id order, as ``ratings_bulk_upsert`` locks
       them, so no other person's increment lands between the delete and step 4;
    3. the user is deleted; the database cascades to their ratings, hidden items,
       watchlist, token, rating stamp and factor rows;
    4. those items' count, sum and mean are recomputed from the ratings table
       (:func:`ratings.services.item_aggregates_recompute`). Another person's rating
       written meanwhile is either committed and counted here, or waits for the item
       lock and then adds its own increment to the recomputed value.

    No fold-in runs: there is nobody left to fold in. The user's cached lists are
    made unreachable after commit. Their sign-in records (django-axes) go too.
    """
    user_id, username = user.pk, user.get_username()
    user_ratings_lock(user_id=user_id, changed_at=timezone.now())
    item_ids = list(
        Rating.objects.filter(user_id=user_id).order_by("item_id").values_list("item_id", flat=True)
    )
    for batch in _batches(item_ids):
        # Evaluated for its side effect: the row locks (SELECT ... FOR NO KEY UPDATE on Postgres).
        list(
            Item.objects.select_for_update(no_key=True).filter(pk__in=batch).order_by("pk").values_list("pk")
        )
    user.delete()
    items_updated = sum(item_aggregates_recompute(item_ids=list(batch)) for batch in _batches(item_ids))
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        model.objects.filter(username=username).delete()
    # robust: a cache failure after commit is logged; the account is gone either way.
    transaction.on_commit(functools.partial(user_lists_invalidate, user_id), robust=True)
    return AccountDeletion(username=username, ratings=len(item_ids), items_updated=items_updated)


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), ITEM_BATCH_SIZE):
        yield ids[start : start + ITEM_BATCH_SIZE]
