"""Read-only aggregates for the staff dashboard (:mod:`recommender.dashboard`).

Each function is one query, or a few, whose work happens in the database: GROUP BY
and date truncation run in SQL, never a Python loop over the ratings table (ML-20M
has 20 million rows). What a denormalized column already knows is read from it:
``Item.rating_count`` / ``rating_sum`` for totals and the coldest items,
``UserRatingStamp`` (one row per user who ever rated) for the number of raters.

Like :mod:`recommender.selectors`, nothing here writes or imports a service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import User
from django.db.models import Avg, Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from catalog.models import Item
from ratings.models import Rating, UserRatingStamp
from ratings.scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

from .models import ModelKind, ModelVersion, VersionStatus
from .selectors import model_version_list

# ---- models ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One version's value of one holdout metric: a point on a "metric over time" chart."""

    version_id: int
    created_at: datetime
    status: str
    value: float


@dataclass(frozen=True)
class KindOverview:
    """Everything the dashboard shows about one kind of model."""

    kind: str
    label: str
    versions: list[ModelVersion]  # newest first, as the training runs left them (pruned)
    live: ModelVersion | None

    @property
    def can_roll_back(self) -> bool:
        """A retired version exists: ``model_version_rollback`` has somewhere to go."""
        return any(v.status == VersionStatus.RETIRED for v in self.versions)

    @property
    def training(self) -> list[ModelVersion]:
        return [v for v in self.versions if v.status == VersionStatus.TRAINING]

    def metric_history(self, metric: str) -> list[MetricPoint]:
        """``metric`` of every version that has a finite value of it, oldest first.

        Failed runs and metrics JSON stored as null (not finite) leave no point.
        """
        points = [
            MetricPoint(version_id=v.pk, created_at=v.created_at, status=v.status, value=float(value))
            for v in self.versions
            if isinstance(value := (v.metrics or {}).get(metric), int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ]
        return sorted(points, key=lambda p: (p.created_at, p.version_id))


def kind_overviews() -> list[KindOverview]:
    """Every kind (rating, ranking, similarity) with its versions and live version, in one query.

    Training runs keep only a few inactive versions per kind (``TASTEBASE_KEEP_VERSIONS``),
    so the whole version table is small.
    """
    versions = list(model_version_list())
    overviews = []
    for kind, label in ModelKind.choices:
        of_kind = [v for v in versions if v.kind == kind]
        live = next((v for v in of_kind if v.status == VersionStatus.ACTIVE), None)
        overviews.append(KindOverview(kind=kind, label=str(label), versions=of_kind, live=live))
    return overviews


def kind_overview(*, kind: str) -> KindOverview:
    """One kind's :class:`KindOverview` (after an action changed it)."""
    versions = list(model_version_list(kind=kind))
    live = next((v for v in versions if v.status == VersionStatus.ACTIVE), None)
    return KindOverview(kind=kind, label=str(ModelKind(kind).label), versions=versions, live=live)


def live_version(*, kind: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, status=VersionStatus.ACTIVE).first()


# ---- data at a glance ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataTotals:
    ratings: int
    raters: int  # users who ever rated (one UserRatingStamp each)
    items: int
    rated_items: int
    mean_score: float | None

    @property
    def unrated_items(self) -> int:
        return self.items - self.rated_items

    @property
    def ratings_per_rater(self) -> float | None:
        return self.ratings / self.raters if self.raters else None


def data_totals() -> DataTotals:
    """Catalog-wide counts from the denormalized columns: two small queries, no ratings scan."""
    totals = Item.objects.aggregate(
        items=Count("id"),
        rated_items=Count("id", filter=Q(rating_count__gt=0)),
        ratings=Sum("rating_count"),
        score_sum=Sum("rating_sum"),
    )
    ratings = int(totals["ratings"] or 0)
    return DataTotals(
        ratings=ratings,
        raters=UserRatingStamp.objects.count(),
        items=totals["items"],
        rated_items=totals["rated_items"],
        mean_score=float(totals["score_sum"]) / ratings if ratings else None,
    )


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    ratings: int


def ratings_per_day(*, days: int = 60, until: date | None = None) -> list[DayCount]:
    """How many ratings were written (created or changed) on each of ``days`` days up to ``until``.

    Oldest first, days without ratings included as 0. ``until`` defaults to the day of
    the latest rating, so a site running on an imported historical dataset still shows
    its last weeks of activity. Counts by ``updated_at``, the indexed column, so only
    the window's rows are read; days are in the site's time zone.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if until is None:
        latest = Rating.objects.aggregate(latest=Max("updated_at"))["latest"]
        if latest is None:
            return []
        until = timezone.localdate(latest)
    first = until - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
    rows = (
        Rating.objects.filter(updated_at__gte=start, updated_at__lt=end)
        .annotate(day=TruncDate("updated_at"))
        .values("day")
        .annotate(ratings=Count("id"))
        .order_by("day")
    )
    counts = {row["day"]: row["ratings"] for row in rows}
    return [
        DayCount(day=day, ratings=counts.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


@dataclass(frozen=True, slots=True)
class ScoreCount:
    score: float
    ratings: int


def rating_distribution() -> list[ScoreCount]:
    """How many ratings each half star from 0.5 to 5.0 has (every step listed, 0 if none)."""
    rows = Rating.objects.values("score").annotate(ratings=Count("id")).order_by("score")
    counts = {float(row["score"]): row["ratings"] for row in rows}
    steps = round((MAX_SCORE - MIN_SCORE) / SCORE_STEP) + 1
    scores = [MIN_SCORE + step * SCORE_STEP for step in range(steps)]
    return [ScoreCount(score=score, ratings=counts.get(score, 0)) for score in scores]


@dataclass(frozen=True, slots=True)
class ActiveUser:
    user_id: int
    username: str
    ratings: int
    mean_score: float
    last_rated: datetime


def most_active_users(*, limit: int = 10) -> list[ActiveUser]:
    """The ``limit`` users with the most ratings, most first (ties: lower id first).

    One GROUP BY over the ratings, then one query for the few usernames (joining
    the users before grouping would drag the join across every rating).
    """
    rows = list(
        Rating.objects.values("user_id")
        .annotate(ratings=Count("id"), mean_score=Avg("score"), last_rated=Max("updated_at"))
        .order_by("-ratings", "user_id")[:limit]
    )
    names = dict(User.objects.filter(pk__in=[row["user_id"] for row in rows]).values_list("pk", "username"))
    return [
        ActiveUser(
            user_id=row["user_id"],
            username=names.get(row["user_id"], f"user {row['user_id']}"),
            ratings=row["ratings"],
            mean_score=float(row["mean_score"]),
            last_rated=row["last_rated"],
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class ColdItem:
    item_id: int
    title: str
    year: int | None
    ratings: int
    mean_score: float | None


def coldest_items(*, limit: int = 10) -> list[ColdItem]:
    """The ``limit`` items with the fewest ratings (none counts), fewest first.

    Ties go to the newest item (highest id): it is the one nobody has found yet.
    This is exactly the ``item_popularity_idx`` index (-rating_count, id) read
    backwards, so it costs a few index pages even on a large catalog.
    """
    rows = Item.objects.order_by("rating_count", "-id").values_list(
        "id", "title", "year", "rating_count", "rating_mean"
    )[:limit]
    return [
        ColdItem(item_id=pk, title=title, year=year, ratings=count, mean_score=mean)
        for pk, title, year, count, mean in rows
    ]


def fold_in_failure_versions() -> list[ModelVersion]:
    """The live versions and every stored version with failed fold-ins, most failures first."""
    return list(
        ModelVersion.objects.filter(Q(status=VersionStatus.ACTIVE) | Q(fold_in_failures__gt=0)).order_by(
            "-fold_in_failures", "kind", "-created_at", "-id"
        )
    )
