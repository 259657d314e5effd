"""The "For you" page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.selectors import genre_list

from .selectors import recommendations_for_user


def for_you(request: HttpRequest) -> HttpResponse:
    genre = request.GET.get("genre") or None
    recs = recommendations_for_user(user=request.user, limit=24, genre=genre)  # type: ignore[arg-type]
    return render(
        request,
        "recommender/for_you.html",
        {
            "recommendations": recs,
            "genres": genre_list(),
            "genre": genre,
            "personalized": any(r.source != "popularity" for r in recs),
        },
    )
