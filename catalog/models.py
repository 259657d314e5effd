"""The catalog: items people rate (movies for MovieLens data) and their genres."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """A thing to rate. ``(source, external_id)`` identifies it in its dataset.

    ``rating_count`` / ``rating_sum`` / ``rating_mean`` are denormalized so no
    page aggregates the ratings table per request; they are maintained by
    ``ratings.services`` and recomputed after an import.
    """

    title = models.CharField(max_length=300)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="items", blank=True)
    source = models.CharField(max_length=32, default="tastebase")
    external_id = models.CharField(max_length=64)
    rating_count = models.PositiveIntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    rating_mean = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="item_unique_source_external_id"),
        ]
        indexes = [
            models.Index(Upper("title"), name="item_title_upper_idx"),
            models.Index(fields=["title", "id"], name="item_title_idx"),
            models.Index(fields=["year"], name="item_year_idx"),
            models.Index(fields=["-rating_count", "id"], name="item_popularity_idx"),
            models.Index(fields=["-rating_mean", "id"], name="item_mean_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title
