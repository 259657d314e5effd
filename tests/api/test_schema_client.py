"""A client that knows nothing but the published OpenAPI schema.

It finds every operation by method and path template in ``/api/v1/schema/``,
fills path parameters by the names the schema gives, signs in with a token,
rates ten items, sees its recommendations change, hides one and sees it gone.
If a route, a parameter name or a response field drifts from the schema,
this fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import PASSWORD
from tests.recommender.conftest import plant_ratings
from tests.recommender.test_pipeline import train

pytestmark = pytest.mark.django_db(transaction=True)


class SchemaClient:
    def __init__(self, http: APIClient) -> None:
        self.http = http
        self.schema = http.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    def operation(self, method: str, template: str) -> dict[str, Any]:
        path = self.schema["paths"].get(template)
        assert path is not None and method in path, f"{method.upper()} {template} is not in the schema"
        return path[method]  # type: ignore[no-any-return]

    def call(
        self,
        method: str,
        template: str,
        *,
        path: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
        expect: int = 200,
    ) -> Any:
        operation = self.operation(method, template)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert set(path or {}) == declared == set(re.findall(r"{(\w+)}", template)), template
        for name in query or {}:
            assert any(p["name"] == name and p["in"] == "query" for p in operation.get("parameters", [])), (
                f"query parameter {name!r} of {template} is not in the schema"
            )
        assert str(expect) in operation["responses"], f"{expect} is not documented for {template}"
        url = template.format(**(path or {}))
        response = (
            getattr(self.http, method)(url, body, format="json")
            if body is not None
            else getattr(self.http, method)(url, query or {})
        )
        assert response.status_code == expect, (method, url, response.status_code, response.content[:500])
        return response.json() if response.content else None


def test_a_schema_only_client_signs_in_rates_gets_new_recommendations_and_hides_one(alice) -> None:  # type: ignore[no-untyped-def]
    plant_ratings()
    train("rating")
    train("ranking")
    client = SchemaClient(APIClient())
    token = client.call("post", "/api/v1/auth/token/", body={"username": "alice", "password": PASSWORD})[
        "token"
    ]
    client.http.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    before = client.call("get", "/api/v1/me/recommendations/", query={"n": 10})
    assert before["results"]  # popularity for a user without ratings

    items = client.call("get", "/api/v1/items/", query={"ordering": "-popularity", "page_size": 24})[
        "results"
    ]
    romance = [item for item in items if "Romance" in item["genres"]][:10]
    assert len(romance) == 10
    for item in romance:
        client.call(
            "put", "/api/v1/ratings/{item_id}/", path={"item_id": item["id"]}, body={"score": 5.0}, expect=201
        )

    after = client.call("get", "/api/v1/me/recommendations/", query={"n": 10})
    assert [r["item"]["id"] for r in after["results"]] != [r["item"]["id"] for r in before["results"]]
    assert not {r["item"]["id"] for r in after["results"]} & {i["id"] for i in romance}  # rated ones excluded
    assert after["model_versions"]["ranking"] is not None

    top = after["results"][0]["item"]["id"]
    client.call("put", "/api/v1/me/hidden/{item_id}/", path={"item_id": top}, expect=201)
    hidden = client.call("get", "/api/v1/me/recommendations/", query={"n": 10})
    assert top not in [r["item"]["id"] for r in hidden["results"]]
    listed = client.call("get", "/api/v1/me/hidden/")
    assert top in [row["item"]["id"] for row in listed["results"]]
