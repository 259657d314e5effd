"""The catalog: items people rate (movies for MovieLens data) and their genres."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Upper

from .titles import title_search_text


class Genre(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TitleSearchTextField(models.TextField):  # type: ignore[type-arg]
    """The model's ``title`` as search matches it (:func:`catalog.titles.title_search_text`).

    Derived from the title whenever the row is written by ``save()`` or ``bulk_create()``,
    as ``auto_now`` derives a timestamp, so no caller can forget it. ``QuerySet.update()``
    and ``bulk_update()`` skip ``pre_save``: code changing titles that way sets it too
    (the importer does).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = title_search_text(model_instance.title)  # type: ignore[attr-defined]
        setattr(model_instance, self.attname, value)
        return value


class Item(models.Model):
    """A thing to rate. ``(source, external_id)`` identifies it in its dataset.

    ``rating_count`` / ``rating_sum`` / ``rating_mean`` are denormalized so no
    page aggregates the ratings table per request; they are maintained by
    ``ratings.services`` and recomputed after an import.

    ``rating_damped_mean`` is the Bayesian average ``(sum + K·μ̂) / (count + K)``
    (K = ``TASTEBASE_POPULARITY_DAMPING``, μ̂ the mean of all ratings as of the last
    ``ratings.services.item_damped_means_recompute``: after an import, at retrain),
    which the "Highest rated" order uses so that two 5-star ratings do not beat
    hundreds of 4.5s; null without ratings. ``ratings.services`` keeps it with the
    other aggregates (its module docstring says how μ̂ is kept between recomputes).

    ``title`` is the display form ("The Shining"; the MovieLens importer moves the
    dataset's trailing articles to the front) and ``search_text`` its normalized words.
    """

    title = models.CharField(max_length=300)
    search_text = TitleSearchTextField()
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    genres = models.ManyToManyField(Genre, related_name="items", blank=True)
    source = models.CharField(max_length=32, default="tastebase")
    external_id = models.CharField(max_length=64)
    rating_count = models.PositiveIntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    rating_mean = models.FloatField(null=True, blank=True)
    rating_damped_mean = models.FloatField(null=True, blank=True, editable=False)
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
        # Two indexes live in migration 0005 because their SQL differs by database:
        # item_damped_mean_idx (the "Highest rated" order; PostgreSQL needs NULLS LAST
        # spelled out, SQLite rejects it in an index and sorts NULLs last on DESC anyway)
        # and, on PostgreSQL only, item_search_text_trgm_idx (GIN trigram on search_text).

    def __str__(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title
