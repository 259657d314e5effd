"""This app's routes under ``/api/v1/``."""

from __future__ import annotations

from django.urls import URLPattern, path

from .api import GenreListApi, ItemDetailApi, ItemListApi, ItemSimilarApi

urlpatterns: list[URLPattern] = [
    path("items/", ItemListApi.as_view(), name="items"),
    path("items/<int:item_id>/", ItemDetailApi.as_view(), name="item_detail"),
    path("items/<int:item_id>/similar/", ItemSimilarApi.as_view(), name="item_similar"),
    path("genres/", GenreListApi.as_view(), name="genres"),
]
