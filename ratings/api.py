"""Your own ratings under ``/api/v1/``: list them, rate one item, unrate it, rate many at once.

Signed-in users only, and only ever the caller's own ratings: no route takes a
user id. Every write goes through :mod:`ratings.services`, so item aggregates
stay exact and the fold-in runs after commit, as for the site's forms.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api import ITEM_EXAMPLE, ItemSerializer, item_not_found
from catalog.models import Item
from catalog.selectors import MAX_ID, item_get
from config.api import Pagination
from config.typealias import AuthenticatedRequest

from .scale import MAX_SCORE, MIN_SCORE, SCORE_STEP
from .selectors import DEFAULT_RATING_ORDERING, RATING_ORDERINGS, rating_for, rating_list
from .services import rating_delete, rating_rows_resolve, rating_upsert, ratings_bulk_upsert, validate_score

#: Rows one bulk request may carry.
BULK_MAX_ROWS = 1000

RATING_EXAMPLE: dict[str, Any] = {
    "item": ITEM_EXAMPLE,
    "score": 4.5,
    "created_at": "2025-05-01T18:02:11.093Z",
    "updated_at": "2025-05-03T09:45:00.417Z",
}


@extend_schema_field({"type": "number", "minimum": MIN_SCORE, "maximum": MAX_SCORE, "multipleOf": SCORE_STEP})
class ScoreField(serializers.FloatField):
    """A score: half stars from 0.5 to 5.0 (the schema says so; ``validate_score`` checks it)."""


def score_validator(value: float) -> None:
    """:func:`validate_score` as a serializer field validator (its errors name the field)."""
    validate_score(value)


@extend_schema_serializer(component_name="Rating")
class RatingSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """One of your ratings."""

    item = ItemSerializer()
    score = ScoreField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class RatingListApi(APIView):
    """Your ratings, most recently changed first unless ``ordering`` says otherwise."""

    permission_classes = [IsAuthenticated]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
        item = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
        ordering = serializers.ChoiceField(
            choices=list(RATING_ORDERINGS),
            default=DEFAULT_RATING_ORDERING,
            error_messages={"invalid_choice": f'"{{input}}" is not one of: {", ".join(RATING_ORDERINGS)}.'},
        )

    @extend_schema(
        operation_id="ratings_list",
        parameters=[
            OpenApiParameter(
                "item",
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                description="Only your rating of this item (an empty page if you have none).",
            ),
            OpenApiParameter(
                "ordering",
                str,
                enum=list(RATING_ORDERINGS),
                default=DEFAULT_RATING_ORDERING,
                description="Sort key; `-` for descending.",
            ),
        ],
        responses={200: RatingSerializer(many=True)},
        examples=[OpenApiExample("a page of your ratings", value=RATING_EXAMPLE, response_only=True)],
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        ratings = rating_list(
            user=request.user,
            item_id=params.validated_data.get("item"),
            ordering=params.validated_data["ordering"],
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ratings, request, view=self)
        return paginator.get_paginated_response(RatingSerializer(page, many=True).data)


class RatingDetailApi(APIView):
    """Your rating of one item: read it, set it (create or change), or remove it."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="RatingPut")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        score = ScoreField(validators=[score_validator])

    @extend_schema(operation_id="ratings_retrieve", responses={200: RatingSerializer})
    def get(self, request: AuthenticatedRequest, item_id: int) -> Response:
        rating = rating_for(user=request.user, item=self._item(item_id))
        if rating is None:
            raise exceptions.NotFound(f"You have not rated item {item_id}.")
        return Response(RatingSerializer(rating).data)

    @extend_schema(
        operation_id="ratings_put",
        request=InputSerializer,
        responses={200: RatingSerializer, 201: RatingSerializer},
        examples=[
            OpenApiExample("four and a half stars", value={"score": 4.5}, request_only=True),
            OpenApiExample(
                "your rating", value=RATING_EXAMPLE, response_only=True, status_codes=["200", "201"]
            ),
        ],
        description="Create (201) or change (200) your rating of the item.",
    )
    def put(self, request: AuthenticatedRequest, item_id: int) -> Response:
        item = self._item(item_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rating = rating_upsert(user=request.user, item=item, score=data.validated_data["score"])
        # rating_upsert stamps a new rating's created_at and updated_at with the same instant.
        created = rating.created_at == rating.updated_at
        return Response(
            RatingSerializer(rating).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(operation_id="ratings_destroy", responses={204: None})
    def delete(self, request: AuthenticatedRequest, item_id: int) -> Response:
        if not rating_delete(user=request.user, item=self._item(item_id)):
            raise exceptions.NotFound(f"You have not rated item {item_id}.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _item(item_id: int) -> Item:
        item = item_get(item_id=item_id)
        if item is None:
            raise item_not_found(item_id)
        return item


@extend_schema_serializer(component_name="RatingsBulkRow")
class RatingsBulkRowSerializer(serializers.Serializer):  # type: ignore[type-arg]
    item = serializers.IntegerField(help_text="an item id")
    score = ScoreField()  # checked with the item, by rating_rows_resolve: every bad row in one answer


class RatingsBulkApi(APIView):
    """Rate many items at once (an import from elsewhere): all rows or none.

    Every row is checked first: an unknown item, a score that is not a half star
    from 0.5 to 5.0, or an item already given in an earlier row makes the request
    a 400 naming each bad row by its position (from 0) under ``fields.ratings``,
    and nothing is written. Otherwise all rows are applied in one transaction and
    your recommendations are refreshed once.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="RatingsBulkInput")
    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        ratings = serializers.ListField(
            child=RatingsBulkRowSerializer(), min_length=1, max_length=BULK_MAX_ROWS
        )

    @extend_schema_serializer(component_name="RatingsBulkResult")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        created = serializers.IntegerField(help_text="ratings that did not exist before")
        updated = serializers.IntegerField(
            help_text="existing ratings rewritten (their score may be unchanged)"
        )

    @extend_schema(
        operation_id="ratings_bulk",
        request=InputSerializer,
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "three ratings",
                value={
                    "ratings": [
                        {"item": 1, "score": 4.5},
                        {"item": 2, "score": 3.0},
                        {"item": 32, "score": 5.0},
                    ]
                },
                request_only=True,
            ),
            OpenApiExample("applied", value={"created": 2, "updated": 1}, response_only=True),
        ],
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        checked = rating_rows_resolve(
            rows=[(row["item"], row["score"]) for row in data.validated_data["ratings"]]
        )
        if checked.errors:
            rows = {str(position): problems for position, problems in checked.errors.items()}
            raise exceptions.ValidationError({"ratings": rows})
        created, updated = ratings_bulk_upsert(user=request.user, rows=checked.rows)
        return Response(self.OutputSerializer({"created": created, "updated": updated}).data)
