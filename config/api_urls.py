"""``/api/v1/``: every app's API routes, the schema, its docs, and tokens."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .api import api_not_found
from .auth_api import TokenCreateApi, TokenRevokeApi

urlpatterns = [
    path("", include("catalog.api_urls")),
    path("", include("ratings.api_urls")),
    path("", include("recommender.api_urls")),
    path("auth/token/", TokenCreateApi.as_view(), name="token"),
    path("auth/token/revoke/", TokenRevokeApi.as_view(), name="token_revoke"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    # Last: an unknown API path answers the error shape too, not the site's HTML 404.
    re_path(r"^.*$", api_not_found, name="not_found"),
]
