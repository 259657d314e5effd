"""With the Celery broker down, ``retrain --async`` fails at once with a message
naming the broker, instead of hanging in connection retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_retrain_async_with_the_broker_down_fails_fast_naming_the_broker(tmp_path: Path) -> None:
    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "PYTEST_CURRENT_TEST"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        # Broker, result backend and cache all on the dead server, as in a real outage.
        REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0",
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", "retrain", "--async", "--algorithm", "implicit_als"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert (
        f"CommandError: could not queue implicit_als (ranking): the Celery broker at "
        f"redis://:**@127.0.0.1:{port}/0 is unreachable"
    ) in result.stderr
    assert "Connection refused" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30, f"took {elapsed:.1f}s"
