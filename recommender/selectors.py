"""What the site shows: recommendations for a user and items similar to an item.

The ranking model orders the list, the rating model supplies the predicted
stars shown beside each item, and users without stored factors get a
popularity list ranked by damped mean. Every list is explained by the user's
own highly rated items most similar to each recommendation. Items the user hid
(``ratings.lists``) appear in neither their recommendations nor the similar
items shown to them.

Selectors only read: scores come from the engine's tables
(:class:`recommender.engine.tables.FactorTables`) and the stored user
factors; a user whose factors are not stored yet (their fold-in is pending or
failed) gets the popularity list, never a fold-in on read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from celery.result import AsyncResult
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from numpy.typing import NDArray

from catalog.models import Item
from catalog.selectors import ItemCard, item_cards
from config.celery import app as celery_app
from ratings.lists import hidden_item_ids, watchlist_item_ids
from ratings.models import Rating
from ratings.selectors import ratings_by_item, user_rating_arrays
from recommender.engine.tables import rank_items

from . import cache as list_cache
from .models import ItemNeighbor, ModelKind, ModelVersion, UserFactor, vector_from_bytes
from .serving import ServingVersion, one_blas_thread, serving_cache

#: A rating at or above this counts as "liked" for explanations.
LIKED_SCORE = 4.0


@dataclass(frozen=True, slots=True)
class LikedItem:
    """An item the user rated highly, named in an explanation ("because you rated *Heat* 5★")."""

    id: int
    title: str
    score: float  # the user's rating

    @property
    def pk(self) -> int:
        return self.id

    def __str__(self) -> str:
        return self.title


# Lists hold plain data (ItemCard, LikedItem), not model instances: they are cached
# and unpickled on every hit, and they must not issue queries when rendered.
@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: int
    item: ItemCard
    predicted_rating: float | None
    score: float
    explanation: list[LikedItem]
    source: str  # "ranking", "rating" or "popularity"


@dataclass(frozen=True, slots=True)
class SimilarItem:
    item_id: int
    item: ItemCard
    score: float


def stored_user_factors(version: ServingVersion, user_id: int) -> tuple[NDArray[np.float32], float] | None:
    """The user's stored ``(vector, bias)`` in this version, or None."""
    return stored_user_factors_in([version], user_id).get(version.version_id)


def stored_user_factors_in(
    versions: list[ServingVersion], user_id: int
) -> dict[int, tuple[NDArray[np.float32], float]]:
    """The user's stored ``(vector, bias)`` in each of ``versions`` that has them, by version id
    (one query for all: a list needs the ordering and the rating version's)."""
    rows = UserFactor.objects.filter(
        version_id__in={v.version_id for v in versions}, user_id=user_id
    ).values_list("version_id", "vector", "bias")
    return {version_id: (vector_from_bytes(vector), float(bias)) for version_id, vector, bias in rows}


