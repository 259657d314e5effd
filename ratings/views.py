"""Rate, change and delete your own rating with plain form POSTs; list your ratings."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from catalog.models import Item
from config.typealias import AuthenticatedHttpRequest

from .forms import RatingForm
from .selectors import ratings_of_user
from .services import rating_delete, rating_upsert


@login_required
@require_POST
def rate_item(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(Item, pk=item_id)
    form = RatingForm(request.POST)
    if form.is_valid():
        rating_upsert(user=request.user, item=item, score=form.cleaned_data["score"])
        messages.success(request, f"You rated {item} {form.cleaned_data['score']:.1f}.")
    else:
        messages.error(request, "Pick a rating between 0.5 and 5.0 in half stars.")
    return redirect(_back_to(request, item))


@login_required
@require_POST
def delete_rating(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(Item, pk=item_id)
    if rating_delete(user=request.user, item=item):
        messages.success(request, f"Your rating of {item} was removed.")
    return redirect(_back_to(request, item))


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
