"""MovieLens 100K for the demo, the benchmarks and the slow tests: RecBole's files from PyPI.

The ``recbole==1.2.1`` wheel ships RecBole's atomic files for ML-100K under
``recbole/dataset_example/ml-100k/``. Fetching it needs only PyPI (which every
Tastebase machine reaches through pip); the files are cached in
``$TASTEBASE_DATA_DIR`` (default ``~/.cache/tastebase``). This is the project's
only download; the engine reads the files from the folder
(``recommender.engine.datasets.load_ml100k_arrays``) and ``manage.py
load_demo_data`` imports them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recommender.engine.datasets import load_ml100k_arrays

RECBOLE_VERSION = "1.2.1"
ML100K_MEMBERS = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")


def data_dir() -> Path:
    """Where downloaded and generated datasets are cached: ``$TASTEBASE_DATA_DIR`` or ``~/.cache/tastebase``."""
    return Path(os.environ.get("TASTEBASE_DATA_DIR", Path.home() / ".cache" / "tastebase"))


def fetch_ml100k(cache_dir: Path | None = None) -> Path:
    """Folder holding ``ml-100k.{inter,item,user}``; downloads the wheel once."""
    root = cache_dir or data_dir()
    target = root / "ml-100k"
    if all((target / name).is_file() for name in ML100K_MEMBERS):
        return target
    wheel_dir = root / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheel_dir.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if not wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--disable-pip-version-check",
                f"recbole=={RECBOLE_VERSION}",
                "-d",
                str(wheel_dir),
            ],
            check=True,
        )
        wheels = sorted(wheel_dir.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download produced no recbole wheel in {wheel_dir}")
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in ML100K_MEMBERS:
            data = wheel.read(f"recbole/dataset_example/ml-100k/{name}")
            tmp = target / (name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target / name)  # atomic: a half-written file is never seen
    return target


def ml100k_arrays(
    cache_dir: Path | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """(user_ids, item_ids, ratings, timestamps) of ML-100K in file order, fetched if needed."""
    return load_ml100k_arrays(fetch_ml100k(cache_dir))
