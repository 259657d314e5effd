"""Every rating write in Tastebase goes through these functions.

They keep the denormalized per-item aggregates (``Item.rating_count``,
``rating_sum``, ``rating_mean``) in step with the ratings table, and are the
single place where later features (fold-in of the user's recommendations)
hook in.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, F, FloatField, Value, When
from django.utils import timezone

from catalog.models import Item
from catalog.selectors import items_by_id

from .models import Rating, UserRatingStamp
from .scale import MAX_SCORE, MIN_SCORE

#: Callbacks run after a rating change commits, as ``callback(user_id)``.
#: The recommender registers its fold-in here (see recommender.apps).
rating_change_listeners: list[Callable[[int], None]] = []

#: Rows per ``INSERT`` of :func:`ratings_bulk_upsert` (5 parameters a row).
BULK_BATCH_SIZE = 500


def validate_score(score: float) -> float:
    """The score as a float, or a ValidationError naming the allowed values."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ValidationError(f"score {score!r} is not a number", code="invalid") from None
    if not math.isfinite(value) or not MIN_SCORE <= value <= MAX_SCORE:
        raise ValidationError(f"score {score} is outside {MIN_SCORE}–{MAX_SCORE}", code="range")
    if value * 2 != round(value * 2):
        raise ValidationError(f"score {score} is not a multiple of 0.5", code="step")
    return value


def _adjust_item_aggregates(item_id: int, *, delta_sum: float, delta_count: int) -> None:
    _adjust_items_aggregates([item_id], delta_sum=delta_sum, delta_count=delta_count)


def _adjust_items_aggregates(item_ids: list[int], *, delta_sum: float, delta_count: int) -> None:
    """Add ``delta_count`` ratings summing ``delta_sum`` to each of these items: one atomic UPDATE."""
    new_count = F("rating_count") + delta_count
    new_sum = F("rating_sum") + delta_sum
    Item.objects.filter(pk__in=item_ids).update(
        rating_count=new_count,
        rating_sum=new_sum,
        rating_mean=Case(
            When(rating_count__gt=-delta_count, then=new_sum / new_count),
            default=Value(None),
            output_field=FloatField(),
        ),
    )


def _notify(user_id: int) -> None:
    # robust: a failing listener (a fold-in, a cache) is logged, never turned
    # into an error for a rating that is already committed.
    for listener in rating_change_listeners:
        transaction.on_commit(functools.partial(listener, user_id), robust=True)


