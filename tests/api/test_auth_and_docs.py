"""Tokens, the error shape on unknown paths, the schema and its local docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.api.conftest import assert_error
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_a_token_signs_in_and_revoking_it_signs_every_client_out(api, alice) -> None:  # type: ignore[no-untyped-def]
    response = api.post(reverse("api:token"), {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=alice).key == key
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(reverse("api:me")).json()["username"] == "alice"
    assert api.post(reverse("api:token_revoke")).status_code == 204
    assert_error(api.get(reverse("api:me")), 401, "authentication_failed")  # the old key is gone


def test_wrong_credentials_are_refused_in_the_error_shape(api, alice) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(
        api.post(reverse("api:token"), {"username": "alice", "password": "nope"}, format="json"),
        401,
        "authentication_failed",
    )
    assert "Wrong username or password" in error["message"]
    error = assert_error(api.post(reverse("api:token"), {"username": "alice"}, format="json"), 400, "invalid")
    assert "password" in error["fields"]


def test_unknown_paths_and_methods_answer_the_error_shape(api) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(api.get("/api/v1/no/such/thing/"), 404, "not_found")
    assert "/api/v1/no/such/thing/" in error["message"]
    assert_error(api.delete(reverse("api:genres")), 405, "method_not_allowed")


def test_the_schema_documents_every_error_and_the_docs_are_served_locally(api) -> None:  # type: ignore[no-untyped-def]
    schema = api.get(reverse("api:schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["openapi"].startswith("3.")
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert {"400", "401", "404", "429"} <= set(operation["responses"]), f"{method} {path}"
    for name in ("docs", "redoc"):
        page = api.get(reverse(f"api:{name}"))
        assert page.status_code == 200
        html = page.content.decode()
        assert "drf_spectacular_sidecar" in html  # our own static files
        assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=ROOT,
        env={**_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def _env() -> dict[str, Any]:
    import os

    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST"}
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1")
    return env
