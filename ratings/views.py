"""Rate, change and delete your own rating with plain form POSTs; list, export and import your ratings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from catalog.models import Item
from catalog.selectors import item_cards
from config.typealias import AuthenticatedHttpRequest
from recommender.selectors import item_rows_for_user

from .csv_io import IMPORT_BYTES_PER_ROW, LineError, ratings_csv_import, ratings_csv_write
from .forms import RatingForm, RatingsImportForm, RatingSortForm
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
from .selectors import DEFAULT_RATING_PAGE_SORT, rating_export_rows, rating_for, rating_page_list
from .services import rating_delete, rating_upsert
from .templatetags.rating_widgets import item_actions_context, rating_widget_context


def _recommendations_note() -> str:
    # The fold-in runs when the rating commits, before this response (recommender/apps.py).
    return "Your recommendations were updated."


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


#: Import errors listed on the page; the rest are counted ("and 12 more").
IMPORT_ERRORS_SHOWN = 20


@login_required
def my_ratings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Your ratings, sorted as ``?sort=`` says, each with the star widget to change or clear it."""
    return _my_ratings_page(request, import_form=RatingsImportForm())


def _my_ratings_page(
    request: AuthenticatedHttpRequest,
    *,
    import_form: RatingsImportForm,
    import_errors: list[LineError] | None = None,
    status: int = 200,
) -> HttpResponse:
    sort_form = RatingSortForm(request.GET)
    # An unknown sort (an old link, a typo) shows the default order, not an error.
    sort = (sort_form.is_valid() and sort_form.cleaned_data["sort"]) or DEFAULT_RATING_PAGE_SORT
    ratings = rating_page_list(user=request.user, sort=sort)
    page = Paginator(ratings, 50).get_page(request.GET.get("page"))
    max_rows = settings.TASTEBASE_RATINGS_IMPORT_MAX_ROWS
    errors = import_errors or []
    context = {
        "page": page,
        "sort_form": RatingSortForm(initial={"sort": sort}),
        "query": "" if sort == DEFAULT_RATING_PAGE_SORT else f"sort={sort}",  # kept by the page links
        "import_form": import_form,
        "import_errors": errors[:IMPORT_ERRORS_SHOWN],
        "import_errors_more": max(0, len(errors) - IMPORT_ERRORS_SHOWN),
        "import_errors_total": len(errors),
        "import_max_rows": max_rows,
        "import_max_megabytes": max_rows * IMPORT_BYTES_PER_ROW / 1_000_000,
    }
    return render(request, "ratings/my_ratings.html", context, status=status)


@login_required
@require_safe
@never_cache
def export_ratings(request: AuthenticatedHttpRequest) -> StreamingHttpResponse:
    """All your ratings as a CSV download, streamed: a long history is never held in memory."""
    rows = rating_export_rows(user=request.user)
    response = StreamingHttpResponse(ratings_csv_write(rows=rows), content_type="text/csv; charset=utf-8")
    filename = f"tastebase-ratings-{request.user.username}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@login_required
@require_POST
def import_ratings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Import your ratings from a CSV file in the export's format: all rows or, on any error, none."""
    form = RatingsImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _my_ratings_page(request, import_form=form, status=400)
    result = ratings_csv_import(
        user=request.user,
        file=form.cleaned_data["file"],
        max_rows=settings.TASTEBASE_RATINGS_IMPORT_MAX_ROWS,
    )
    if result.errors:
        return _my_ratings_page(request, import_form=form, import_errors=result.errors, status=400)
    plural = "" if result.rows == 1 else "s"
    summary = f"Imported {result.rows} rating{plural} ({result.created} new, {result.changed} changed)."
    if result.created or result.changed:
        summary = f"{summary} {_recommendations_note()}"
    messages.success(request, summary)
    return redirect("ratings:my_ratings")


def _back_to(request: HttpRequest, item: Item) -> str:
    """Where to go after a rating form: the posted ``next`` if it is on this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("catalog:item_detail", args=[item.pk])
