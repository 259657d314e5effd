"""The engine must stay importable and usable without Django."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "recommender" / "engine"
ROOT = ENGINE.parents[1]

_IMPORTS_DJANGO = re.compile(r"^\s*(import\s+django\b|from\s+django\b)", re.MULTILINE)


def test_importing_every_engine_module_never_loads_django() -> None:
    modules = sorted(f"recommender.engine.{p.stem}" for p in ENGINE.glob("*.py") if p.stem != "__init__")
    assert "recommender.engine.metrics" in modules  # the glob really found the package
    script = (
        "import importlib, sys\n"
        "import recommender.engine\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print('DJANGO:' + ','.join(loaded))\n"
    )
    # A clean interpreter: pytest-django may already have imported Django here.
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "PYTHONPATH": str(ROOT),
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert "DJANGO:\n" in proc.stdout, proc.stdout


def test_no_engine_source_imports_django() -> None:
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 3
    offenders = [str(p.relative_to(ROOT)) for p in sources if _IMPORTS_DJANGO.search(p.read_text("utf-8"))]
    assert offenders == []


def test_the_grep_pattern_would_catch_django_imports() -> None:
    assert _IMPORTS_DJANGO.search("from django.db import models")
    assert _IMPORTS_DJANGO.search("x = 1\n    import django\n")
    assert not _IMPORTS_DJANGO.search("# django-free\nimport numpy")
