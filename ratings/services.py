"""Every rating write in Tastebase goes through these functions.

They keep the denormalized per-item aggregates (``Item.rating_count``,
``rating_sum``, ``rating_mean``, ``rating_damped_mean``) in step with the ratings
table, and are the single place where later features (fold-in of the user's
recommendations) hook in.

The damped mean ``(sum + K·μ̂) / (count + K)`` (K = ``TASTEBASE_POPULARITY_DAMPING``)
pulls every item toward one prior mean μ̂ shared by the whole catalog: a snapshot of
the mean of all ratings, taken by :func:`item_damped_means_recompute` (after every
import; retraining should take one too). Between snapshots a rating changes only its
own item's value, with the same μ̂: the true global mean moves by at most 4.5/N per
rating (4.5e-5 on ML-100K), too little to rewrite the whole catalog on every write.
No column holds μ̂: every rated item's row implies it (``K·μ̂ = d·(n + K) − s``), so a
write reads it from its own row, or, for an item's first rating, from any rated
item's row (one index probe). The catalog's very first ratings take their own mean.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import ExpressionWrapper, F, FloatField, QuerySet, Sum, Value
from django.db.models.expressions import Combinable, CombinedExpression
from django.db.models.functions import Cast
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
    """Add ``delta_count`` ratings summing ``delta_sum`` to each of these items: one atomic UPDATE.

    Raw SQL, as :func:`item_aggregates_recompute`: it runs on every rating, and built
    from ORM expressions this statement cost 2.8 ms of Python a rating (``rating_upsert``
    on ML-100K, SQLite: 2.8 ms before the damped mean, 5.6 ms with it in the ORM, 1.5 ms
    with it in SQL).
    """
    item_table = connection.ops.quote_name(Item._meta.db_table)
    ids = ", ".join(f"%(id{n})s" for n in range(len(item_ids)))
    # Every right-hand side reads the row as it was before this UPDATE (SQL semantics).
    # K·μ̂ (the module docstring): from the row, d·(n + K) − s; else from the best rated
    # item (one probe of item_damped_mean_idx); else, while nothing is rated, the row's
    # own new mean.
    sql = f"""
        UPDATE {item_table} SET
            rating_count = rating_count + %(count)s,
            rating_sum = rating_sum + %(sum)s,
            rating_mean = CASE WHEN rating_count + %(count)s > 0
                THEN (rating_sum + %(sum)s) / (rating_count + %(count)s) END,
            rating_damped_mean = CASE WHEN rating_count + %(count)s > 0
                THEN (rating_sum + %(sum)s + COALESCE(
                    rating_damped_mean * (rating_count + %(k)s) - rating_sum,
                    (SELECT rated.rating_damped_mean * (rated.rating_count + %(k)s) - rated.rating_sum
                     FROM {item_table} rated WHERE rated.rating_damped_mean IS NOT NULL
                     ORDER BY rated.rating_damped_mean DESC NULLS LAST LIMIT 1),
                    %(k)s * (rating_sum + %(sum)s) / (rating_count + %(count)s)
                )) / (rating_count + %(count)s + %(k)s) END
        WHERE id IN ({ids})
    """
    params: dict[str, float] = {"count": delta_count, "sum": delta_sum, "k": _damping()}
    params.update({f"id{n}": pk for n, pk in enumerate(item_ids)})
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _damping() -> float:
    return float(settings.TASTEBASE_POPULARITY_DAMPING)


def _damped_mean(total: Combinable, count: Combinable, *, prior: Combinable) -> ExpressionWrapper:
    """``(total + prior) / (count + K)`` in SQL, where ``prior`` is K·μ̂."""
    return ExpressionWrapper(
        (total + prior) / (Cast(count, FloatField()) + Value(_damping())), output_field=FloatField()
    )


def _row_prior() -> CombinedExpression:
    """K·μ̂ read back from a row's damped mean: d·(n + K) − s (null if the row has none)."""
    count_plus_damping = Cast("rating_count", FloatField()) + Value(_damping())
    return F("rating_damped_mean") * count_plus_damping - F("rating_sum")  # type: ignore[no-any-return]


def _catalog_priors() -> QuerySet[Item, float]:
    """K·μ̂ of the rated items, best first (``.first()`` is one probe of item_damped_mean_idx;
    :func:`_adjust_items_aggregates` runs the same query inside its UPDATE)."""
    rated = Item.objects.filter(rating_damped_mean__isnull=False).order_by(
        F("rating_damped_mean").desc(nulls_last=True)
    )
    return rated.annotate(prior=_row_prior()).values_list("prior", flat=True)


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


#: The temporary table :func:`item_aggregates_recompute` groups into on PostgreSQL.
AGGREGATES_TABLE = "tastebase_item_aggregates"
#: Up to this many items, :func:`item_aggregates_recompute` reads only their ratings.
NARROW_AGGREGATE_ITEMS = 1000


