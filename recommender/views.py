"""The "For you" page and a new user's onboarding."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.selectors import genre_list
from config.typealias import AuthenticatedHttpRequest
from ratings.models import Rating

from .forms import ForYouFilterForm
from .selectors import for_you_list, item_rows_for_user, onboarding_items

PAGE_SIZE = 24
#: A new account is asked for this many ratings before its list is called personal.
ONBOARDING_GOAL = 10

ORDER_NOTES = {
    "predicted": "Picked from the films people with your taste watch and love, ordered by the stars we think you'd give them.",
    "ranking": "Ordered by how well each film matches your taste.",
    "popularity": "What people love most (average rating, weighted by how many rated it). Rate a few films and this becomes yours.",
}


def for_you(request: HttpRequest) -> HttpResponse:
    genres = list(genre_list().values_list("name", flat=True))
    form = ForYouFilterForm(request.GET or None, genres=genres)
    filters = form.cleaned_filters()
    listing = for_you_list(user=request.user, **filters)  # type: ignore[arg-type]
    page = Paginator(listing.results, PAGE_SIZE).get_page(request.GET.get("page"))
    recs = list(page)
    rows = item_rows_for_user(
        user=request.user,
        cards=[r.item for r in recs],
        predicted={r.item_id: r.predicted_rating for r in recs if r.predicted_rating is not None},
        explanations={r.item_id: r.explanation for r in recs},
    )
    query = request.GET.copy()
    query.pop("page", None)
    rated = Rating.objects.filter(user_id=request.user.pk).count() if request.user.is_authenticated else 0
    return render(
        request,
        "recommender/for_you.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "personalized": listing.personalized,
            "order_note": ORDER_NOTES[listing.order],
            "query": query.urlencode(),
            "rated": rated,
            "goal": ONBOARDING_GOAL,
        },
    )


@login_required
def onboarding(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Rate films you know until you have ``ONBOARDING_GOAL`` ratings (skip any time)."""
    shown = _shown(request)
    cards = onboarding_items(user=request.user, limit=PAGE_SIZE, exclude=shown)
    rows = item_rows_for_user(user=request.user, cards=cards, predicted={})
    return render(
        request,
        "recommender/onboarding.html",
        {
            "rows": rows,
            "more": ",".join(str(pk) for pk in [*shown, *(c.id for c in cards)]),
            **_progress(request),
        },
    )


@login_required
def onboarding_progress(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The progress bar alone (htmx re-reads it after each rating)."""
    return render(request, "recommender/_onboarding_progress.html", _progress(request))


def _progress(request: AuthenticatedHttpRequest) -> dict[str, int | bool]:
    rated = Rating.objects.filter(user=request.user).count()
    return {
        "rated": rated,
        "goal": ONBOARDING_GOAL,
        "percent": min(100, round(100 * rated / ONBOARDING_GOAL)),
        "done": rated >= ONBOARDING_GOAL,
    }


def _shown(request: HttpRequest) -> list[int]:
    """Items already offered ("Show me other films" passes them on so new ones come up)."""
    raw = request.GET.get("shown", "")
    return [int(part) for part in raw.split(",") if part.isdigit()][:500]
