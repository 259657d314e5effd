"""Fold-in: a user's factors from their current ratings, the version's items fixed.

Runs after every rating change (for each active factor version) and, at
activation, for every user whose ratings changed after the version's export.
Each fold-in holds the user's ``UserRatingStamp`` row lock while it reads the
ratings and writes the factors, so concurrent fold-ins of one user serialize
and the stored factors always come from the latest ratings. The math is the
model class's ``fold_in_from_tables`` (see ``recommender.engine.tables``).
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from ratings.models import Rating, UserRatingStamp
from ratings.selectors import user_rating_arrays
from recommender.cache import user_lists_invalidate
from recommender.engine.interactions import Interactions

from ..models import ModelVersion, UserFactor, vector_to_bytes
from ..serving import ServingVersion, load_serving_version, serving_cache

logger = logging.getLogger(__name__)

#: A user's ``(vector, bias)`` in one version, or None when it knows none of their items.
Factors = tuple[np.ndarray, float] | None


def _lock_user(user_id: int) -> None:
    """The user's row lock (held to the end of the transaction): one fold-in or rating write at a time."""
    UserRatingStamp.objects.select_for_update().filter(user_id=user_id).first()


def _fold_in(version: ServingVersion, user_id: int, item_ids: np.ndarray, scores: np.ndarray) -> Factors:
    factors = version.fold_in(item_ids, scores)
    if factors is not None and not (np.isfinite(factors[0]).all() and np.isfinite(factors[1])):
        raise FloatingPointError(f"fold-in of user {user_id} gave non-finite factors")
    return factors


