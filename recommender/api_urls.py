"""This app's routes under ``/api/v1/`` (namespace ``api``)."""

from __future__ import annotations

from django.urls import URLPattern, path

from .api import (
    HealthApi,
    MeApi,
    MeHiddenItemApi,
    MeHiddenListApi,
    MeRecommendationsApi,
    MeWatchlistItemApi,
    MeWatchlistListApi,
    ModelRetrainApi,
    ModelRollbackApi,
    ModelVersionActivateApi,
    ModelVersionListApi,
    TrainingTaskApi,
    UserRecommendationsApi,
)

urlpatterns: list[URLPattern] = [
    path("me/", MeApi.as_view(), name="me"),
    path("me/recommendations/", MeRecommendationsApi.as_view(), name="me_recommendations"),
    path("me/hidden/", MeHiddenListApi.as_view(), name="me_hidden"),
    path("me/hidden/<int:item_id>/", MeHiddenItemApi.as_view(), name="me_hidden_item"),
    path("me/watchlist/", MeWatchlistListApi.as_view(), name="me_watchlist"),
    path("me/watchlist/<int:item_id>/", MeWatchlistItemApi.as_view(), name="me_watchlist_item"),
    path(
        "users/<int:user_id>/recommendations/", UserRecommendationsApi.as_view(), name="user_recommendations"
    ),
    path("models/", ModelVersionListApi.as_view(), name="models"),
    path("models/retrain/", ModelRetrainApi.as_view(), name="models_retrain"),
    path("models/rollback/", ModelRollbackApi.as_view(), name="models_rollback"),
    path("models/<int:version_id>/activate/", ModelVersionActivateApi.as_view(), name="model_activate"),
    path("tasks/<str:task_id>/", TrainingTaskApi.as_view(), name="task"),
    path("health/", HealthApi.as_view(), name="health"),
]
