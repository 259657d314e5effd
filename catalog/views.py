"""Catalog pages: home, browse/search and item detail; account sign-up."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from ratings.lists import hidden_item_ids, item_list_state
from ratings.selectors import (
    item_score_histogram,
    items_also_liked,
    items_popular_recently,
    rated_item_ids,
    rating_for,
)
from recommender.selectors import (
    item_rows_for_user,
    predicted_rating_for_user,
    predicted_ratings_for_user,
    recommendations_for_user,
    similar_items,
)

from .forms import ItemFilterForm, SignUpForm
from .models import Item
from .selectors import ItemFilters, genre_list, item_cards
from .selectors import item_list as select_items

PAGE_SIZE = 24
#: Genres with a row of their own on the home page, if the catalogue has them.
HOME_GENRES = ["Comedy", "Sci-Fi", "Thriller", "Animation"]
SHELF_SIZE = 12


def home(request: HttpRequest) -> HttpResponse:
    """For you (signed in), Popular now, Top rated and a few genre rows."""
    user = request.user
    shelves: list[dict[str, Any]] = []
    if user.is_authenticated:
        recs = recommendations_for_user(user=user, limit=SHELF_SIZE)  # type: ignore[arg-type]
        if recs and recs[0].source != "popularity":
            rows = item_rows_for_user(
                user=user,
                cards=[r.item for r in recs],
                predicted={r.item_id: r.predicted_rating for r in recs if r.predicted_rating is not None},
                explanations={r.item_id: r.explanation for r in recs},
            )
            shelves.append(
                {
                    "title": "For you",
                    "note": "Picked from what people with your taste loved",
                    "rows": rows,
                    "more": "recommender:for_you",
                    "id": "for-you",
                }
            )
    popular = items_popular_recently(limit=SHELF_SIZE)
    shelves.append(_shelf(request, "Popular now", "Most rated lately", popular, "popular-now"))
    top = list(
        select_items(filters=ItemFilters(sort="-rating_mean")).values_list("id", flat=True)[:SHELF_SIZE]
    )
    shelves.append(
        _shelf(request, "Top rated", "Highest average, weighted by how many rated it", top, "top-rated")
    )
    names = set(genre_list().values_list("name", flat=True))
    for genre in [g for g in HOME_GENRES if g in names]:
        ids = list(
            select_items(filters=ItemFilters(genre=genre, sort="-rating_mean")).values_list("id", flat=True)[
                :SHELF_SIZE
            ]
        )
        shelf = _shelf(request, genre, f"Top rated {genre.lower()}", ids, f"genre-{genre.lower()}")
        shelf["browse_genre"] = genre
        shelves.append(shelf)
    return render(request, "catalog/home.html", {"shelves": shelves})


def _shelf(request: HttpRequest, title: str, note: str, ids: list[int], anchor: str) -> dict[str, Any]:
    cards = item_cards(item_ids=ids)
    ordered = [cards[pk] for pk in ids if pk in cards]
    return {
        "title": title,
        "note": note,
        "rows": item_rows_for_user(user=request.user, cards=ordered),
        "id": anchor,
    }


def item_list(request: HttpRequest) -> HttpResponse:
    """Browse and search. Signed in: your predicted stars on each card, "Predicted for you"
    order, "Hide films I rated", and the films you hid left out."""
    user = request.user
    form = ItemFilterForm(
        request.GET or None,
        genres=list(genre_list().values_list("name", flat=True)),
        personal=user.is_authenticated,
    )
    filters = form.to_filters()
    by_prediction, hide_rated = form.personal_options()
    ids = select_items(filters=filters).values_list("id", flat=True)
    note = ""
    if user.is_authenticated:
        user_id = int(user.pk)
        excluded = hidden_item_ids(user_id=user_id)
        if hide_rated:
            excluded = [*excluded, *rated_item_ids(user_id=user_id)]
        if excluded:
            ids = ids.exclude(pk__in=excluded)
        if by_prediction:
            ids, note = _by_predicted_stars(user_id, list(ids))
    page = Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page"))
    cards = item_cards(item_ids=list(page))
    rows = item_rows_for_user(user=user, cards=[cards[pk] for pk in page if pk in cards])
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "catalog/item_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "filters": filters,
            "query": query.urlencode(),
            "note": note,
        },
    )


def _by_predicted_stars(user_id: int, ids: list[int]) -> tuple[Any, str]:
    """``ids`` ordered by the stars predicted for the user, best first (films the model does not
    know last, in their filtered order); or unchanged, with a note, without a personal model."""
    predicted = predicted_ratings_for_user(user_id=user_id, item_ids=ids)
    if not predicted:
        return ids, "Rate a few films first: without your ratings there is nothing to predict from."
    return sorted(ids, key=lambda pk: -predicted.get(pk, float("-inf"))), ""


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk)
    user = request.user
    my_rating = rating_for(user=user, item=item)
    state = item_list_state(user=user, item_ids=[item.pk]) if user.is_authenticated else None  # type: ignore[arg-type]
    similar = similar_items(user=user, item=item, limit=10)
    also = items_also_liked(item_id=item.pk, limit=10, exclude=_hidden_ids(request))
    also_cards = item_cards(item_ids=[j for j, _ in also])
    return render(
        request,
        "catalog/item_detail.html",
        {
            "item": item,
            "my_rating": my_rating,
            "predicted": predicted_rating_for_user(user=user, item=item),
            "histogram": item_score_histogram(item_id=item.pk),
            "similar": similar,
            "also_liked": [also_cards[j] for j, _ in also if j in also_cards],
            "hidden": bool(state and item.pk in state.hidden),
            "watchlisted": bool(state and item.pk in state.watchlisted),
        },
    )


def _hidden_ids(request: HttpRequest) -> list[int]:
    return hidden_item_ids(user_id=int(request.user.pk)) if request.user.is_authenticated else []


def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request, f"Welcome to Tastebase, {user.username}! Rate a few films you know to get started."
        )
        return redirect("recommender:onboarding")
    return render(request, "registration/signup.html", {"form": form})
