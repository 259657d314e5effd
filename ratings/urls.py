from __future__ import annotations

from django.urls import path

from . import views

app_name = "ratings"

urlpatterns = [
    path("items/<int:item_id>/rate/", views.rate_item, name="rate"),
    path("items/<int:item_id>/rating/delete/", views.delete_rating, name="delete"),
    path("items/<int:item_id>/watchlist/", views.watchlist_toggle, name="watchlist_toggle"),
    path("items/<int:item_id>/hide/", views.hide_toggle, name="hide_toggle"),
    path("me/ratings/", views.my_ratings, name="my_ratings"),
    path("me/ratings/export.csv", views.export_ratings, name="export"),
    path("me/ratings/import/", views.import_ratings, name="import"),
    path("me/watchlist/", views.watchlist, name="watchlist"),
]