def _popularity_scores() -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Damped mean (sum + K mu) / (n + K) of every item, from the denormalized columns."""
    rows = list(Item.objects.order_by("id").values_list("id", "rating_sum", "rating_count"))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    sums = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    counts = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    k = settings.TASTEBASE_POPULARITY_DAMPING
    mu = float(sums.sum() / counts.sum()) if counts.sum() else 0.0
    return ids, (sums + k * mu) / (counts + k) + 1e-9 * counts


@dataclass(frozen=True)
class RecommendationList:
    """A recommendation list and the active version of each kind it was made with (None: none active)."""

    results: list[Recommendation]
    model_versions: dict[str, int | None]

    @property
    def source(self) -> str:
        """``ranking``, ``rating`` or ``popularity`` (also for an empty list)."""
        return self.results[0].source if self.results else "popularity"


def recommendations_for_user(
    *,
    user: User | AnonymousUser,
    limit: int = 10,
    genre: str | None = None,
    exclude_rated: bool = True,
) -> list[Recommendation]:
    """The ``limit`` best items for ``user``, best first, with predicted stars and explanations.

    Items ``user`` hid never appear; ``exclude_rated`` also leaves out what they rated.
    """
    return _cached_recommendations(
        active=serving_cache.active(), user=user, limit=limit, genre=genre, exclude_rated=exclude_rated
    )


def recommendation_list_for_user(
    *,
    user: User | AnonymousUser,
    limit: int = 10,
    genre: str | None = None,
    exclude_rated: bool = True,
) -> RecommendationList:
    """:func:`recommendations_for_user` plus the ids of the active versions it was made with."""
    active, ids = serving_cache.state()
    results = _cached_recommendations(
        active=active, user=user, limit=limit, genre=genre, exclude_rated=exclude_rated
    )
    versions: dict[str, int | None] = {kind: ids.get(kind) for kind in ModelKind.values}
    return RecommendationList(results=results, model_versions=versions)


def _cached_recommendations(
    *,
    active: dict[str, ServingVersion],
    user: User | AnonymousUser,
    limit: int,
    genre: str | None,
    exclude_rated: bool,
) -> list[Recommendation]:
    user_id = int(user.pk) if user.is_authenticated else -1
    key = list_cache.recommendations_key(
        user_id,
        ((kind, v.version_id) for kind, v in active.items()),
        limit=limit,
        genre=genre,
        exclude_rated=exclude_rated,
    )
    cached, generation = list_cache.lookup(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    with one_blas_thread():
        result = _recommend(
            active=active, user_id=user_id, limit=limit, genre=genre, exclude_rated=exclude_rated
        )
    list_cache.remember(key, result, generation)
    return result


def _recommend(
    *, active: dict[str, ServingVersion], user_id: int, limit: int, genre: str | None, exclude_rated: bool
) -> list[Recommendation]:
    rated_ids, rated_scores = (
        user_rating_arrays(user_id=user_id) if user_id >= 0 else (np.empty(0, np.int64), np.empty(0))
    )
    ranking, rating = active.get(ModelKind.RANKING), active.get(ModelKind.RATING)

    order_version = ranking or rating
    factors: dict[int, tuple[NDArray[np.float32], float]] = {}
    if order_version is not None and user_id >= 0 and rated_ids.shape[0] > 0:
        factors = stored_user_factors_in([v for v in (ranking, rating) if v is not None], user_id)
    user_factors = factors.get(order_version.version_id) if order_version is not None else None

    if order_version is not None and user_factors is not None:
        ids = order_version.item_ids
        scores = order_version.tables.scores(*user_factors)
        source = order_version.kind
    else:
        ids, scores = _popularity_scores()
        source = "popularity"

    allowed = None
    if genre:
        genre_ids = np.fromiter(
            Item.objects.filter(genres__name=genre).values_list("id", flat=True), dtype=np.int64
        )
        allowed = np.isin(ids, genre_ids)
    excluded_ids = np.array(hidden_item_ids(user_id=user_id), dtype=np.int64)
    if exclude_rated:
        excluded_ids = np.concatenate([excluded_ids, rated_ids])
    exclude = np.flatnonzero(np.isin(ids, excluded_ids)) if excluded_ids.shape[0] else None
    top = rank_items(scores, limit, exclude=exclude, allowed=allowed)
    if top.shape[0] == 0:
        return []
    top_ids = ids[top]

    # Stars only from a personal model: an item's baseline is not "what you'd rate it".
    predicted = None
    if rating is not None and rating.version_id in factors:
        predicted = _predicted_ratings(rating, top_ids, factors[rating.version_id])
    explanations = _explain(order_version, top_ids, rated_ids, rated_scores) if order_version else {}
    needed = {pk for expl in explanations.values() for pk in expl}
    items = item_cards(item_ids=[*top_ids.tolist(), *needed])
    user_scores = dict(zip(rated_ids.tolist(), rated_scores.tolist(), strict=True))
    explained = {
        pk: LikedItem(id=pk, title=items[pk].title, score=float(user_scores[pk]))
        for pk in needed
        if pk in items
    }
    return [
        Recommendation(
            item_id=int(item_id),
            item=items[int(item_id)],
            predicted_rating=None if predicted is None else float(predicted[pos]),
            score=float(scores[top[pos]]),
            explanation=[explained[pk] for pk in explanations.get(int(item_id), []) if pk in explained],
            source=source,
        )
        for pos, item_id in enumerate(top_ids)
        if int(item_id) in items
    ]


def _predicted_ratings(
    version: ServingVersion,
    item_ids: NDArray[np.int64],
    factors: tuple[NDArray[np.float32], float] | None,
) -> NDArray[np.float64]:
    """The rating version's stars, clipped to its own scale; the item baseline without user factors."""
    positions = version.positions(item_ids)
    if factors is None:
        return version.tables.predict(positions, None)
    return version.tables.predict(positions, *factors)


