"""Check docker-compose.yml and the Dockerfile against the code they name, without Docker."""

from __future__ import annotations

import importlib
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import yaml
from django.conf import settings

from config.env import envchoice

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


@dataclass
class ImageSetup:
    """What the Dockerfile's build steps do to the file system, as far as these tests need."""

    user: str = "root"
    workdir: str = "/"
    created: set[str] = field(default_factory=set)  # by mkdir, before USER switches
    owned_by: dict[str, str] = field(default_factory=dict)  # path -> owner, by chown before USER


def _dockerfile(name: str = "Dockerfile") -> ImageSetup:
    """Follow WORKDIR, RUN mkdir/chown and USER in order (``\\`` continuations joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    setup = ImageSetup()
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "WORKDIR":
            setup.workdir = posixpath.join(setup.workdir, rest.strip())
        elif instruction == "USER":
            setup.user = rest.strip().split(":")[0]
        elif instruction == "RUN" and setup.user == "root":
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if not words:
                    continue
                args = [w for w in words[1:] if not w.startswith("-")]
                paths = [posixpath.join(setup.workdir, a) for a in args]
                if words[0] == "mkdir":
                    setup.created.update(paths)
                elif words[0] == "chown" and args:
                    owner = args[0].split(":")[0]
                    setup.owned_by.update(dict.fromkeys(paths[1:], owner))
                    if "-R" in words:  # and what was created below them so far
                        below = [c for c in setup.created for p in paths[1:] if c.startswith(p + "/")]
                        setup.owned_by.update(dict.fromkeys(below, owner))
    return setup


def _our_services() -> dict[str, dict[str, object]]:
    """The services that run the image the Dockerfile builds."""
    return {
        name: s
        for name, s in SERVICES.items()
        if s.get("build") == "." or s.get("image") == "tastebase:latest"
    }


def _named_volume_mounts(service: dict[str, object]) -> dict[str, str]:
    """volume name -> mount path, for the named (not bind-mounted) volumes of a service."""
    mounts = {}
    for entry in service.get("volumes", []):  # type: ignore[attr-defined]
        source, target = str(entry).split(":")[:2]
        if source in COMPOSE.get("volumes", {}):
            mounts[source] = target
    return mounts


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


def test_the_image_runs_as_an_unprivileged_user() -> None:
    setup = _dockerfile()
    assert setup.user not in {"root", "0"}
    assert setup.owned_by.get(setup.workdir) == setup.user  # the app's own folder is the user's


def test_every_named_volume_mount_point_exists_in_the_image_owned_by_its_user() -> None:
    # A named volume starts as a copy of the image's directory, owner included. A mount point
    # the image lacks is created by Docker as root, and the unprivileged user cannot write it.
    setup = _dockerfile()
    mounts = {path for s in _our_services().values() for path in _named_volume_mounts(s).values()}
    assert mounts, "no named volume to check"
    for path in mounts:
        assert path in setup.created, f"the Dockerfile does not create {path} (mkdir -p {path})"
        assert setup.owned_by.get(path) == setup.user, f"{path} is not chowned to {setup.user} before USER"


def test_collectstatic_writes_into_the_static_volume_web_serves() -> None:
    setup = _dockerfile()
    static_root = posixpath.join(setup.workdir, Path(settings.STATIC_ROOT).relative_to(ROOT).as_posix())
    assert "collectstatic" in " ".join(SERVICES["migrate"]["command"])
    migrate = _named_volume_mounts(SERVICES["migrate"])
    web = _named_volume_mounts(SERVICES["web"])
    volume = next((name for name, path in migrate.items() if path == static_root), None)
    assert volume is not None, f"migrate mounts no named volume at STATIC_ROOT ({static_root})"
    assert web.get(volume) == static_root
    # The build context leaves out a local collectstatic, so the image's folder starts empty.
    assert "staticfiles" in (ROOT / ".dockerignore").read_text().split()


# ---- the `spark` profile ---------------------------------------------------------------

SPARK_SERVICES = ("spark-master", "spark-worker", "worker-spark")


def _pinned(requirements: str, package: str) -> str:
    for line in (ROOT / requirements).read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in {requirements}")


def test_the_spark_services_only_start_with_the_spark_profile() -> None:
    for name in SPARK_SERVICES:
        assert SERVICES[name].get("profiles") == ["spark"], name
    for name in ("postgres", "redis", "migrate", "web", "worker", "beat"):
        assert "profiles" not in SERVICES[name], name


def test_the_spark_cluster_runs_the_version_pyspark_is_pinned_to() -> None:
    version = _pinned("requirements-spark.txt", "pyspark")
    for name in ("spark-master", "spark-worker"):
        image, _, tag = SERVICES[name]["image"].partition(":")
        assert image == "apache/spark" and tag.startswith(f"{version}-") and "java17" in tag, tag
    master = SERVICES["spark-master"]["command"]
    assert master[1] == "org.apache.spark.deploy.master.Master"
    assert (
        master[master.index("--host") + 1] == "spark-master" and master[master.index("--port") + 1] == "7077"
    )
    worker = SERVICES["spark-worker"]["command"]
    assert worker[1] == "org.apache.spark.deploy.worker.Worker" and worker[2] == "spark://spark-master:7077"


def test_the_spark_worker_trains_on_the_cluster_through_a_shared_volume() -> None:
    service = SERVICES["worker-spark"]
    env = service["environment"]
    assert env["TASTEBASE_TRAINING_BACKEND"] == "spark"
    assert env["SPARK_MASTER"] == SERVICES["spark-worker"]["command"][2]
    # The settings' own parser accepts what compose sets.
    with mock.patch.dict(os.environ, {"TASTEBASE_TRAINING_BACKEND": env["TASTEBASE_TRAINING_BACKEND"]}):
        assert envchoice("TASTEBASE_TRAINING_BACKEND", "local", choices=("local", "spark")) == "spark"
    # The same Celery app and database as the default worker.
    assert service["command"][:3] == SERVICES["worker"]["command"][:3]
    assert service["env_file"] == ".env"
    # The export directory is one named volume, at the same path for the driver and the executors.
    shared = env["TASTEBASE_SPARK_SHARED_DIR"]
    assert _named_volume_mounts(service) == {"spark-shared": shared}
    assert _named_volume_mounts(SERVICES["spark-worker"]) == {"spark-shared": shared}
    # Executors run as the app's uid and can read its exports; the volume starts as the image's folder.
    assert SERVICES["spark-worker"]["user"].split(":")[0] == "1000"
    assert SERVICES["spark-worker"]["depends_on"]["worker-spark"]["condition"] == "service_started"
    # The executors reach the driver by the hostname it advertises.
    assert f"spark.driver.host={service['hostname']}" in env["PYSPARK_SUBMIT_ARGS"]


def test_the_spark_workers_image_has_java_pyspark_and_the_shared_folder() -> None:
    assert SERVICES["worker-spark"]["build"] == {"context": ".", "dockerfile": "Dockerfile.spark"}
    text = (ROOT / "Dockerfile.spark").read_text()
    assert "openjdk-17-jre-headless" in text
    assert "-r requirements-spark.txt" in text and "-r requirements.txt" in text
    setup = _dockerfile("Dockerfile.spark")
    assert setup.user == _dockerfile().user == "tastebase"
    assert "useradd --create-home --uid 1000 tastebase" in text  # the uid spark-worker runs as
    shared = SERVICES["worker-spark"]["environment"]["TASTEBASE_SPARK_SHARED_DIR"]
    assert shared in setup.created and setup.owned_by.get(shared) == "tastebase"