def _store(version: ServingVersion, user_id: int, factors: Factors) -> None:
    if factors is None:  # nothing the version knows: the site falls back to popularity
        UserFactor.objects.filter(version_id=version.version_id, user_id=user_id).delete()
        return
    vector, bias = factors
    # One INSERT ... ON CONFLICT DO UPDATE instead of update_or_create's read, lock and write.
    UserFactor.objects.bulk_create(
        [
            UserFactor(
                version_id=version.version_id,
                user_id=user_id,
                bias=float(bias),
                vector=vector_to_bytes(vector),
                updated_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["version", "user"],
        update_fields=["bias", "vector", "updated_at"],
    )


def user_fold_in_version(*, version: ServingVersion, user_id: int) -> Factors:
    """Recompute and store ``user_id``'s factors in ``version`` from their current ratings.

    Returns ``(vector, bias)``, or None when the user rated nothing the version
    knows (their row is removed; the site then falls back to popularity).
    """
    with transaction.atomic():
        _lock_user(user_id)
        item_ids, scores = user_rating_arrays(user_id=user_id)
        factors = _fold_in(version, user_id, item_ids, scores)
        _store(version, user_id, factors)
    return factors


def _count_failures(version_ids: list[int], user_id: int) -> None:
    try:
        ModelVersion.objects.filter(pk__in=version_ids).update(fold_in_failures=F("fold_in_failures") + 1)
    except Exception:  # the count is best effort; the rating is already saved
        logger.exception("could not count the failed fold-in of user %s", user_id)


def _count_failure(version_id: int, user_id: int) -> None:
    logger.exception("fold-in of user %s into version %s failed", user_id, version_id)
    _count_failures([version_id], user_id)


def user_factors_refresh(user_id: int) -> None:
    """After a rating change: fold the user into every active factor version and
    drop their cached lists. Never raises: the rating is saved whatever happens
    here; failures are logged and counted on the version (``fold_in_failures``).

    One transaction for all versions: the user's lock and ratings are read once.
    """
    try:
        active = list(serving_cache.active().values())
    except Exception:
        logger.exception("could not load the active versions to fold user %s in", user_id)
        active = []
    failed: list[int] = []
    if active:
        try:
            with transaction.atomic():
                _lock_user(user_id)
                item_ids, scores = user_rating_arrays(user_id=user_id)
                for version in active:
                    try:
                        factors = _fold_in(version, user_id, item_ids, scores)
                    except Exception:
                        logger.exception(
                            "fold-in of user %s into version %s failed", user_id, version.version_id
                        )
                        failed.append(version.version_id)
                        continue
                    _store(version, user_id, factors)
        except Exception:
            logger.exception("storing the folded-in factors of user %s failed", user_id)
            failed = [version.version_id for version in active]
    if failed:
        _count_failures(failed, user_id)
    try:
        user_lists_invalidate(user_id)
    except Exception:
        logger.exception("could not invalidate the cached lists of user %s", user_id)


#: Above this many users to compare, :func:`_changed_since_export` aggregates the whole table.
WHOLE_TABLE_FINGERPRINT_USERS = 20_000


def version_fold_in_changed_users(
    *, version: ModelVersion, since: datetime, trained_on: Interactions | None = None
) -> int:
    """Fold every user whose ratings changed at or after ``since`` into ``version``.

    Used at activation, so ratings made while the version trained (after its
    export) are in the version before it serves. With ``trained_on`` (the
    ratings the version was fitted on), users whose current ratings are the
    ones it was trained on are skipped: right after a bulk import every user's
    stamp is new, but their ratings are all in the export. Returns the users
    folded in.
    """
    user_ids = list(
        UserRatingStamp.objects.filter(changed_at__gte=since)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    if trained_on is not None and user_ids:
        user_ids = _changed_since_export(user_ids, trained_on)
    if not user_ids:
        return 0
    serving = load_serving_version(version)
    for user_id in user_ids:
        try:
            user_fold_in_version(version=serving, user_id=user_id)
        except Exception:
            _count_failure(version.pk, user_id)
    return len(user_ids)


def _fingerprints(counts: np.ndarray, sums: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    return np.stack([counts.astype(np.float64), sums, weighted], axis=1)


def _changed_since_export(user_ids: list[int], trained_on: Interactions) -> list[int]:
    """The users whose ratings differ from what ``trained_on`` holds for them.

    Compared by (count, sum of scores, sum of score x item id), computed by the
    database for the current ratings and by numpy for the exported ones; half
    stars times integer ids sum exactly in float64, so equal sets compare equal.
    """
    ids = np.asarray(user_ids, dtype=np.int64)
    exported = np.zeros((ids.shape[0], 3))
    rows = trained_on.user_index(ids)
    known = rows >= 0
    if known.any():
        csr = trained_on.csr
        scores = csr.data.astype(np.float64)
        items = np.asarray(trained_on.item_ids, dtype=np.float64)[csr.indices]
        starts, ends = csr.indptr[rows[known]], csr.indptr[rows[known] + 1]
        cum = np.concatenate([[0.0], np.cumsum(scores)])
        cum_w = np.concatenate([[0.0], np.cumsum(scores * items)])
        exported[known] = _fingerprints(ends - starts, cum[ends] - cum[starts], cum_w[ends] - cum_w[starts])
    current = np.zeros_like(exported)
    position = {int(u): p for p, u in enumerate(ids.tolist())}
    if ids.shape[0] > WHOLE_TABLE_FINGERPRINT_USERS:
        # Many users (all of them, after a bulk import): one aggregate over the
        # whole table, a (parallel) sequential scan, instead of looking up every
        # rating through the user index (20M ratings: ~1 s against ~20 s).
        batches = [Rating.objects.all()]
    else:
        batches = [
            Rating.objects.filter(user_id__in=ids[start : start + 5000].tolist())
            for start in range(0, ids.shape[0], 5000)
        ]
    for ratings in batches:
        rows_db = (
            ratings.values("user_id")
            .annotate(n=Count("id"), total=Sum("score"), weighted=Sum(F("score") * F("item_id")))
            .values_list("user_id", "n", "total", "weighted")
        )
        for user_id, n, total, weighted in rows_db:
            index = position.get(int(user_id))
            if index is not None:
                current[index] = (n, total, weighted)
    # Cumulative sums round a little; a real change moves a sum by at least 0.5.
    differs = np.abs(current - exported).max(axis=1) > 1e-3
    return ids[differs].tolist()