def _explain(
    version: ServingVersion,
    item_ids: NDArray[np.int64],
    rated_ids: NDArray[np.int64],
    rated_scores: NDArray[np.float64],
    per_item: int = 2,
) -> dict[int, list[int]]:
    """For each recommended item, the user's liked items closest to it (factor cosine)."""
    liked = rated_ids[rated_scores >= LIKED_SCORE]
    if liked.shape[0] == 0 or version.tables.n_factors == 0:
        return {}
    liked_pos = version.positions(liked)
    liked, liked_pos = liked[liked_pos >= 0], liked_pos[liked_pos >= 0]
    rec_pos = version.positions(item_ids)
    if liked.shape[0] == 0:
        return {}
    unit = version.tables.unit_vectors
    sims = unit[np.maximum(rec_pos, 0)] @ unit[liked_pos].T  # (n_recs, n_liked)
    out: dict[int, list[int]] = {}
    for row, item_id in enumerate(item_ids.tolist()):
        if rec_pos[row] < 0:
            continue
        best = np.argsort(-sims[row], kind="stable")[:per_item]
        out[item_id] = [int(liked[j]) for j in best if sims[row, j] > 0]
    return out


@dataclass(frozen=True)
class ItemRow:
    """One item as a list page shows it to a person: the card, their rating, the stars the
    model predicts for them (only with a personal model), whether it is on their watchlist,
    and why it was recommended (For you only)."""

    item: ItemCard
    your_score: float | None
    predicted: float | None
    watchlisted: bool
    explanation: list[LikedItem]


def item_rows_for_user(
    *,
    user: User | AnonymousUser,
    cards: list[ItemCard],
    predicted: dict[int, float] | None = None,
    explanations: dict[int, list[LikedItem]] | None = None,
) -> list[ItemRow]:
    """Rows for ``cards`` in their order, in at most three queries for the whole page.

    ``predicted`` (already known, e.g. from a recommendation list) saves the prediction.
    """
    ids = [c.id for c in cards]
    user_id = int(user.pk) if user.is_authenticated else -1
    scores = ratings_by_item(user=user, item_ids=ids)
    if predicted is None:
        predicted = predicted_ratings_for_user(user_id=user_id, item_ids=ids)
    watching = set(watchlist_item_ids(user_id=user_id)) if user_id >= 0 else set()
    return [
        ItemRow(
            item=c,
            your_score=scores.get(c.id),
            predicted=predicted.get(c.id),
            watchlisted=c.id in watching,
            explanation=(explanations or {}).get(c.id, []),
        )
        for c in cards
    ]


#: The For you page ranks this many of the ranking model's best items by predicted stars.
FOR_YOU_CANDIDATES = 200


@dataclass(frozen=True)
class ForYouList:
    """The For you page's list and what its order means.

    ``order``: ``"predicted"`` (the ranking model's best candidates, shown by the
    rating model's predicted stars, best first), ``"ranking"`` (the ranking model's
    order; no rating model to give stars) or ``"popularity"`` (no personal model yet:
    damped mean rating, no predicted stars).
    """

    results: list[Recommendation]
    order: str

    @property
    def personalized(self) -> bool:
        return self.order != "popularity"


