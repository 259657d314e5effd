"""Who may see and use the dashboard: staff only; every action is a CSRF-protected POST."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from recommender.models import ModelVersion, VersionStatus

from .conftest import HTMX

PAGES = [("index", {}), ("data", {}), ("task", {"task_id": "no-such-task"})]
ACTIONS = [
    ("activate", {"version_id": 1}, {"force": "on"}),
    ("rollback", {}, {"kind": "rating"}),
    ("retrain", {}, {"kind": "ranking"}),
]


@pytest.fixture
def retired(db: Any) -> ModelVersion:
    """A version an action could make live (it has no tables, so nothing ever does here)."""
    return ModelVersion.objects.create(
        pk=1, kind="rating", algorithm="explicit_als", status=VersionStatus.RETIRED
    )


@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_pages_send_anonymous_visitors_to_the_login_page(
    client: Client, db: Any, name: str, kwargs: dict
) -> None:
    url = reverse(f"dashboard:{name}", kwargs=kwargs)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_pages_are_forbidden_to_users_who_are_not_staff(
    client: Client, alice: Any, name: str, kwargs: dict
) -> None:
    client.force_login(alice)
    assert client.get(reverse(f"dashboard:{name}", kwargs=kwargs)).status_code == 403


@pytest.mark.parametrize(("name", "kwargs"), PAGES, ids=[p[0] for p in PAGES])
def test_pages_open_for_staff(as_staff: Client, name: str, kwargs: dict) -> None:
    response = as_staff.get(reverse(f"dashboard:{name}", kwargs=kwargs))
    assert response.status_code == 200
    assert b'href="/dashboard/" aria-current="page">Dashboard</a>' in response.content  # the nav link


@pytest.mark.parametrize(("name", "kwargs", "body"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_refuse_everyone_but_staff_and_change_nothing(
    client: Client, alice: Any, retired: ModelVersion, name: str, kwargs: dict, body: dict
) -> None:
    url = reverse(f"dashboard:{name}", kwargs=kwargs)

    anonymous = client.post(url, body)
    client.force_login(alice)
    user = client.post(url, body)

    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert user.status_code == 403
    assert list(ModelVersion.objects.values_list("pk", "status")) == [(1, "retired")]


@pytest.mark.parametrize(("name", "kwargs", "body"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_actions_only_answer_post(as_staff: Client, name: str, kwargs: dict, body: dict) -> None:
    assert as_staff.get(reverse(f"dashboard:{name}", kwargs=kwargs), body).status_code == 405


def test_an_htmx_request_without_a_session_sends_the_whole_page_to_the_login_page(
    client: Client, db: Any
) -> None:
    response = client.get(reverse("dashboard:task", kwargs={"task_id": "abc"}), **HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next=/dashboard/"


def test_actions_need_the_csrf_token(staff: Any, retired: ModelVersion) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    url = reverse("dashboard:rollback")

    forged = browser.post(url, {"kind": "rating", "to": retired.pk})
    browser.get(reverse("dashboard:index"))  # sets the csrftoken cookie, as a visit does
    token = browser.cookies["csrftoken"].value
    genuine = browser.post(url, {"kind": "rating", "to": retired.pk}, HTTP_X_CSRFTOKEN=token)

    assert forged.status_code == 403
    # Through: the service ran and refused (a version without tables can never be live).
    assert genuine.status_code == 409 and b"empty item factor table" in genuine.content
    assert ModelVersion.objects.get().status == VersionStatus.RETIRED
