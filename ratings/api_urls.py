"""This app's routes under ``/api/v1/``."""

from __future__ import annotations

from django.urls import URLPattern, path

from .api import RatingDetailApi, RatingListApi, RatingsBulkApi

urlpatterns: list[URLPattern] = [
    path("ratings/", RatingListApi.as_view(), name="ratings"),
    path("ratings/bulk/", RatingsBulkApi.as_view(), name="ratings_bulk"),
    path("ratings/<int:item_id>/", RatingDetailApi.as_view(), name="rating_detail"),
]
