"""Branded 403, 404 and 500 pages, and the favicon."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path
from django.views.defaults import server_error

ROOT = Path(__file__).resolve().parents[2]


def _forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def _broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


# The real site plus two views that fail, for @pytest.mark.urls below.
urlpatterns = [
    path("test-forbidden/", _forbidden),
    path("test-broken/", _broken),
    path("", include("config.urls")),
]


@pytest.mark.django_db
def test_an_unknown_page_gets_the_site_s_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "We couldn't find that page" in page
    assert '<header class="site-header">' in page  # the site's layout, with its navigation
    assert "Browse the catalog" in page  # and a way on


@pytest.mark.django_db
def test_an_unknown_item_gets_the_site_s_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/items/999999/")
    assert response.status_code == 404
    assert "We couldn't find that page" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_forbidden_page_gets_the_site_s_403(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/test-forbidden/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "You can't open this page" in page
    assert '<header class="site-header">' in page


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_crash_gets_the_site_s_500() -> None:
    response = Client(raise_request_exception=False).get("/test-broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "Traceback" not in page and "a bug" not in page


def test_the_500_page_renders_without_a_request_context_or_the_database() -> None:
    # No django_db mark: any query here fails the test. server_error renders the
    # template with no context, as Django does when everything else is broken.
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "{%" not in page and "{{" not in page
    assert "<style>" in page  # no stylesheet to fetch from a manifest that may be the problem


@pytest.mark.django_db
def test_the_favicon_is_our_svg_and_favicon_ico_points_to_it(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    svg = client.get(response["Location"])
    assert svg.status_code == 200
    assert svg["Content-Type"].startswith("image/svg+xml")

    root = ET.fromstring((ROOT / "static" / "favicon.svg").read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 64 64"
    assert "http" not in (ROOT / "static" / "favicon.svg").read_text().replace(
        "http://www.w3.org/2000/svg", ""
    )
