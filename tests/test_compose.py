"""Docker cannot run here, so check docker-compose.yml against the code it names."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _env_file() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {k: v for k, v in pairs}


def test_the_full_stack_is_there() -> None:
    assert {"postgres", "redis", "web", "worker", "beat", "migrate"} <= set(SERVICES)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in SERVICES[name], name


def test_web_runs_gunicorn_on_the_real_wsgi_application() -> None:
    command = SERVICES["web"]["command"]
    assert command[0] == "gunicorn"
    module, attribute = command[1].split(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_worker_and_beat_use_the_real_celery_app_and_database_scheduler() -> None:
    for name in ("worker", "beat"):
        command = SERVICES[name]["command"]
        assert command[0] == "celery"
        app_module = command[command.index("--app") + 1]
        from celery import Celery

        assert isinstance(importlib.import_module(app_module).celery_app, Celery)
        assert command[command.index("--app") + 2] == name
    beat = SERVICES["beat"]["command"]
    module, cls = beat[beat.index("--scheduler") + 1].split(":")
    assert getattr(importlib.import_module(module), cls).__name__ == "DatabaseScheduler"


def test_migrate_runs_real_management_commands() -> None:
    from django.core.management import get_commands

    script = " ".join(SERVICES["migrate"]["command"])
    for command in ("migrate", "collectstatic"):
        assert f"manage.py {command}" in script
        assert command in get_commands()
    for name in ("web", "worker", "beat"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_settings_come_from_env_example_and_cover_what_settings_read() -> None:
    env = _env_file()
    for name in ("web", "worker", "beat", "migrate"):
        assert SERVICES[name]["env_file"] == ".env"
    for variable in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "ALLOWED_HOSTS",
        "DEBUG",
    ):
        assert variable in env
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
    assert "redis:6379" in env["REDIS_URL"]
    assert env["DEBUG"] == "0"
