"""What the benchmarks share: their data, timing, child processes, databases and docs/benchmarks.md.

Every script runs from the repository root as ``python -m bench.NAME``. A script
that publishes results calls :func:`write_section`, which replaces only the block
between that script's own markers in ``docs/benchmarks.md`` and records the
command that produced it; prose outside the markers is the authors' and stays.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ratings.demo_data import fetch_ml100k, ml100k_arrays
from recommender.engine.interactions import Interactions

from . import synthetic

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
#: Printed by a child process before the JSON of its result (see :func:`run_child`).
RESULT_PREFIX = "RESULT "

__all__ = [
    "DOCS",
    "ROOT",
    "Timing",
    "command_line",
    "cpu_seconds",
    "load_average",
    "machine",
    "manage",
    "manage_env",
    "ml100k_arrays",
    "ml100k_folder",
    "peak_rss_mb",
    "percentiles_ms",
    "postgres_database",
    "postgres_execute",
    "print_result",
    "run_child",
    "synthetic_interactions",
    "timed",
    "write_section",
]


# ---- data ----------------------------------------------------------------------------


def ml100k_folder() -> Path:
    """The folder of RecBole's ML-100K files, downloaded once (``ratings.demo_data``)."""
    return fetch_ml100k()


def synthetic_interactions(scale: float, seed: int = 0) -> Interactions:
    """``bench/synthetic.py``'s ML-20M-shaped set (cached on disk) over its full user and item range."""
    arrays = synthetic.load(scale, seed)
    n_users, n_items = (int(x) for x in arrays["shape"])
    return Interactions.from_indices(
        arrays["users"],
        arrays["items"],
        arrays["ratings"],
        None,
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
    )


# ---- timing and the machine --------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class Timing:
    """Wall and CPU seconds of a ``with timed() as t:`` block, filled in when it ends."""

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Time the block: wall clock (``perf_counter``) and CPU (this process, all threads)."""
    timing = Timing()
    cpu = cpu_seconds()
    wall = time.perf_counter()  # last, so getrusage's own cost is not in the wall time
    try:
        yield timing
    finally:
        timing.wall, timing.cpu = time.perf_counter() - wall, cpu_seconds() - cpu


def load_average() -> float:
    """The 1-minute load average: other jobs on the CPUs make wall times meaningless."""
    return os.getloadavg()[0]


def machine() -> str:
    """``"2 CPUs, Python 3.11.7, numpy 2.4.6"`` for the line above each published table."""
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"


# ---- child processes ------------------------------------------------------------------


def print_result(result: dict[str, Any]) -> None:
    """What a child process prints last for :func:`run_child`."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(
    command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run ``command`` from the repository root and return the JSON of its last ``RESULT`` line.

    A child process measures its own peak memory. Raises ``RuntimeError`` (with
    the tail of its output) if it fails or prints no result, and
    ``subprocess.TimeoutExpired`` past ``timeout`` seconds.
    """
    proc = subprocess.run(list(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip()[-3000:] or "no output"
        raise RuntimeError(f"{shlex.join(command)} failed (exit {proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


def manage_env(database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment pointed at ``database_url``, quiet, without a broker (eager Celery)."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "bench-only-not-secret",
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def manage(args: Sequence[str], env: dict[str, str], timeout: float | None = None) -> tuple[float, list[str]]:
    """Run ``manage.py args`` in a subprocess; (wall seconds, stdout lines). Raises on failure."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout.strip().splitlines()


# ---- PostgreSQL ----------------------------------------------------------------------------


def postgres_execute(url: str, sql: str) -> None:
    """One statement, autocommit (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """A fresh database ``name`` on ``admin_url``'s server, dropped afterwards; yields its URL.

    ``admin_url`` must be allowed to CREATE and DROP DATABASE.
    """
    postgres_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    postgres_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", admin_url)
    finally:
        postgres_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- docs/benchmarks.md --------------------------------------------------------------


def command_line(module: str, argv: Sequence[str] | None = None) -> str:
    """``python -m bench.NAME ARGS`` as this run was started (``argv`` defaults to ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", module, *(shlex.quote(a) for a in args)])


def _block_pattern(name: str) -> re.Pattern[str]:
    """``name``'s generated block: from its begin marker through its end marker."""
    return re.compile(rf"<!-- begin {re.escape(name)}\b[^>]*-->.*?<!-- end {re.escape(name)} -->", re.S)


def write_section(name: str, heading: str, body: str, *, command: str, path: Path = DOCS) -> None:
    """Put ``body`` under ``heading`` in ``path`` between ``name``'s markers, after a line naming ``command``.

    Only the block between the markers is replaced: the heading and any prose
    after the end marker stay. A section without markers yet (written before
    markers existed) is replaced from its heading to the next ``## `` heading;
    a missing section is appended.
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- begin {name}: generated; rerun the command below instead of editing -->\n"
        f"`{command}` — {now}, {machine()}.\n\n{body.strip()}\n"
        f"<!-- end {name} -->"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    marked = _block_pattern(name)
    if marked.search(text):
        text = marked.sub(lambda _: block, text, count=1)
    else:
        legacy = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
        section = f"{heading}\n\n{block}\n\n"
        if legacy.search(text):
            text = legacy.sub(lambda _: section, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of latencies given in seconds, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": float(np.median(ms)), "p99": float(np.quantile(ms, 0.99)), "max": float(ms.max())}
