"""Model versions and the cached factor / neighbour tables they serve from.

A training run writes a new ``ModelVersion`` (status ``training``), fills its
factor or neighbour tables, evaluates it, and — if it passes the promotion
gate — becomes the one ``active`` version of its kind in a single transaction.
Vectors are stored as raw float32 bytes: portable across SQLite and Postgres
and loaded with ``np.frombuffer`` without a Python object per number.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db import models
from django.db.models import Q
from numpy.typing import NDArray


class ModelKind(models.TextChoices):
    RATING = "rating", "Rating model (predicted stars)"
    RANKING = "ranking", "Ranking model (order of recommendations)"
    SIMILARITY = "similarity", "Item similarity (neighbours)"


class VersionStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    algorithm = models.CharField(max_length=64)
    hyperparameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.TRAINING)
    stage = models.CharField(max_length=32, blank=True, default="")
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent done of the whole run")
    metrics = models.JSONField(default=dict, blank=True)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_ratings = models.PositiveBigIntegerField(default=0)
    data_watermark = models.DateTimeField(
        null=True, blank=True, help_text="latest rating change it was trained on"
    )
    exported_at = models.DateTimeField(
        null=True, blank=True, help_text="when the ratings it was trained on were read"
    )
    evaluation = models.JSONField(
        default=dict,
        blank=True,
        help_text="what it was judged on: holdout (seed, fraction, users sampled), the live "
        "configuration refitted on the same split and its metrics",
    )
    fold_in_failures = models.PositiveIntegerField(
        "fold-in failures",
        default=0,
        help_text="rating changes whose fold-in into this version failed (see the logs)",
    )
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per stage")
    global_mean = models.FloatField(default=0.0, help_text="constant term of the version's score")
    rating_min = models.FloatField(default=0.5)
    rating_max = models.FloatField(default=5.0)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status="active"), name="one_active_version_per_kind"
            ),
        ]
        indexes = [models.Index(fields=["kind", "status"], name="modelversion_kind_status_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}/{self.algorithm} ({self.status})"


def vector_to_bytes(vector: NDArray[np.floating]) -> bytes:  # type: ignore[type-arg]
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def vector_from_bytes(raw: bytes | memoryview) -> NDArray[np.float32]:
    return np.frombuffer(bytes(raw), dtype=np.float32)


class UserFactor(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="user_factors")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    bias = models.FloatField(default=0.0)
    vector = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "user"], name="userfactor_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} in version {self.version_id}"


class ItemFactor(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="item_factors")
    item = models.ForeignKey("catalog.Item", on_delete=models.CASCADE, related_name="+")
    bias = models.FloatField(default=0.0)
    vector = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "item"], name="itemfactor_unique")]

    def __str__(self) -> str:
        return f"item {self.item_id} in version {self.version_id}"


class ItemNeighbor(models.Model):
    # No foreign keys or single-column indexes in the database: a training run
    # writes 30 rows per item in one COPY, and at 20M ratings (800k rows) the
    # deferred checks of three referenced rows per row took 9 of the persist's
    # 14 s, the three indexes 2.6 s more. The unique (version, item, rank)
    # index serves every read. Deleting an item or a version still deletes its
    # rows: on_delete=CASCADE is done by Django's ORM, not by the database.
    # The similar-items query skips a neighbour that is no longer in the catalog.
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="neighbors", db_constraint=False, db_index=False
    )
    item = models.ForeignKey(
        "catalog.Item", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    neighbor = models.ForeignKey(
        "catalog.Item", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "item", "rank"], name="itemneighbor_unique")
        ]
        ordering = ["version", "item", "rank"]

    def __str__(self) -> str:
        return f"{self.item_id} -> {self.neighbor_id} (#{self.rank}, {self.score:.3f})"


class TrainingLock(models.Model):
    """A row per held lock: the embedded default's "one training at a time" guard
    (with Redis, a Redis lock is used instead). ``owner`` is the holder's token."""

    name = models.CharField(max_length=64, unique=True)
    owner = models.CharField(max_length=128)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner} until {self.expires_at}"