def for_you_list(
    *,
    user: User | AnonymousUser,
    genre: str | None = None,
    year_min: int | None = None,
    year_max: int | None = None,
    exclude_watchlisted: bool = False,
) -> ForYouList:
    """What the For you page shows: candidates from the ranking model (what people like you
    watch and like), ordered by the stars the rating model predicts for you, so the order and
    the stars tell one story. Filters apply to the candidates; the page paginates the result."""
    recs = recommendations_for_user(user=user, limit=FOR_YOU_CANDIDATES, genre=genre)
    if year_min is not None:
        recs = [r for r in recs if r.item.year is not None and r.item.year >= year_min]
    if year_max is not None:
        recs = [r for r in recs if r.item.year is not None and r.item.year <= year_max]
    if exclude_watchlisted and user.is_authenticated:
        watching = set(watchlist_item_ids(user_id=int(user.pk)))
        recs = [r for r in recs if r.item_id not in watching]
    if not recs or recs[0].source == "popularity":
        return ForYouList(results=recs, order="popularity")
    if any(r.predicted_rating is None for r in recs):
        return ForYouList(results=recs, order="ranking")
    # Stable: equal stars keep the ranking model's order.
    ordered = sorted(recs, key=lambda r: -(r.predicted_rating or 0.0))
    return ForYouList(results=ordered, order="predicted")


def onboarding_items(*, user: User, limit: int = 24, exclude: list[int] | None = None) -> list[ItemCard]:
    """Items for a new user to rate: well-known (most rated) and varied (round-robin over genres,
    so the first screen is not all dramas), leaving out what they rated, hid or ``exclude``."""
    skip = set(Rating.objects.filter(user=user).values_list("item_id", flat=True))
    skip |= set(hidden_item_ids(user_id=int(user.pk))) | set(exclude or [])
    # The most rated few hundred are the pool; a person knows some of them.
    pool = list(
        Item.objects.filter(rating_count__gt=0)
        .exclude(pk__in=skip)
        .order_by("-rating_count", "id")
        .values_list("id", flat=True)[: max(limit * 12, 200)]
    )
    cards = item_cards(item_ids=pool)
    by_genre: dict[str, list[int]] = {}
    for pk in pool:
        card = cards.get(pk)
        if card is not None:
            by_genre.setdefault(card.genres[0] if card.genres else "", []).append(pk)
    picked: list[int] = []
    seen: set[int] = set()
    # Genres in the order of their best-known film (dicts keep insertion order: pool order).
    queues = list(by_genre.values())
    while len(picked) < limit and any(queues):
        for queue in queues:
            while queue and queue[0] in seen:
                queue.pop(0)
            if queue and len(picked) < limit:
                pk = queue.pop(0)
                picked.append(pk)
                seen.add(pk)
    return [cards[pk] for pk in picked]


def predicted_rating_for_user(*, user: User | AnonymousUser, item: Item) -> float | None:
    """The active rating version's predicted stars of ``item`` for ``user``; None without a rating
    version, for anonymous users and for users the model has no factors for yet (no personal model)."""
    if not user.is_authenticated:
        return None
    return predicted_ratings_for_user(user_id=int(user.pk), item_ids=[item.pk]).get(item.pk)


def predicted_ratings_for_user(*, user_id: int, item_ids: list[int]) -> dict[int, float]:
    """Predicted stars of ``item_ids`` for ``user_id`` from the active rating version, by item id;
    empty without a rating version or without the user's stored factors (one query)."""
    rating = serving_cache.active().get(ModelKind.RATING)
    if rating is None or user_id < 0 or not item_ids:
        return {}
    factors = stored_user_factors(rating, user_id)
    if factors is None:
        return {}
    ids = np.asarray(item_ids, dtype=np.int64)
    known = rating.positions(ids) >= 0
    stars = _predicted_ratings(rating, ids[known], factors)
    return dict(zip(ids[known].tolist(), stars.tolist(), strict=True))


