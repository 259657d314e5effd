from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic.base import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
    path("api/v1/", include(("config.api_urls", "api"), namespace="api")),
    path("accounts/", include("catalog.account_urls")),
    path("dashboard/", include(("recommender.dashboard_urls", "dashboard"), namespace="dashboard")),
    path("", include("catalog.urls")),
    path("", include("ratings.urls")),
    path("", include("recommender.urls")),
]
