"""Who may call what: every API route and method, generated from the URL conf.

``ACCESS`` gives each (route name, method) its audience. A route added to the
URL conf without a row here fails ``test_every_route_and_method_has_a_row``,
so nobody ships an endpoint whose permissions were never decided.

Personas (tests/conftest.py): anonymous; alice, who owns the data the URLs
point at; bob, another signed-in user; staff.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from ratings.services import rating_upsert
from tests.api.conftest import as_user
from tests.factories import ItemFactory

PUBLIC, USER, STAFF = "public", "signed-in users", "staff only"

#: (route name in the "api" namespace, HTTP method) -> audience.
ACCESS: dict[tuple[str, str], str] = {
    ("token", "post"): PUBLIC,
    ("token_revoke", "post"): USER,
    ("schema", "get"): PUBLIC,
    ("docs", "get"): PUBLIC,
    ("redoc", "get"): PUBLIC,
    ("items", "get"): PUBLIC,
    ("item_detail", "get"): PUBLIC,
    ("item_similar", "get"): PUBLIC,
    ("genres", "get"): PUBLIC,
    ("ratings", "get"): USER,
    ("rating_detail", "get"): USER,
    ("rating_detail", "put"): USER,
    ("rating_detail", "delete"): USER,
    ("ratings_bulk", "post"): USER,
    ("me", "get"): USER,
    ("me_recommendations", "get"): PUBLIC,
    ("me_hidden", "get"): USER,
    ("me_hidden_item", "put"): USER,
    ("me_hidden_item", "delete"): USER,
    ("me_watchlist", "get"): USER,
    ("me_watchlist_item", "put"): USER,
    ("me_watchlist_item", "delete"): USER,
    ("user_recommendations", "get"): STAFF,
    ("models", "get"): STAFF,
    ("models_retrain", "post"): STAFF,
    ("model_activate", "post"): STAFF,
    ("models_rollback", "post"): STAFF,
    ("task", "get"): STAFF,
    ("health", "get"): PUBLIC,
}

#: Routes that are not DRF views (no per-method permissions to decide).
NOT_API_VIEWS = {"not_found"}


def api_routes() -> list[tuple[str, list[str], list[str]]]:
    """(name, URL kwargs, methods) of every named route in the "api" namespace."""
    resolver = get_resolver()
    api = next(
        p
        for p in resolver.url_patterns
        if isinstance(p, URLResolver) and getattr(p, "namespace", None) == "api"
    )
    found: list[tuple[str, list[str], list[str]]] = []

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name and pattern.name not in NOT_API_VIEWS:
                view = getattr(pattern.callback, "cls", None)
                assert view is not None, f"route {pattern.name!r} is not a DRF view"
                methods = [
                    m
                    for m in view.http_method_names
                    if m not in {"options", "head", "trace"} and hasattr(view, m)
                ]
                found.append((pattern.name, sorted(pattern.pattern.converters), methods))

    walk(api.url_patterns)
    return found


def test_every_route_and_method_has_a_row() -> None:
    routes = {(name, method) for name, _, methods in api_routes() for method in methods}
    missing = sorted(routes - set(ACCESS))
    stale = sorted(set(ACCESS) - routes)
    assert not missing, f"decide who may call these, in ACCESS: {missing}"
    assert not stale, f"ACCESS rows for routes that no longer exist: {stale}"


@pytest.fixture
def world(alice: Any, bob: Any, staff: Any) -> dict[str, Any]:
    """Objects the URLs point at: an item alice rated, her user id, a model version, a task id."""
    from recommender.models import ModelVersion

    item = ItemFactory()
    rating_upsert(user=alice, item=item, score=4.0)
    version = ModelVersion.objects.create(kind="ranking", algorithm="implicit_als", status="retired")
    return {
        "item_id": item.pk,
        "user_id": alice.pk,
        "version_id": version.pk,
        "pk": version.pk,
        "task_id": "0f9d1c9e-0000-4000-8000-000000000000",
    }


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("token", "post"): {"username": "alice", "password": "correct horse battery staple"},
    ("rating_detail", "put"): {"score": 3.5},
    ("ratings_bulk", "post"): {"ratings": []},  # invalid on purpose: nothing may change here
    ("models_retrain", "post"): {"kind": "no-such-kind"},  # invalid on purpose
    ("model_activate", "post"): {"force": False},
    ("models_rollback", "post"): {"kind": "no-such-kind"},  # invalid on purpose
}


def call(client: APIClient, name: str, kwargs: list[str], method: str, world: dict[str, Any]) -> Any:
    missing = [k for k in kwargs if k not in world]
    assert not missing, f"the matrix has no value for URL parameter(s) {missing} of {name!r}"
    url = reverse(f"api:{name}", kwargs={k: world[k] for k in kwargs})
    return getattr(client, method)(url, BODIES.get((name, method), {}), format="json")


@pytest.mark.django_db
@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r[0])
def test_each_persona_gets_what_the_matrix_says(
    route: tuple[str, list[str], list[str]], world, alice, bob, staff
) -> None:  # type: ignore[no-untyped-def]
    name, kwargs, methods = route
    for method in methods:
        audience = ACCESS[(name, method)]
        anonymous = call(APIClient(), name, kwargs, method, world)
        owner = call(as_user(APIClient(), alice), name, kwargs, method, world)
        other = call(as_user(APIClient(), bob), name, kwargs, method, world)
        admin = call(as_user(APIClient(), staff), name, kwargs, method, world)
        where = f"{method.upper()} {name}"
        for persona, response in (
            ("anonymous", anonymous),
            ("alice", owner),
            ("bob", other),
            ("staff", admin),
        ):
            assert response.status_code < 500, f"{where} as {persona}: {response.status_code}"
        if audience == PUBLIC:
            assert anonymous.status_code not in (401, 403), f"{where} should be public"
        else:
            assert anonymous.status_code == 401, f"{where} as anonymous: {anonymous.status_code}"
        if audience == STAFF:
            for persona, response in (("alice", owner), ("bob", other)):
                assert response.status_code == 403, f"{where} as {persona}: {response.status_code}"
            assert admin.status_code != 403, f"{where} as staff: {admin.status_code}"
        elif audience == USER:
            for persona, response in (("alice", owner), ("bob", other), ("staff", admin)):
                assert response.status_code not in (401, 403), f"{where} as {persona}: {response.status_code}"


@pytest.mark.django_db
def test_another_user_never_sees_or_changes_alices_rating(api, world, alice, bob) -> None:  # type: ignore[no-untyped-def]
    from ratings.models import Rating

    url = reverse("api:rating_detail", kwargs={"item_id": world["item_id"]})
    as_user(api, bob)
    assert api.get(url).status_code == 404  # bob's own rating of that item: none
    assert api.delete(url).status_code == 404
    assert all(
        row["item"]["id"] != world["item_id"] for row in api.get(reverse("api:ratings")).json()["results"]
    )
    assert Rating.objects.get(user=alice, item_id=world["item_id"]).score == 4.0