def item_aggregates_recompute(*, item_ids: list[int] | None = None) -> int:
    """Recompute count, sum and mean of items from the ratings table (after imports).

    One set-based ``UPDATE ... FROM (grouped ratings)`` (PostgreSQL, SQLite >= 3.33);
    rows whose values already match are not written. Returns the items updated.
    Then the same items' damped means (:func:`item_damped_means_recompute`: for all
    items, when ``item_ids`` is None, with a new snapshot of the global mean).
    """
    if item_ids is not None and not item_ids:
        return 0
    item_table = connection.ops.quote_name(Item._meta.db_table)
    rating_table = connection.ops.quote_name(Rating._meta.db_table)
    placeholders = ", ".join(["%s"] * len(item_ids)) if item_ids is not None else ""
    only = f"WHERE i.id IN ({placeholders})" if item_ids is not None else ""
    # A few items: their ratings through the item index. Many (an import): all the
    # ratings in one scan, cheaper than testing each against a long IN list.
    narrow = item_ids is not None and len(item_ids) <= NARROW_AGGREGATE_ITEMS
    only_ratings = f"WHERE r.item_id IN ({placeholders})" if narrow else ""
    params = [*(item_ids or [] if narrow else []), *(item_ids or [])]
    # The ratings are grouped first and the items LEFT JOINed to the groups (0 / NULL
    # for items without ratings): a plain aggregate over the ratings, which PostgreSQL
    # can split among parallel workers. Sums of half stars are exact in floating
    # point, so comparing with <> is safe.
    grouped = f"""
        SELECT i.id AS item_id, COALESCE(g.n, 0) AS n, COALESCE(g.total, 0.0) AS total
        FROM {item_table} i LEFT JOIN (
            SELECT r.item_id, COUNT(*) AS n, SUM(r.score) AS total
            FROM {rating_table} r {only_ratings}
            GROUP BY r.item_id
        ) g ON g.item_id = i.id
        {only}
    """
    update = f"""
        UPDATE {item_table} SET
            rating_count = s.n,
            rating_sum = s.total,
            rating_mean = CASE WHEN s.n > 0 THEN s.total / s.n END
        FROM {{source}} s
        WHERE {item_table}.id = s.item_id
          AND ({item_table}.rating_count <> s.n OR {item_table}.rating_sum <> s.total
               OR {item_table}.rating_mean IS NULL AND s.n > 0)
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # PostgreSQL never runs an UPDATE's query on parallel workers, but does a
            # CREATE TABLE AS: the grouping goes to a temporary table first (20M
            # ratings: 6 s -> 2 s for the whole recompute).
            cursor.execute(f"DROP TABLE IF EXISTS {AGGREGATES_TABLE}")
            cursor.execute(f"CREATE TEMPORARY TABLE {AGGREGATES_TABLE} ON COMMIT DROP AS {grouped}", params)
            cursor.execute(update.format(source=AGGREGATES_TABLE))
            updated = int(cursor.rowcount)
            cursor.execute(f"DROP TABLE {AGGREGATES_TABLE}")
        else:
            cursor.execute(update.format(source=f"({grouped})"), params)
            updated = int(cursor.rowcount)
    item_damped_means_recompute(item_ids=item_ids)
    return updated


def item_damped_means_recompute(*, item_ids: list[int] | None = None) -> int:
    """Set ``rating_damped_mean`` = (sum + K·μ̂) / (count + K) from the stored count and
    sum; null for unrated items. Returns the items updated.

    Without ``item_ids``: every item, with a new snapshot μ̂ = the current mean of all
    ratings (see the module docstring). Run it after an import (the importer does,
    through :func:`item_aggregates_recompute`) and at retrain, or after changing K.
    With ``item_ids``: those items only, with the catalog's current μ̂, so all items
    keep being damped toward the same mean.

    Rows already holding the value are not written, so a recompute right after
    another changes nothing.
    """
    if item_ids is not None and not item_ids:
        return 0
    items = Item.objects.all() if item_ids is None else Item.objects.filter(pk__in=item_ids)
    prior = None
    if item_ids is not None:
        prior = _catalog_priors().first()
    if prior is None:
        totals = Item.objects.aggregate(total=Sum("rating_sum"), count=Sum("rating_count"))
        if totals["count"]:
            prior = _damping() * totals["total"] / totals["count"]
    updated = items.filter(rating_count=0, rating_damped_mean__isnull=False).update(rating_damped_mean=None)
    if prior is not None:
        fresh = _damped_mean(
            F("rating_sum"), F("rating_count"), prior=Value(prior, output_field=FloatField())
        )
        # exclude() also keeps rows whose value is null, which "<>" alone would skip.
        stale = items.filter(rating_count__gt=0).exclude(rating_damped_mean=fresh)
        updated += stale.update(rating_damped_mean=fresh)
    return updated
