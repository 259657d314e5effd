"""Catalog pages: browse/search and item detail; account sign-up."""

from __future__ import annotations

from django.contrib.auth import login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from ratings.forms import RatingForm
from ratings.selectors import rating_for
from recommender.selectors import similar_items

from .forms import ItemFilterForm, SignUpForm
from .models import Item
from .selectors import genre_list
from .selectors import item_list as select_items

PAGE_SIZE = 24


def item_list(request: HttpRequest) -> HttpResponse:
    form = ItemFilterForm(request.GET or None, genres=list(genre_list().values_list("name", flat=True)))
    filters = form.to_filters()
    items = select_items(filters=filters).prefetch_related("genres")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "catalog/item_list.html",
        {"form": form, "page": page, "filters": filters, "query": query.urlencode()},
    )


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.prefetch_related("genres"), pk=pk)
    my_rating = rating_for(user=request.user, item=item)
    form = RatingForm(initial={"score": f"{my_rating.score:.1f}" if my_rating else "4.0"})
    similar = similar_items(user=request.user, item=item, limit=10)
    return render(
        request,
        "catalog/item_detail.html",
        {"item": item, "my_rating": my_rating, "form": form, "similar": similar},
    )


def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("catalog:item_list")
    return render(request, "registration/signup.html", {"form": form})
