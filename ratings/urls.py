from __future__ import annotations

from django.urls import path

from . import views

app_name = "ratings"

urlpatterns = [
    path("items/<int:item_id>/rate/", views.rate_item, name="rate"),
    path("items/<int:item_id>/rating/delete/", views.delete_rating, name="delete"),
    path("me/ratings/", views.my_ratings, name="my_ratings"),
]