def similar_items(
    *, item: Item, limit: int = 10, user: User | AnonymousUser | None = None
) -> list[SimilarItem]:
    """Items most like ``item``: the active similarity version's neighbours, else factor cosine.

    ``user`` (optional) is the person looking: items they hid are left out.
    Cached like recommendation lists (recommender/cache.py): the key holds the
    live versions and the user's generation, which hiding an item bumps.
    """
    user_id = int(user.pk) if user is not None and user.is_authenticated else -1
    active, ids = serving_cache.state()
    similarity = ids.get(ModelKind.SIMILARITY)
    key = list_cache.recommendations_key(user_id, ids.items(), similar_to=item.pk, limit=limit)
    cached, generation = list_cache.lookup(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    with one_blas_thread():
        result = _similar_items(item=item, limit=limit, user_id=user_id, similarity=similarity, active=active)
    list_cache.remember(key, result, generation)
    return result


def _similar_items(
    *,
    item: Item,
    limit: int,
    user_id: int,
    similarity: int | None,
    active: dict[str, ServingVersion],
) -> list[SimilarItem]:
    hidden = hidden_item_ids(user_id=user_id) if user_id >= 0 else []
    if similarity is not None:
        rows = list(
            ItemNeighbor.objects.filter(version_id=similarity, item=item)
            .exclude(neighbor_id__in=hidden)
            .order_by("rank")
            .values_list("neighbor_id", "score")[:limit]
        )
        if rows:
            cards = item_cards(item_ids=[pk for pk, _ in rows])
            return [SimilarItem(item_id=pk, item=cards[pk], score=score) for pk, score in rows if pk in cards]
    version = active.get(ModelKind.RANKING) or active.get(ModelKind.RATING)
    if version is None or version.tables.n_factors == 0:
        return []
    pos = int(version.positions([item.pk])[0])
    if pos < 0:
        return []
    unit = version.tables.unit_vectors
    sims = (unit @ unit[pos]).astype(np.float64)
    exclude = np.concatenate([[pos], version.positions(hidden)]) if hidden else np.array([pos])
    top = rank_items(sims, limit, exclude=exclude)
    items = item_cards(item_ids=version.item_ids[top].tolist())
    return [
        SimilarItem(
            item_id=int(version.item_ids[t]), item=items[int(version.item_ids[t])], score=float(sims[t])
        )
        for t in top
        if int(version.item_ids[t]) in items
    ]


def model_version_list(*, kind: str | None = None, status: str | None = None) -> QuerySet[ModelVersion]:
    """Model versions, newest first, optionally of one kind and status."""
    versions = ModelVersion.objects.order_by("-created_at", "-id")
    if kind:
        versions = versions.filter(kind=kind)
    if status:
        versions = versions.filter(status=status)
    return versions


@dataclass(frozen=True)
class TrainingTaskStatus:
    """A training task as Celery reports it, and the version it created (if any yet)."""

    task_id: str
    state: str  # Celery's: PENDING (also for unknown ids), STARTED, PROGRESS, SUCCESS, FAILURE, ...
    result: dict[str, Any] | None  # the task's summary once it succeeded
    error: str  # why the task failed ("" unless state is FAILURE)
    version: ModelVersion | None


def training_task_status(*, task_id: str) -> TrainingTaskStatus:
    """What became of the training task ``task_id``; Celery answers PENDING for ids it never saw.

    On the embedded default (eager Celery) the task ran inside the request that
    queued it and Celery keeps no result: the state stays PENDING and the
    version (``ModelVersion.task_id``) holds the outcome.
    """
    state, info = "PENDING", None
    if not celery_app.conf.task_always_eager or celery_app.conf.task_store_eager_result:
        result: AsyncResult[Any] = AsyncResult(task_id, app=celery_app)
        state, info = str(result.state), result.info
    version = ModelVersion.objects.filter(task_id=task_id).order_by("-created_at", "-id").first()
    return TrainingTaskStatus(
        task_id=task_id,
        state=state,
        result=info if state == "SUCCESS" and isinstance(info, dict) else None,
        error=str(info) if state == "FAILURE" and info is not None else "",
        version=version,
    )
