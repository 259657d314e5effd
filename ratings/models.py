"""Who rated what, when. Scores are half stars from 0.5 to 5.0, enforced by the database."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact

MIN_SCORE = 0.5
MAX_SCORE = 5.0
SCORE_STEP = 0.5


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
                # 2 * score is a whole number <=> score is a multiple of 0.5.
                condition=Exact(F("score") * 2, Round(F("score") * 2)),
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
