from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(("config.api_urls", "api"), namespace="api")),
    path("accounts/", include("catalog.account_urls")),
    path("", include("catalog.urls")),
    path("", include("ratings.urls")),
    path("", include("recommender.urls")),
]
