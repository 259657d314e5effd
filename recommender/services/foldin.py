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
from django.db.models import F

from ratings.models import Rating, UserRatingStamp
from recommender.cache import user_lists_invalidate

from ..models import ModelVersion, UserFactor, vector_to_bytes
from ..serving import ServingVersion, load_serving_version, serving_cache

logger = logging.getLogger(__name__)


def _user_ratings(user_id: int) -> tuple[np.ndarray, np.ndarray]:
    rows = list(Rating.objects.filter(user_id=user_id).values_list("item_id", "score"))
    return (
        np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
    )


def user_fold_in_version(*, version: ServingVersion, user_id: int) -> tuple[np.ndarray, float] | None:
    """Recompute and store ``user_id``'s factors in ``version`` from their current ratings.

    Returns ``(vector, bias)``, or None when the user rated nothing the version
    knows (their row is removed; the site then falls back to popularity).
    """
    with transaction.atomic():
        # The user's row lock: one fold-in (or rating write) of this user at a time.
        UserRatingStamp.objects.select_for_update().filter(user_id=user_id).first()
        item_ids, scores = _user_ratings(user_id)
        factors = version.fold_in(item_ids, scores)
        if factors is None:
            UserFactor.objects.filter(version_id=version.version_id, user_id=user_id).delete()
            return None
        vector, bias = factors
        if not (np.isfinite(vector).all() and np.isfinite(bias)):
            raise FloatingPointError(f"fold-in of user {user_id} gave non-finite factors")
        UserFactor.objects.update_or_create(
            version_id=version.version_id,
            user_id=user_id,
            defaults={"bias": float(bias), "vector": vector_to_bytes(vector)},
        )
    return vector, bias


def _count_failure(version_id: int, user_id: int) -> None:
    logger.exception("fold-in of user %s into version %s failed", user_id, version_id)
    try:
        ModelVersion.objects.filter(pk=version_id).update(fold_in_failures=F("fold_in_failures") + 1)
    except Exception:  # the count is best effort; the rating is already saved
        logger.exception("could not count the failed fold-in of user %s", user_id)


def user_factors_refresh(user_id: int) -> None:
    """After a rating change: fold the user into every active factor version and
    drop their cached lists. Never raises: the rating is saved whatever happens
    here; failures are logged and counted on the version (``fold_in_failures``)."""
    try:
        active = list(serving_cache.active().values())
    except Exception:
        logger.exception("could not load the active versions to fold user %s in", user_id)
        active = []
    for version in active:
        try:
            user_fold_in_version(version=version, user_id=user_id)
        except Exception:
            _count_failure(version.version_id, user_id)
    try:
        user_lists_invalidate(user_id)
    except Exception:
        logger.exception("could not invalidate the cached lists of user %s", user_id)


def version_fold_in_changed_users(*, version: ModelVersion, since: datetime) -> int:
    """Fold every user whose ratings changed at or after ``since`` into ``version``.

    Used at activation, so ratings made while the version trained (after its
    export) are in the version before it serves. Returns the users folded in.
    """
    serving = load_serving_version(version)
    user_ids = list(
        UserRatingStamp.objects.filter(changed_at__gte=since)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    for user_id in user_ids:
        try:
            user_fold_in_version(version=serving, user_id=user_id)
        except Exception:
            _count_failure(version.pk, user_id)
    return len(user_ids)