def user_ratings_lock(*, user_id: int, changed_at: datetime) -> None:
    """Stamp ``user_id``'s ratings as changed and hold their row lock until commit.

    One ``INSERT ... ON CONFLICT DO UPDATE`` (Postgres and SQLite): it creates
    the stamp or locks the existing row, so all writes of one user serialize
    here; the first-rating race (two inserts of one (user, item)) cannot happen.
    """
    UserRatingStamp.objects.bulk_create(
        [UserRatingStamp(user_id=user_id, changed_at=changed_at)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["changed_at"],
    )


@transaction.atomic
def rating_upsert(*, user: User, item: Item, score: float) -> Rating:
    """Create or change ``user``'s rating of ``item``; returns the saved rating.

    Safe under concurrency: writes of one user serialize on their stamp row
    (:func:`user_ratings_lock`), and item aggregates change by atomic increments.
    """
    value = validate_score(score)
    now = timezone.now()
    user_ratings_lock(user_id=user.pk, changed_at=now)
    existing = Rating.objects.select_for_update().filter(user=user, item=item).first()
    if existing is None:
        rating = Rating.objects.create(user=user, item=item, score=value, created_at=now, updated_at=now)
        _adjust_item_aggregates(item.pk, delta_sum=value, delta_count=1)
    else:
        old = existing.score
        existing.score = value
        existing.updated_at = now
        existing.save(update_fields=["score", "updated_at"])
        rating = existing
        if old != value:
            _adjust_item_aggregates(item.pk, delta_sum=value - old, delta_count=0)
    _notify(user.pk)
    return rating


@transaction.atomic
def rating_delete(*, user: User, item: Item) -> bool:
    """Delete ``user``'s rating of ``item``; False if there was none."""
    existing = Rating.objects.select_for_update().filter(user=user, item=item).first()
    if existing is None:
        return False
    user_ratings_lock(user_id=user.pk, changed_at=timezone.now())
    existing = Rating.objects.select_for_update().filter(user=user, item=item).first()
    if existing is None:  # deleted by a concurrent request while we waited for the lock
        return False
    existing.delete()
    _adjust_item_aggregates(item.pk, delta_sum=-existing.score, delta_count=-1)
    _notify(user.pk)
    return True


@dataclass(frozen=True)
class RatingRows:
    """A batch of ``(item id, score)`` rows checked against the catalog and the scale.

    ``rows`` holds the resolved ``(item, score)`` pairs when every row is good (else
    it is empty); ``errors`` maps a bad row's position (from 0) to its problems by field.
    """

    rows: list[tuple[Item, float]]
    errors: dict[int, dict[str, list[str]]]


def rating_rows_resolve(*, rows: Sequence[tuple[int, float]]) -> RatingRows:
    """Check every row of a batch before anything is written (one query for all items).

    A row is bad when its item does not exist, its score is not a half star from
    0.5 to 5.0 (:func:`validate_score`), or its item already appeared in an earlier row.
    Reads only: the caller passes ``rows`` on to :func:`ratings_bulk_upsert`.
    """
    items = items_by_id(item_ids=(item_id for item_id, _ in rows))
    errors: dict[int, dict[str, list[str]]] = {}
    first_row: dict[int, int] = {}
    resolved: list[tuple[Item, float]] = []
    for position, (item_id, score) in enumerate(rows):
        problems: dict[str, list[str]] = {}
        item = items.get(item_id)
        if item is None:
            problems["item"] = [f"no item with id {item_id}"]
        elif item_id in first_row:
            problems["item"] = [f"item {item_id} is already in row {first_row[item_id]}"]
        else:
            first_row[item_id] = position
        try:
            value = validate_score(score)
        except ValidationError as error:
            problems["score"] = list(error.messages)
        if problems:
            errors[position] = problems
        elif item is not None:
            resolved.append((item, value))
    return RatingRows(rows=[] if errors else resolved, errors=errors)


@transaction.atomic
def ratings_bulk_upsert(*, user: User, rows: list[tuple[Item, float]]) -> tuple[int, int]:
    """Create or change many of ``user``'s ratings at once, all or nothing; returns
    ``(created, updated)`` (``updated`` counts existing ratings rewritten, as
    :func:`rating_upsert` rewrites them, even to the same score).

    One transaction, one lock (:func:`user_ratings_lock`), and no query per row:

    1. the items' rows are locked in id order (``SELECT ... FOR NO KEY UPDATE`` on
       PostgreSQL, the lock the aggregate updates take anyway), so two batches of
       different users sharing items cannot deadlock on their aggregate updates;
    2. the user's current scores of those items are read once;
    3. ``INSERT ... ON CONFLICT (user, item) DO UPDATE`` writes every rating, in
       batches of :data:`BULK_BATCH_SIZE` rows;
    4. aggregates change by atomic increments, one UPDATE per distinct
       ``(count delta, sum delta)``: scores are half stars, so at most 10 for new
       ratings (+1, +score) and 18 for changed ones (0, new - old);
    5. the listeners (fold-in) are notified once, after commit.

    Raises ValidationError for a bad score, an item given twice or an item that
    no longer exists; nothing is written then.
    """
    scores: dict[int, float] = {}
    for item, score in rows:
        if item.pk in scores:
            raise ValidationError(f"item {item.pk} appears more than once", code="duplicate")
        scores[item.pk] = validate_score(score)
    if not scores:
        return 0, 0
    now = timezone.now()
    user_ratings_lock(user_id=user.pk, changed_at=now)
    item_ids = sorted(scores)
    locked = set(
        Item.objects.select_for_update(no_key=True)
        .filter(pk__in=item_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if len(locked) != len(item_ids):
        gone = [pk for pk in item_ids if pk not in locked]
        raise ValidationError(f"no item with id {', '.join(map(str, gone))}", code="not_found")
    existing = dict(Rating.objects.filter(user=user, item_id__in=item_ids).values_list("item_id", "score"))
    Rating.objects.bulk_create(
        [
            Rating(user=user, item_id=item_id, score=score, created_at=now, updated_at=now)
            for item_id, score in scores.items()
        ],
        update_conflicts=True,
        unique_fields=["user", "item"],
        update_fields=["score", "updated_at"],
        batch_size=BULK_BATCH_SIZE,
    )
    changes: dict[tuple[int, float], list[int]] = defaultdict(list)
    for item_id, score in scores.items():
        old = existing.get(item_id)
        if old is None:
            changes[(1, score)].append(item_id)
        elif old != score:
            changes[(0, score - old)].append(item_id)
    for (delta_count, delta_sum), ids in sorted(changes.items()):
        _adjust_items_aggregates(sorted(ids), delta_sum=delta_sum, delta_count=delta_count)
    _notify(user.pk)
    created = len(scores) - len(existing)
    return created, len(existing)


def user_rating_stamps_touch(*, user_ids: list[int], changed_at: datetime) -> None:
    """Stamp these users' ratings as changed at ``changed_at`` (after a bulk import).

    Batched ``INSERT ... ON CONFLICT DO UPDATE``; a training run whose export
    started before the import then folds them in at activation.
    """
    UserRatingStamp.objects.bulk_create(
        [UserRatingStamp(user_id=pk, changed_at=changed_at) for pk in user_ids],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["changed_at"],
        batch_size=5000,
    )


def item_aggregates_recompute(*, item_ids: list[int] | None = None) -> int:
    """Recompute count, sum and mean of items from the ratings table (after imports).

    One set-based ``UPDATE ... FROM (grouped ratings)`` (PostgreSQL, SQLite >= 3.33);
    rows whose values already match are not written. Returns the items updated.
    """
    if item_ids is not None and not item_ids:
        return 0
    item_table = connection.ops.quote_name(Item._meta.db_table)
    rating_table = connection.ops.quote_name(Rating._meta.db_table)
    only = f"WHERE i.id IN ({', '.join(['%s'] * len(item_ids))})" if item_ids is not None else ""
    # A LEFT JOIN so items without ratings get 0 / NULL; sums of half stars are
    # exact in floating point, so comparing with <> is safe.
    sql = f"""
        UPDATE {item_table} SET
            rating_count = s.n,
            rating_sum = s.total,
            rating_mean = CASE WHEN s.n > 0 THEN s.total / s.n END
        FROM (
            SELECT i.id AS item_id, COUNT(r.id) AS n, COALESCE(SUM(r.score), 0.0) AS total
            FROM {item_table} i LEFT JOIN {rating_table} r ON r.item_id = i.id
            {only}
            GROUP BY i.id
        ) s
        WHERE {item_table}.id = s.item_id
          AND ({item_table}.rating_count <> s.n OR {item_table}.rating_sum <> s.total
               OR {item_table}.rating_mean IS NULL AND s.n > 0)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, item_ids or [])
        return int(cursor.rowcount)
