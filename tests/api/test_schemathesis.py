"""schemathesis against our own OpenAPI schema: every operation, generated inputs,
as an anonymous visitor, a signed-in user and staff. No 5xx, and every response
(errors included) conforms to the schema. Runs on both legs (SQLite; Postgres + Redis).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from ratings.services import rating_upsert
from tests.factories import ItemFactory, UserFactory

#: What the issue asks of every response: no 5xx; status, content type, headers and
#: body as the schema documents them. (schemathesis's stricter "positive data
#: acceptance" would also demand that every schema-valid string be accepted, e.g. a
#: username with a NUL byte; our validation rightly refuses some of those with a 400.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]

#: Generated cases per operation and persona: enough to reach every error branch
#: of our small parameter spaces, small enough for CI (about a minute per leg).
EXAMPLES = 15


@pytest.fixture
def api_schema(db: Any) -> Iterator[Any]:
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application

    # schemathesis calls the real WSGI handler, whose request signals would close
    # the test's connection (and its transaction) after the first request, as
    # Django's own test client knows to prevent.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    # Something to find: items with ratings, so ids in 1.. often exist.
    items = [ItemFactory() for _ in range(5)]
    for user_number in range(3):
        user = UserFactory(username=f"fuzz{user_number}")
        for item in items[: 3 + user_number]:
            rating_upsert(user=user, item=item, score=4.0)
    yield schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _token_headers(username: str, *, staff: bool) -> dict[str, str]:
    from rest_framework.authtoken.models import Token

    user = UserFactory(username=username, is_staff=staff)
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


def fuzz_every_operation(api_schema: Any, headers: dict[str, str]) -> None:
    """Each operation gets its own Hypothesis run; failures are collected, then reported together."""
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 20, f"only {operations} operations in the schema"
    assert not failures, "\n\n".join(failures)


def test_every_operation_conforms_as_an_anonymous_visitor(api_schema: Any) -> None:
    fuzz_every_operation(api_schema, {})


def test_every_operation_conforms_as_a_signed_in_user(api_schema: Any) -> None:
    fuzz_every_operation(api_schema, _token_headers("fuzz-user", staff=False))


def test_every_operation_conforms_as_staff(api_schema: Any) -> None:
    fuzz_every_operation(api_schema, _token_headers("fuzz-staff", staff=True))
