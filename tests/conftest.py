"""Shared fixtures. Personas as in healthchecks' tests: alice and bob rate things,
charlie is an outsider, and staff is the site's operator."""

from __future__ import annotations

from typing import Any

import pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db: Any) -> Any:
    from tests.factories import UserFactory

    return UserFactory(username="alice", password=PASSWORD)


@pytest.fixture
def bob(db: Any) -> Any:
    from tests.factories import UserFactory

    return UserFactory(username="bob", password=PASSWORD)


@pytest.fixture
def charlie(db: Any) -> Any:
    from tests.factories import UserFactory

    return UserFactory(username="charlie", password=PASSWORD)


@pytest.fixture
def staff(db: Any) -> Any:
    from tests.factories import UserFactory

    return UserFactory(username="staff", password=PASSWORD, is_staff=True, is_superuser=True)
