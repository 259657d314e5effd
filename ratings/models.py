"""Who rated what, when. Scores are half stars from 0.5 to 5.0, enforced by the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Floor
from django.db.models.lookups import Exact
from django.utils import timezone

from .scale import MAX_SCORE, MIN_SCORE
from .scale import SCORE_STEP as SCORE_STEP  # re-exported: ratings.models.SCORE_STEP keeps working


class Rating(models.Model):
    # No single-column FK indexes: (user, item) unique and the (user, -updated_at) and
    # (item, -updated_at) indexes already serve every lookup, and each extra index
    # slows bulk imports of millions of ratings.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings", db_index=False
    )
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="ratings", db_index=False)
    score = models.FloatField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "item"], name="rating_unique_user_item"),
            models.CheckConstraint(
                condition=Q(score__gte=MIN_SCORE) & Q(score__lte=MAX_SCORE),
                name="rating_score_range",
                violation_error_message="A score must be between 0.5 and 5.0.",
            ),
            models.CheckConstraint(
                # 2 * score is a whole number <=> score is a multiple of 0.5. Floor, not
                # Round: PostgreSQL rounds a double through numeric, which made the check
                # cost more than the rest of a 20M-row COPY (8 s against 6 s).
                condition=Exact(F("score") * 2, Floor(F("score") * 2)),
                name="rating_score_half_star",
                violation_error_message="A score must be a multiple of 0.5.",
            ),
        ]
        indexes = [
            models.Index(fields=["item", "-updated_at"], name="rating_item_idx"),
            models.Index(fields=["user", "-updated_at"], name="rating_user_recent_idx"),
            models.Index(fields=["-updated_at", "id"], name="rating_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} rated {self.item_id}: {self.score}"


class UserRatingStamp(models.Model):
    """When a user's ratings last changed: one row per user who ever rated.

    Every rating write upserts this row first (``INSERT ... ON CONFLICT``), so
    its row lock serializes the writes of one user: two simultaneous first
    ratings of the same item cannot both insert, and item aggregates stay
    exact. Fold-ins take the same lock, so a user's stored factors always come
    from their latest ratings. A retrain folds in every user whose stamp is
    newer than the ratings it exported (deletions included, which leave no
    rating row to compare).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="rating_stamp"
    )
    changed_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"user {self.user_id}'s ratings changed at {self.changed_at}"


class Hidden(models.Model):
    """An item a user never wants to see recommended: left out of their For you list
    and of the similar items shown to them. Written by ``ratings.lists.hidden_add``."""

    # (user, item) unique and (user, -created_at) serve every per-user lookup.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hidden", db_index=False
    )
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "hidden item"
        verbose_name_plural = "hidden items"
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="hidden_unique_user_item")]
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="hidden_user_recent_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} hid {self.item_id}"


class Watchlist(models.Model):
    """An item a user means to watch later. Written by ``ratings.lists.watchlist_add``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist", db_index=False
    )
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "watchlist entry"
        verbose_name_plural = "watchlist entries"
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="watchlist_unique_user_item")]
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="watchlist_user_recent_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} will watch {self.item_id}"
