"""Configuration comes from the environment and a bad value stops start-up loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    clean.update(env)
    clean.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
            "settings.CELERY_TASK_ALWAYS_EAGER)",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
    )


def test_the_embedded_default_is_sqlite_locmem_and_eager_celery() -> None:
    result = _start(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
    ]


def test_redis_url_switches_cache_and_celery_to_redis() -> None:
    result = _start(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/3", DATABASE_URL="postgres://u@h:5432/db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.postgresql",
        "django_redis.cache.RedisCache",
        "False",
    ]


def test_debug_is_off_unless_asked_for() -> None:
    result = _start(SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "SECRET_KEY is not set"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql2://x"}, "DATABASE_URL='mysql2://x' is not a valid URL"),
        ({"DEBUG": "1", "REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is not a valid URL"),
        ({"DEBUG": "1", "CONN_MAX_AGE": "soon"}, "CONN_MAX_AGE='soon' is not an integer"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str], named: str) -> None:
    result = _start(**env)
    assert result.returncode != 0
    assert named in result.stderr
