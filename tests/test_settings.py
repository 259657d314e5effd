"""Configuration comes from the environment and a bad value stops start-up loudly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from config.env import crontab_fields
from recommender.checks import default_algorithms_check
from recommender.engine.registry import ALGORITHM_PATHS

ROOT = Path(__file__).resolve().parent.parent


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    # What the test legs set (make test-postgres points the broker elsewhere) must not leak in.
    leg = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DEBUG", "SECRET_KEY"}
    clean = {k: v for k, v in os.environ.items() if k not in leg}
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
        (
            {"DEBUG": "1", "TASTEBASE_RATING_ALGORITHM": "svdpp"},
            "TASTEBASE_RATING_ALGORITHM='svdpp' is not one of: autorec, bayesian_svdpp, bayesian_svdpp_served, bias_baseline, blend,",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_RANKING_ALGORITHM": "ImplicitALS"},
            "TASTEBASE_RANKING_ALGORITHM='ImplicitALS' is not one of:",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_SIMILARITY_ALGORITHM": "knn"},
            "TASTEBASE_SIMILARITY_ALGORITHM='knn' is not one of:",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_RETRAIN_CRON": "30 3 * *"},
            "TASTEBASE_RETRAIN_CRON='30 3 * *' is not a valid cron expression: expected 5 fields",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_RETRAIN_CRON": "0 25 * * *"},
            "TASTEBASE_RETRAIN_CRON='0 25 * * *' is not a valid cron expression: hour '25'",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_SIMILARITY_CRON": "every hour"},
            "TASTEBASE_SIMILARITY_CRON='every hour' is not a valid cron expression",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_SIMILARITY_CRON": "0 0 31 2 *"},
            "TASTEBASE_SIMILARITY_CRON='0 0 31 2 *' is not a valid cron expression",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_API_USER_RATE": "600 per minute"},
            "TASTEBASE_API_USER_RATE='600 per minute' is not a rate",
        ),
        (
            {"DEBUG": "1", "TASTEBASE_API_ANON_RATE": "0/minute"},
            "TASTEBASE_API_ANON_RATE='0/minute' is not a rate",
        ),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str], named: str) -> None:
    result = _start(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_an_unknown_algorithm_error_lists_every_registered_name() -> None:
    result = _start(DEBUG="1", TASTEBASE_RATING_ALGORITHM="svdpp")
    assert ", ".join(sorted(ALGORITHM_PATHS)) in result.stderr


def test_any_registered_algorithm_and_a_valid_cron_start_up() -> None:
    result = _start(
        DEBUG="1",
        TASTEBASE_RATING_ALGORITHM="bias_baseline",
        TASTEBASE_RETRAIN_CRON=" 0  4 * * mon-fri ",
    )
    assert result.returncode == 0, result.stderr


def test_loading_settings_does_not_load_the_model_code() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, config.settings; print(sorted({'numba', 'recommender.engine.als'} & set(sys.modules)))",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---- the test settings ----------------------------------------------------------------------------------


def test_the_suite_runs_on_the_test_settings() -> None:
    assert settings.SETTINGS_MODULE == "config.test_settings"
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert settings.WHITENOISE_USE_FINDERS


def test_the_real_settings_do_not_change_when_pytest_is_loaded() -> None:
    """No more sniffing ``sys.modules``: importing pytest first gives production behaviour."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", "import pytest, config.settings"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    result = _start(SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr


# ---- connections ------------------------------------------------------------------------------------------


def test_database_connections_are_health_checked() -> None:
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_a_postgres_url_gets_health_checks_and_persistent_connections() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config import settings; d = settings.DATABASES['default']; "
            "print(d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": "postgres://u@h:5432/db"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "60", "True"]


# ---- cron expressions -------------------------------------------------------------------------------------


def test_a_cron_expression_splits_into_the_fields_beat_stores() -> None:
    assert crontab_fields("30 3 * * mon-fri") == {
        "minute": "30",
        "hour": "3",
        "day_of_month": "*",
        "month_of_year": "*",
        "day_of_week": "mon-fri",
    }


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute '60'"),
        ("*/0 * * * *", "minute '*/0'"),
        ("0 0 1,,2 * *", "day_of_month '1,,2'"),
        ("0 0 * 13 *", "month_of_year '13'"),
        ("0 0 * * someday", "day_of_week 'someday'"),
        ("0 0 30 2 *", "never occurs"),
    ],
)
def test_a_malformed_cron_expression_says_what_is_wrong(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        crontab_fields(expression)


# ---- the system check ------------------------------------------------------------------------------------


def test_the_default_algorithms_pass_the_system_check() -> None:
    assert default_algorithms_check(None) == []


def test_a_model_set_for_a_kind_it_cannot_serve_fails_the_system_check() -> None:
    with override_settings(
        TASTEBASE_DEFAULT_ALGORITHMS={
            "rating": "implicit_als",
            "ranking": "global_mean",
            "similarity": "item_knn",
        }
    ):
        errors = default_algorithms_check(None)
    assert [e.id for e in errors] == ["recommender.E002", "recommender.E002"]
    rating, ranking = errors
    assert rating.msg == "TASTEBASE_RATING_ALGORITHM='implicit_als' cannot serve rating (it serves ranking)"
    hint = str(rating.hint)
    assert hint.startswith("Set TASTEBASE_RATING_ALGORITHM to one of: ")
    assert "explicit_als" in hint and "implicit_als" not in hint
    assert (
        ranking.msg
        == "TASTEBASE_RANKING_ALGORITHM='global_mean' cannot serve ranking (the site cannot serve it at all)"
    )


def test_the_system_check_is_registered() -> None:
    from django.core.checks import registry

    assert default_algorithms_check in registry.registry.get_checks()


def test_a_large_catalog_model_that_cannot_serve_its_kind_fails_the_system_check() -> None:
    with override_settings(TASTEBASE_LARGE_CATALOG_ALGORITHMS={"rating": "implicit_als"}):
        errors = default_algorithms_check(None)
    assert [e.msg for e in errors] == [
        "TASTEBASE_RATING_ALGORITHM_LARGE='implicit_als' cannot serve rating (it serves ranking)"
    ]
