"""Rate, change and delete your own rating with plain form POSTs; list your ratings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from catalog.models import Item
from catalog.selectors import item_cards
from config.typealias import AuthenticatedHttpRequest
from recommender.selectors import item_rows_for_user

from .forms import RatingForm
from .lists import (
    hidden_add,
    hidden_contains,
    hidden_remove,
    item_list_state,
    watchlist_add,
    watchlist_contains,
    watchlist_items,
    watchlist_remove,
)
from .selectors import rating_for, ratings_of_user
from .services import rating_delete, rating_upsert
from .templatetags.rating_widgets import item_actions_context, rating_widget_context


def _recommendations_note() -> str:
    # Without a broker the fold-in ran before this response; with one it is queued.
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "Your recommendations were updated."
    return "Your recommendations will update in a moment."


@login_required
@require_POST
def rate_item(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    """Rate an item: the half-star widget's POST (htmx: answered with the widget itself)."""
    item = get_object_or_404(Item, pk=item_id)
    form = RatingForm(request.POST)
    if form.is_valid():
        score = form.cleaned_data["score"]
        rating_upsert(user=request.user, item=item, score=score)
        status = f"Saved {score:.1f}★. {_recommendations_note()}"
        ok = True
    else:
        score = None
        existing = rating_for(user=request.user, item=item)
        score = existing.score if existing else None
        status = "Pick a rating between 0.5 and 5.0 in half stars."
        ok = False
    if request.htmx:
        context = rating_widget_context({"user": request.user, "request": request}, item, score, status)
        # 200 even for a bad value: htmx swaps only 2xx answers, and the widget shows the problem.
        response = render(request, "ratings/_rate.html", context)
        if ok:
            response["HX-Trigger"] = "rated"  # the onboarding progress bar listens for it
        return response
    (messages.success if ok else messages.error)(request, f"{item}: {status}")
    return redirect(_back_to(request, item))


@login_required
@require_POST
def delete_rating(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    """Remove your rating of an item (htmx: answered with an empty widget)."""
    item = get_object_or_404(Item, pk=item_id)
    deleted = rating_delete(user=request.user, item=item)
    status = f"Rating removed. {_recommendations_note()}" if deleted else "You had not rated this."
    if request.htmx:
        context = rating_widget_context({"user": request.user, "request": request}, item, None, status)
        response = render(request, "ratings/_rate.html", context)
        response["HX-Trigger"] = "rated"
        return response
    if deleted:
        messages.success(request, f"Your rating of {item} was removed.")
    return redirect(_back_to(request, item))


def _toggle(
    request: AuthenticatedHttpRequest,
    item_id: int,
    *,
    on: Callable[..., Any],
    off: Callable[..., bool],
    is_on: Callable[..., bool],
    said_on: str,
    said_off: str,
) -> HttpResponse:
    item = get_object_or_404(Item, pk=item_id)
    if is_on(user=request.user, item=item):
        off(user=request.user, item=item)
        status = said_off
    else:
        on(user=request.user, item=item)
        status = said_on
    if request.htmx:
        state = item_list_state(user=request.user, item_ids=[item.pk])
        context = item_actions_context(
            {"user": request.user, "request": request},
            item,
            hidden=item.pk in state.hidden,
            watchlisted=item.pk in state.watchlisted,
            status=status,
        )
        return render(request, "ratings/_item_actions.html", context)
    messages.success(request, f"{item}: {status}")
    return redirect(_back_to(request, item))


@login_required
@require_POST
def watchlist_toggle(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    """Put an item on your watchlist, or take it off."""
    return _toggle(
        request,
        item_id,
        on=watchlist_add,
        off=watchlist_remove,
        is_on=watchlist_contains,
        said_on="Added to your watchlist.",
        said_off="Removed from your watchlist.",
    )


@login_required
@require_POST
def hide_toggle(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    """Not interested: hide an item from your recommendations and similar lists, or show it again."""
    return _toggle(
        request,
        item_id,
        on=hidden_add,
        off=hidden_remove,
        is_on=hidden_contains,
        said_on="Hidden: it won't be recommended to you again.",
        said_off="Shown again.",
    )


@login_required
def watchlist(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Your watchlist, newest first."""
    page = Paginator(watchlist_items(user=request.user), 24).get_page(request.GET.get("page"))
    ids = [entry.item_id for entry in page]
    cards = item_cards(item_ids=ids)
    rows = item_rows_for_user(user=request.user, cards=[cards[pk] for pk in ids if pk in cards])
    return render(request, "ratings/watchlist.html", {"page": page, "rows": rows})


@login_required
def my_ratings(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(ratings_of_user(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "ratings/my_ratings.html", {"page": page})


def _back_to(request: HttpRequest, item: Item) -> str:
    """Where to go after a rating form: the posted ``next`` if it is on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("catalog:item_detail", args=[item.pk])
