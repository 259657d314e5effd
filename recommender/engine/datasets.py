"""MovieLens 100K from the ``recbole==1.2.1`` wheel on PyPI.

The wheel ships RecBole's atomic files for ML-100K under
``recbole/dataset_example/ml-100k/``. Fetching it needs only PyPI (which every
Tastebase machine reaches through pip); the files are cached in
``$TASTEBASE_DATA_DIR`` (default ``~/.cache/tastebase``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

RECBOLE_VERSION = "1.2.1"
ML100K_MEMBERS = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")


def data_dir() -> Path:
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


def load_ml100k_arrays(
    cache_dir: Path | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """(user_ids, item_ids, ratings, timestamps) of ML-100K in file order."""
    path = fetch_ml100k(cache_dir) / "ml-100k.inter"
    table = np.loadtxt(path, delimiter="\t", skiprows=1, dtype=np.float64)
    return (
        table[:, 0].astype(np.int64),
        table[:, 1].astype(np.int64),
        table[:, 2].astype(np.float32),
        table[:, 3].astype(np.int64),
    )
