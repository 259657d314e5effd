"""Typed requests (as healthchecks' ``hc/lib/typealias.py``)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails
from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    """A request behind ``login_required``: ``request.user`` is a real ``User``."""

    user: User
    htmx: HtmxDetails  # django_htmx.middleware.HtmxMiddleware


class AuthenticatedRequest(Request):
    """A DRF request behind ``IsAuthenticated``: ``request.user`` is a real ``User``."""

    user: User
