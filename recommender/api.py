"""The recommender's API under ``/api/v1/``: the signed-in user's own pages, the
operator's (staff) model controls, and the health check.

* ``me/``, ``me/recommendations/``, ``me/hidden/``, ``me/watchlist/``: the
  caller's profile, For you list and own lists. ``me/recommendations/`` also
  answers anonymous visitors, as the site's For you page does: with the
  damped-popularity list (``source`` says which list it is).
* ``users/{id}/recommendations/``, ``models/...``, ``tasks/{id}/``: staff only.
* ``health/``: public.

Every view parses its input, calls one service or selector and shapes the
output; errors have the one shape of ``config.api``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Item
from catalog.selectors import MAX_ID, ItemCard, genre_exists
from config.api import Conflict, Pagination, query_bool, query_int
from config.typealias import AuthenticatedRequest
from ratings.lists import (
    hidden_add,
    hidden_items,
    hidden_remove,
    user_list_counts,
    watchlist_add,
    watchlist_items,
    watchlist_remove,
)

from .health import HealthReport, health_report
from .locks import training_lock_holder
from .models import ModelKind, ModelVersion, VersionStatus
from .selectors import (
    RecommendationList,
    model_version_list,
    recommendation_list_for_user,
    training_task_status,
)
from .services import (
    PromotionRefused,
    algorithm_kind,
    default_algorithm,
    model_version_activate,
    model_version_rollback,
)

logger = logging.getLogger(__name__)

MAX_RECOMMENDATIONS = 100


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request needs is unavailable; try again later."
    default_code = "unavailable"


# ---- shared output shapes --------------------------------------------------------


@extend_schema_serializer(component_name="RecommenderItemSummary")
class ItemSummarySerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_genres(self, item: Item) -> list[str]:
        return [genre.name for genre in item.genres.all()]


@extend_schema_serializer(component_name="RecommendationExplanationItem")
class ExplanationItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    title = serializers.CharField()


@extend_schema_serializer(component_name="Recommendation")
class RecommendationSerializer(serializers.Serializer):  # type: ignore[type-arg]
    item = ItemSummarySerializer()
    predicted_rating = serializers.FloatField(
        allow_null=True, help_text="the rating model's stars; null without a rating model or signed out"
    )
    score = serializers.FloatField(help_text="the ordering score (model score, or damped mean stars)")
    explanation = ExplanationItemSerializer(
        many=True, help_text="the user's highly rated items most like this one"
    )


@extend_schema_serializer(component_name="RecommendationModelVersions")
class ModelVersionIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    rating = serializers.IntegerField(allow_null=True)
    ranking = serializers.IntegerField(allow_null=True)
    similarity = serializers.IntegerField(allow_null=True)


@extend_schema_serializer(component_name="RecommendationList")
class RecommendationListSerializer(serializers.Serializer):  # type: ignore[type-arg]
    results = RecommendationSerializer(many=True)
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the field is named "source"
        choices=["ranking", "rating", "popularity"],
        help_text="which list this is: a model's (ranking, rating) or the popularity fallback",
    )
    model_versions = ModelVersionIdsSerializer(help_text="the active version of each kind (null: none)")


RECOMMENDATION_EXAMPLE = OpenApiExample(
    "a personalized list",
    value={
        "results": [
            {
                "item": {"id": 50, "title": "Star Wars", "year": 1977, "genres": ["Action", "Sci-Fi"]},
                "predicted_rating": 4.6,
                "score": 1.93,
                "explanation": [{"id": 172, "title": "The Empire Strikes Back"}],
            }
        ],
        "source": "ranking",
        "model_versions": {"rating": 12, "ranking": 13, "similarity": 14},
    },
    response_only=True,
)
RECOMMENDATION_PARAMETERS = [
    OpenApiParameter(
        "n",
        {"type": "integer", "minimum": 1, "maximum": MAX_RECOMMENDATIONS},
        description=f"how many (1–{MAX_RECOMMENDATIONS}, default 10)",
    ),
    OpenApiParameter("genre", OpenApiTypes.STR, description="only items of this genre (its exact name)"),
    OpenApiParameter(
        "exclude_rated", OpenApiTypes.BOOL, description="leave out items already rated (default true)"
    ),
]


def _id_parameter(name: str, description: str) -> OpenApiParameter:
    """A path id: a positive 64-bit integer (an id that exists nowhere is a 404)."""
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return OpenApiParameter(name, schema, OpenApiParameter.PATH, description=description)


ITEM_ID = _id_parameter("item_id", "an item's id")


def _recommendation_params(request: Request) -> dict[str, Any]:
    """``n``, ``genre`` and ``exclude_rated`` from the query, or a 400 naming the bad one."""
    genre = request.query_params.get("genre") or None
    if genre is not None and not genre_exists(name=genre):
        raise exceptions.ValidationError({"genre": [f"there is no genre {genre!r}"]})
    return {
        "limit": query_int(request, "n", 10, minimum=1, maximum=MAX_RECOMMENDATIONS),
        "genre": genre,
        "exclude_rated": query_bool(request, "exclude_rated", True),
    }


def _recommendation_body(recommendations: RecommendationList) -> dict[str, Any]:
    """The list in :class:`RecommendationListSerializer`'s shape, built directly from the
    cached plain data: on a cache hit this is most of a request's work, and DRF's field
    machinery cost several times more (the schema tests check the shape)."""
    return {
        "results": [
            {
                "item": item_summary(r.item),
                "predicted_rating": r.predicted_rating,
                "score": r.score,
                "explanation": [{"id": liked.id, "title": liked.title} for liked in r.explanation],
            }
            for r in recommendations.results
        ],
        "source": recommendations.source,
        "model_versions": recommendations.model_versions,
    }


def item_summary(card: ItemCard) -> dict[str, Any]:
    """An item as :class:`ItemSummarySerializer` shows it."""
    return {"id": card.id, "title": card.title, "year": card.year, "genres": list(card.genres)}


# ---- the signed-in user -----------------------------------------------------------


@extend_schema_serializer(component_name="MeListCounts")
class ListCountsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    ratings = serializers.IntegerField()
    hidden = serializers.IntegerField()
    watchlist = serializers.IntegerField()


class MeApi(APIView):
    """The caller's profile and how many items they rated, hid and put on their watchlist."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="MeProfile")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        id = serializers.IntegerField()
        username = serializers.CharField()
        date_joined = serializers.DateTimeField()
        is_staff = serializers.BooleanField()
        counts = ListCountsSerializer()

    @extend_schema(
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "a profile",
                value={
                    "id": 7,
                    "username": "alice",
                    "date_joined": "2026-01-31T12:00:00Z",
                    "is_staff": False,
                    "counts": {"ratings": 42, "hidden": 3, "watchlist": 5},
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        user = request.user
        profile = {
            "id": user.pk,
            "username": user.username,
            "date_joined": user.date_joined,
            "is_staff": user.is_staff,
            "counts": user_list_counts(user=user),
        }
        return Response(self.OutputSerializer(profile).data)


class MeRecommendationsApi(APIView):
    """The caller's For you list: personalized when signed in and known to a model, the
    damped-popularity list otherwise (also for anonymous visitors, as on the site)."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=RECOMMENDATION_PARAMETERS,
        responses={200: RecommendationListSerializer},
        examples=[RECOMMENDATION_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        params = _recommendation_params(request)
        return Response(_recommendation_body(recommendation_list_for_user(user=request.user, **params)))


# ---- hidden items and watchlist -------------------------------------------------------

LIST_ENTRY_EXAMPLE = {
    "item": {"id": 50, "title": "Star Wars", "year": 1977, "genres": ["Action", "Sci-Fi"]},
    "created_at": "2026-02-01T09:30:00Z",
}


@extend_schema_serializer(component_name="UserListEntry")
class ListEntrySerializer(serializers.Serializer):  # type: ignore[type-arg]
    item = ItemSummarySerializer()
    created_at = serializers.DateTimeField()


class _UserListApi(APIView):
    """GET a per-user list (hidden items, watchlist), newest first, paginated."""

    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    entries: Callable[..., Any]  # ratings.lists selector: user -> queryset

    def get(self, request: AuthenticatedRequest) -> Response:
        paginator = Pagination()
        page: list[Any] | None = paginator.paginate_queryset(
            type(self).entries(user=request.user), request, view=self
        )
        return paginator.get_paginated_response(ListEntrySerializer(page, many=True).data)


class _UserListItemApi(APIView):
    """PUT (idempotent add: 201 new, 200 already there) or DELETE (204; 404 if absent) one item."""

    permission_classes = [IsAuthenticated]
    add: Callable[..., tuple[Any, bool]]  # ratings.lists service
    remove: Callable[..., bool]
    absent: str  # "is not hidden", ...

    def put(self, request: AuthenticatedRequest, item_id: int) -> Response:
        item = get_object_or_404(Item, pk=item_id)
        entry, created = type(self).add(user=request.user, item=item)
        return Response(
            ListEntrySerializer(entry).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    def delete(self, request: AuthenticatedRequest, item_id: int) -> Response:
        item = get_object_or_404(Item, pk=item_id)
        if not type(self).remove(user=request.user, item=item):
            raise exceptions.NotFound(f"Item {item_id} {self.absent}.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _list_schema(example: str) -> Any:
    return extend_schema_view(
        get=extend_schema(
            responses={200: ListEntrySerializer(many=True)},
            examples=[OpenApiExample(example, value=LIST_ENTRY_EXAMPLE, response_only=True)],
        )
    )


def _list_item_schema(example: str, added: str, absent: str) -> Any:
    return extend_schema_view(
        put=extend_schema(
            request=None,
            responses={201: ListEntrySerializer, 200: ListEntrySerializer},
            examples=[OpenApiExample(example, value=LIST_ENTRY_EXAMPLE, response_only=True)],
            description=f"201 when newly {added}, 200 when it already was.",
        ),
        delete=extend_schema(request=None, responses={204: None}, description=f"404 when the item {absent}."),
    )


@_list_schema("hidden items")
class MeHiddenListApi(_UserListApi):
    """Items the caller hid: never in their recommendations or similar-item lists."""

    entries = staticmethod(hidden_items)


@extend_schema(parameters=[ITEM_ID])
@_list_item_schema("hidden", added="hidden", absent="was not hidden")
class MeHiddenItemApi(_UserListItemApi):
    """Hide an item from the caller (PUT, idempotent) or show it again (DELETE)."""

    add = staticmethod(hidden_add)
    remove = staticmethod(hidden_remove)
    absent = "is not hidden"


@_list_schema("a watchlist")
class MeWatchlistListApi(_UserListApi):
    """The caller's watchlist, most recently added first."""

    entries = staticmethod(watchlist_items)


@extend_schema(parameters=[ITEM_ID])
@_list_item_schema("on the watchlist", added="added", absent="was not on the watchlist")
class MeWatchlistItemApi(_UserListItemApi):
    """Put an item on the caller's watchlist (PUT, idempotent) or take it off (DELETE)."""

    add = staticmethod(watchlist_add)
    remove = staticmethod(watchlist_remove)
    absent = "is not on the watchlist"


# ---- staff: any user's list, model versions, training ------------------------------------


@extend_schema(parameters=[_id_parameter("user_id", "a user's id")])
class UserRecommendationsApi(APIView):
    """Staff only: the For you list a given user sees."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=RECOMMENDATION_PARAMETERS,
        responses={200: RecommendationListSerializer},
        examples=[RECOMMENDATION_EXAMPLE],
    )
    def get(self, request: Request, user_id: int) -> Response:
        user = get_object_or_404(User, pk=user_id)
        params = _recommendation_params(request)
        return Response(_recommendation_body(recommendation_list_for_user(user=user, **params)))


@extend_schema_serializer(component_name="ModelVersion")
class ModelVersionSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    metrics = serializers.DictField(
        child=serializers.JSONField(), help_text="holdout metrics (rmse, ndcg@10, ...; null: not finite)"
    )
    timings = serializers.DictField(child=serializers.JSONField(), help_text="seconds per stage")
    hyperparameters = serializers.DictField(child=serializers.JSONField())
    evaluation = serializers.DictField(
        child=serializers.JSONField(),
        help_text="the holdout and the live configuration it was judged against",
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "kind",
            "algorithm",
            "hyperparameters",
            "status",
            "stage",
            "progress",
            "metrics",
            "timings",
            "evaluation",
            "fold_in_failures",
            "n_users",
            "n_items",
            "n_ratings",
            "error",
            "task_id",
            "created_at",
            "finished_at",
            "activated_at",
        ]
        read_only_fields = fields


MODEL_VERSION_EXAMPLE = {
    "id": 13,
    "kind": "ranking",
    "algorithm": "implicit_als",
    "hyperparameters": {"factors": 64, "iterations": 15},
    "status": "active",
    "stage": "done",
    "progress": 100,
    "metrics": {"ndcg@10": 0.21, "precision@10": 0.18},
    "timings": {"export": 0.4, "fit": 3.1, "evaluate": 0.6},
    "evaluation": {"holdout": {"seed": 0, "fraction": 0.1}, "incumbent": {"version": 9}},
    "fold_in_failures": 0,
    "n_users": 943,
    "n_items": 1682,
    "n_ratings": 100000,
    "error": "",
    "task_id": "4f1c2b9e-6d0a-4c1e-9a51-2f0b8f1d3c77",
    "created_at": "2026-02-01T03:30:00Z",
    "finished_at": "2026-02-01T03:31:05Z",
    "activated_at": "2026-02-01T03:31:05Z",
}


class ModelVersionListApi(APIView):
    """Staff only: every model version, newest first, with its metrics and progress."""

    permission_classes = [IsAdminUser]
    pagination_class = Pagination

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=ModelKind.values, description="only this kind"),
            OpenApiParameter(
                "status", OpenApiTypes.STR, enum=VersionStatus.values, description="only this status"
            ),
        ],
        responses={200: ModelVersionSerializer(many=True)},
        examples=[OpenApiExample("versions", value=MODEL_VERSION_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        filters: dict[str, str | None] = {}
        for name, choices in (("kind", ModelKind.values), ("status", VersionStatus.values)):
            value = request.query_params.get(name) or None
            if value is not None and value not in choices:
                raise exceptions.ValidationError({name: [f"{value!r} is not one of {', '.join(choices)}"]})
            filters[name] = value
        paginator = Pagination()
        page = paginator.paginate_queryset(model_version_list(**filters), request, view=self)
        return paginator.get_paginated_response(ModelVersionSerializer(page, many=True).data)


class ModelRetrainApi(APIView):
    """Staff only: queue a training run of one kind (the configured algorithm unless given).

    The request is checked against the engine's registry before anything is
    queued, and refused (409) while another training run holds the lock. On the
    embedded default (no broker) the run happens inside this request.
    """

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="ModelRetrainInput")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        kind = serializers.ChoiceField(choices=ModelKind.choices)
        algorithm = serializers.CharField(
            required=False, max_length=64, help_text="a registry name; default: the configured one"
        )
        params = serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            default=dict,
            help_text='hyperparameter overrides, e.g. {"factors": 32}',
        )

    @extend_schema_serializer(component_name="ModelRetrainQueued")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        task_id = serializers.CharField()
        kind = serializers.CharField()
        algorithm = serializers.CharField()

    @extend_schema(
        request=InputSerializer,
        responses={202: OutputSerializer},
        examples=[
            OpenApiExample(
                "retrain the ranking model",
                value={"kind": "ranking", "algorithm": "implicit_als", "params": {"factors": 32}},
                request_only=True,
            ),
            OpenApiExample(
                "queued",
                value={
                    "task_id": "4f1c2b9e-6d0a-4c1e-9a51-2f0b8f1d3c77",
                    "kind": "ranking",
                    "algorithm": "implicit_als",
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        queued = retrain_request(**data.validated_data)
        return Response(self.OutputSerializer(queued).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(parameters=[_id_parameter("version_id", "a model version's id")])
class ModelVersionActivateApi(APIView):
    """Staff only: make a ready or retired version the live one of its kind, behind the
    promotion gate unless ``force`` (409 with the gate's reason when it refuses)."""

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="ModelActivateInput")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        force = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: ModelVersionSerializer},
        examples=[
            OpenApiExample("through the gate", value={"force": False}, request_only=True),
            OpenApiExample("activated", value=MODEL_VERSION_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request: Request, version_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = get_object_or_404(ModelVersion, pk=version_id)
        try:
            version = model_version_activate(version=version, force=data.validated_data["force"])
        except (PromotionRefused, ValueError) as exc:  # ValueError: not activatable (failed, empty, ...)
            raise Conflict(str(exc)) from None
        return Response(ModelVersionSerializer(version).data)


class ModelRollbackApi(APIView):
    """Staff only: re-activate the version given in ``to``, or the most recently retired one."""

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="ModelRollbackInput")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        kind = serializers.ChoiceField(choices=ModelKind.choices)
        to = serializers.IntegerField(
            required=False, min_value=1, max_value=MAX_ID, help_text="a ready or retired version id"
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: ModelVersionSerializer},
        examples=[
            OpenApiExample(
                "back to the previous ranking model", value={"kind": "ranking"}, request_only=True
            ),
            OpenApiExample("rolled back", value=MODEL_VERSION_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = model_version_rollback(
                kind=data.validated_data["kind"], version_id=data.validated_data.get("to")
            )
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        return Response(ModelVersionSerializer(version).data)


@extend_schema_serializer(component_name="TrainingTaskVersion")
class TrainingTaskVersionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    kind = serializers.CharField()
    algorithm = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    percent = serializers.IntegerField(source="progress")
    error = serializers.CharField()


class TrainingTaskApi(APIView):
    """Staff only: a training task's Celery state and the version it created (stage, percent, error).

    Unknown ids answer ``PENDING``, as Celery does. On the embedded default the
    task ran inside the request that queued it and Celery keeps no result: the
    state stays ``PENDING`` and the version holds the outcome.
    """

    permission_classes = [IsAdminUser]

    @extend_schema_serializer(component_name="TrainingTask")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        task_id = serializers.CharField()
        state = serializers.CharField(help_text="Celery's: PENDING, STARTED, PROGRESS, SUCCESS, FAILURE, ...")
        result = serializers.DictField(
            child=serializers.JSONField(), allow_null=True, help_text="the task's summary once it succeeded"
        )
        error = serializers.CharField(help_text="why the task failed (empty unless FAILURE)")
        version = TrainingTaskVersionSerializer(
            allow_null=True, help_text="the version the task created (null: none yet)"
        )

    @extend_schema(
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "training",
                value={
                    "task_id": "4f1c2b9e-6d0a-4c1e-9a51-2f0b8f1d3c77",
                    "state": "PROGRESS",
                    "result": None,
                    "error": "",
                    "version": {
                        "id": 14,
                        "kind": "ranking",
                        "algorithm": "implicit_als",
                        "status": "training",
                        "stage": "fit",
                        "percent": 30,
                        "error": "",
                    },
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, task_id: str) -> Response:
        try:
            task = training_task_status(task_id=task_id)
        except Exception as exc:  # the result backend (Redis) is unreachable
            logger.warning("could not read task %s: %s", task_id, exc)
            raise ServiceUnavailable(f"the task result backend is unavailable: {exc}") from None
        return Response(self.OutputSerializer(task).data)


# ---- queuing a training run -------------------------------------------------------------


def _retrain_validate(*, kind: str, algorithm: str | None, params: dict[str, Any]) -> str:
    """The algorithm to train for ``kind``; a 400 naming the field if the registry refuses."""
    from recommender.engine.registry import make_model

    algorithm = algorithm or default_algorithm(kind)
    try:
        served = algorithm_kind(algorithm)
    except ValueError as exc:
        raise exceptions.ValidationError({"algorithm": [str(exc)]}) from None
    if served != kind:
        raise exceptions.ValidationError(
            {"algorithm": [f"{algorithm!r} trains a {served} model, not a {kind} model"]}
        )
    bad = sorted(key for key, value in params.items() if isinstance(value, dict | list))
    if bad:
        raise exceptions.ValidationError(
            {"params": [f"{', '.join(bad)}: a parameter is a string, number, true/false or null"]}
        )
    try:
        # As model_train builds it: every value as a string, coerced to the default's type.
        make_model(algorithm, {key: str(value) for key, value in params.items()})
    except (TypeError, ValueError) as exc:
        raise exceptions.ValidationError({"params": [str(exc)]}) from None
    return algorithm


def retrain_request(*, kind: str, algorithm: str | None = None, params: dict[str, Any]) -> dict[str, str]:
    """Check a training request, then queue it; returns the task id, kind and algorithm.

    400 if the registry refuses the algorithm or its parameters, 409 while a
    training run holds the lock (looked at, not taken: a run that starts in
    between makes the queued task answer "refused"), 503 if the broker is
    unreachable. On the embedded default (eager Celery) the run happens here
    and now; its failure is recorded on its version, not raised.
    """
    from .tasks import BrokerUnavailable, retrain_enqueue

    algorithm = _retrain_validate(kind=kind, algorithm=algorithm, params=params)
    try:
        holder = training_lock_holder()
    except Exception as exc:  # the lock lives in Redis and Redis is down
        logger.warning("could not look at the training lock: %s", exc)
        raise ServiceUnavailable(f"cannot tell whether a training run is in progress: {exc}") from None
    if holder:
        raise Conflict(f"a training run is in progress (lock held by {holder}); try again when it finishes")

    try:
        task_id = retrain_enqueue(kind=kind, algorithm=algorithm, params=params)
    except BrokerUnavailable as exc:
        logger.warning("could not queue %s (%s): %s", algorithm, kind, exc)
        raise ServiceUnavailable(f"could not queue the training run: {exc}") from None
    return {"task_id": task_id, "kind": kind, "algorithm": algorithm}


# ---- health ----------------------------------------------------------------------------


@extend_schema_serializer(component_name="HealthCheck")
class HealthCheckSerializer(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.ChoiceField(choices=["ok", "down", "skipped"])
    detail = serializers.CharField(help_text="what failed, or why the check was skipped")


@extend_schema_serializer(component_name="HealthChecks")
class HealthChecksSerializer(serializers.Serializer):  # type: ignore[type-arg]
    database = HealthCheckSerializer()
    cache = HealthCheckSerializer()
    broker = HealthCheckSerializer(help_text="skipped when tasks run eagerly (no broker configured)")


@extend_schema_serializer(component_name="HealthLiveModel")
class LiveModelSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    algorithm = serializers.CharField()
    trained_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.IntegerField(help_text="seconds since it finished training")


@extend_schema_serializer(component_name="HealthLiveModels")
class LiveModelsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    rating = LiveModelSerializer(allow_null=True)
    ranking = LiveModelSerializer(allow_null=True)
    similarity = LiveModelSerializer(allow_null=True)


@extend_schema_serializer(component_name="Health")
class HealthSerializer(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.ChoiceField(choices=["ok", "down"])
    down = serializers.ListField(child=serializers.CharField(), help_text="the checks that failed")
    checks = HealthChecksSerializer()
    models = LiveModelsSerializer(help_text="each kind's live version (null: none, popularity serves)")
    cache_errors_total = serializers.IntegerField(help_text="cache errors this process ignored")


HEALTH_EXAMPLE: dict[str, Any] = {
    "status": "ok",
    "down": [],
    "checks": {
        "database": {"status": "ok", "detail": ""},
        "cache": {"status": "ok", "detail": ""},
        "broker": {"status": "ok", "detail": ""},
    },
    "models": {
        "rating": {
            "id": 12,
            "algorithm": "bayesian_svdpp_served",
            "trained_at": "2026-02-01T03:31:00Z",
            "activated_at": "2026-02-01T03:31:00Z",
            "age_seconds": 3600,
        },
        "ranking": None,
        "similarity": None,
    },
    "cache_errors_total": 0,
}


class HealthApi(APIView):
    """Public: 200 when the database, the cache and (if configured) the broker answer,
    503 naming what is down; with the live models' ages and the cache error count.

    The 503 body is this same report (not the error shape), so a monitor sees every check.
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="something is down: see `down` and `checks`"),
        },
        examples=[
            OpenApiExample("healthy", value=HEALTH_EXAMPLE, response_only=True, status_codes=["200"]),
            OpenApiExample(
                "the cache is down",
                value={
                    **HEALTH_EXAMPLE,
                    "status": "down",
                    "down": ["cache"],
                    "checks": {
                        **HEALTH_EXAMPLE["checks"],
                        "cache": {
                            "status": "down",
                            "detail": "the value written was not read back (see the cache errors count and the logs)",
                        },
                    },
                    "cache_errors_total": 2,
                },
                response_only=True,
                status_codes=["503"],
            ),
        ],
        auth=[],
    )
    def get(self, request: Request) -> Response:
        report: HealthReport = health_report()
        return Response(
            HealthSerializer(report).data,
            status=status.HTTP_503_SERVICE_UNAVAILABLE if report.down else status.HTTP_200_OK,
        )
