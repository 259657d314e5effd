"""The catalog under ``/api/v1/``: browse and search items, one item, similar items, genres.

Public and read-only (``AllowAny``, so a write method answers 405, not 401).
Each view parses its input, calls one selector and shapes the output; errors
come out in the one shape of :mod:`config.api`.
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
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination, query_int
from ratings.selectors import rating_for
from recommender.selectors import predicted_rating_for_user, similar_items

from .models import Genre, Item
from .selectors import (
    YEAR_MAX,
    YEAR_MIN,
    ItemCard,
    ItemFilters,
    genre_exists,
    genre_list,
    item_get,
    item_list,
)

#: The API's ``ordering`` values -> :data:`catalog.selectors.ITEM_ORDERINGS` keys.
#: "popularity" is the number of ratings; "mean_rating" orders by the damped mean score
#: (:data:`catalog.selectors.ITEM_SORTS`: many good ratings beat a few perfect ones;
#: unrated items last).
ITEM_API_ORDERINGS: dict[str, str] = {
    "title": "title",
    "-title": "-title",
    "year": "year",
    "-year": "-year",
    "popularity": "rating_count",
    "-popularity": "-rating_count",
    "mean_rating": "rating_mean",
    "-mean_rating": "-rating_mean",
}
DEFAULT_ITEM_ORDERING = "-popularity"
#: The largest value a count column holds (``PositiveIntegerField``).
MAX_COUNT = 2**31 - 1
SIMILAR_DEFAULT, SIMILAR_MAX = 10, 100

ITEM_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "title": "Toy Story",
    "year": 1995,
    "genres": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
    "rating_count": 215,
    "rating_mean": 3.92,
}


def item_not_found(item_id: int) -> exceptions.NotFound:
    """The 404 of an item id that does not exist (shared with the ratings API)."""
    return exceptions.NotFound(f"No item with id {item_id}.")


@extend_schema_serializer(component_name="Item")
class ItemSerializer(serializers.ModelSerializer[Item]):
    """An item as every API response shows it (genres by name, in name order). Output only."""

    genres = serializers.SlugRelatedField[Genre](many=True, read_only=True, slug_field="name")

    class Meta:
        model = Item
        fields = ["id", "title", "year", "genres", "rating_count", "rating_mean"]
        read_only_fields = fields
        extra_kwargs = {
            "rating_count": {"help_text": "number of ratings"},
            "rating_mean": {"help_text": "mean score; null without ratings"},
        }


def item_card_body(card: ItemCard) -> dict[str, Any]:
    """A list's :class:`~catalog.selectors.ItemCard` in :class:`ItemSerializer`'s shape."""
    return {
        "id": card.id,
        "title": card.title,
        "year": card.year,
        "genres": list(card.genres),
        "rating_count": card.rating_count,
        "rating_mean": card.rating_mean,
    }


class ItemListApi(APIView):
    """Browse and search the catalog as the site's browse page does, a page at a time."""

    permission_classes = [AllowAny]
    pagination_class = Pagination

    class FilterSerializer(serializers.Serializer):  # type: ignore[type-arg]
        q = serializers.CharField(required=False, allow_blank=True, max_length=200)
        genre = serializers.CharField(required=False, allow_blank=True, max_length=64)
        year_min = serializers.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX)
        year_max = serializers.IntegerField(required=False, min_value=YEAR_MIN, max_value=YEAR_MAX)
        min_ratings = serializers.IntegerField(required=False, min_value=0, max_value=MAX_COUNT)
        ordering = serializers.ChoiceField(
            choices=list(ITEM_API_ORDERINGS),
            default=DEFAULT_ITEM_ORDERING,
            error_messages={"invalid_choice": f'"{{input}}" is not one of: {", ".join(ITEM_API_ORDERINGS)}.'},
        )

        def validate_genre(self, value: str) -> str:
            if value and not genre_exists(name=value):
                raise serializers.ValidationError(f"no genre named {value!r} (see /api/v1/genres/)")
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            year_min, year_max = attrs.get("year_min"), attrs.get("year_max")
            if year_min is not None and year_max is not None and year_min > year_max:
                raise serializers.ValidationError({"year_max": [f"{year_max} is before year_min {year_min}"]})
            return attrs

    @extend_schema(
        operation_id="items_list",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                description=(
                    "Words in the title, in any order, every one required; case, accents and "
                    "punctuation are ignored and numbers up to 20 match as digits, words or Roman "
                    "numerals. On PostgreSQL, when no title has them all, the closest spellings "
                    "come back instead, most similar first."
                ),
            ),
            OpenApiParameter("genre", str, description="Only items of this genre (a name from `/genres/`)."),
            OpenApiParameter(
                "year_min",
                {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
                description="Released in or after this year.",
            ),
            OpenApiParameter(
                "year_max",
                {"type": "integer", "minimum": YEAR_MIN, "maximum": YEAR_MAX},
                description="Released in or before this year.",
            ),
            OpenApiParameter(
                "min_ratings",
                {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                description="At least this many ratings.",
            ),
            OpenApiParameter(
                "ordering",
                str,
                enum=list(ITEM_API_ORDERINGS),
                default=DEFAULT_ITEM_ORDERING,
                description=(
                    "Sort key; `-` for descending. `popularity` is the number of ratings; `mean_rating` "
                    "is the mean score damped toward the catalog's mean for items with few ratings."
                ),
            ),
        ],
        responses={200: ItemSerializer(many=True)},
        examples=[OpenApiExample("a page of items", value=ITEM_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        filters = ItemFilters(
            q=data.get("q", ""),
            genre=data.get("genre", ""),
            year_min=data.get("year_min"),
            year_max=data.get("year_max"),
            min_ratings=data.get("min_ratings"),
            sort=ITEM_API_ORDERINGS[data["ordering"]],
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            item_list(filters=filters).prefetch_related("genres"), request, view=self
        )
        return paginator.get_paginated_response(ItemSerializer(page, many=True).data)


class ItemDetailApi(APIView):
    """One item with its rating stats; for a signed-in user also their rating and predicted stars."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="ItemDetail")
    class OutputSerializer(ItemSerializer):
        """An item with what the caller sees of it (null when signed out)."""

        your_rating = serializers.SerializerMethodField(
            help_text="your score of this item; null if you have not rated it or are signed out"
        )
        predicted_rating = serializers.SerializerMethodField(
            help_text="the stars the active rating model predicts for you; null without one or signed out"
        )

        class Meta(ItemSerializer.Meta):
            fields = [*ItemSerializer.Meta.fields, "your_rating", "predicted_rating"]

        @extend_schema_field(serializers.FloatField(allow_null=True))
        def get_your_rating(self, item: Item) -> float | None:
            return self.context["your_rating"]  # type: ignore[no-any-return]

        @extend_schema_field(serializers.FloatField(allow_null=True))
        def get_predicted_rating(self, item: Item) -> float | None:
            return self.context["predicted_rating"]  # type: ignore[no-any-return]

    @extend_schema(
        operation_id="items_retrieve",
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "signed in",
                value={**ITEM_EXAMPLE, "your_rating": 4.5, "predicted_rating": 4.1},
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, item_id: int) -> Response:
        item = item_get(item_id=item_id)
        if item is None:
            raise item_not_found(item_id)
        rating = rating_for(user=request.user, item=item)
        predicted = predicted_rating_for_user(user=request.user, item=item)
        context = {"your_rating": rating.score if rating else None, "predicted_rating": predicted}
        return Response(self.OutputSerializer(item, context=context).data)


@extend_schema_serializer(component_name="SimilarItem")
class SimilarItemSerializer(serializers.Serializer):  # type: ignore[type-arg]
    item = ItemSerializer()
    score = serializers.FloatField(help_text="similarity; higher is more alike")


class ItemSimilarApi(APIView):
    """The items most like this one (the active similarity model), most similar first.

    Signed-in users do not see items they hid.
    """

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="SimilarItems")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        results = SimilarItemSerializer(many=True)

    @extend_schema(
        operation_id="items_similar",
        parameters=[
            OpenApiParameter(
                "n",
                {"type": "integer", "minimum": 1, "maximum": SIMILAR_MAX},
                default=SIMILAR_DEFAULT,
                description="How many similar items.",
            )
        ],
        responses={200: OutputSerializer},
        examples=[
            OpenApiExample(
                "similar items",
                value={
                    "results": [{"item": {**ITEM_EXAMPLE, "id": 3114, "title": "Toy Story 2"}, "score": 0.93}]
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, item_id: int) -> Response:
        limit = query_int(request, "n", SIMILAR_DEFAULT, minimum=1, maximum=SIMILAR_MAX)
        item = item_get(item_id=item_id)
        if item is None:
            raise item_not_found(item_id)
        similar = similar_items(item=item, limit=limit, user=request.user)
        # Built from the cached plain data in OutputSerializer's shape (see _recommendation_body).
        return Response({"results": [{"item": item_card_body(s.item), "score": s.score} for s in similar]})


class GenreListApi(APIView):
    """Every genre, by name (the values the items list's ``genre`` filter accepts)."""

    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="Genre")
    class OutputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        id = serializers.IntegerField()
        name = serializers.CharField()

    @extend_schema(
        operation_id="genres_list",
        responses={200: OutputSerializer(many=True)},
        examples=[OpenApiExample("genres", value={"id": 1, "name": "Comedy"}, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(genre_list(), many=True).data)
