"""pyspark is optional: the engine never imports it, serving a Spark-trained
version needs none of it, and fitting without it names the extra.

Both run in a clean interpreter, so nothing this test process imported can
hide or cause a pyspark import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: These checks need no pyspark (see conftest.py): they run everywhere.
NEEDS_SPARK = False

#: Hides pyspark from the import system as if it were not installed.
HIDE_PYSPARK = """
import importlib.machinery, sys

class _PathFinderWithoutPyspark(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in ("pyspark", "py4j"):
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [
    _PathFinderWithoutPyspark if f is importlib.machinery.PathFinder else f for f in sys.meta_path
]
"""

#: Builds both Spark models, exports hand-made tables and folds a user in: all numpy.
SERVE_WITHOUT_SPARK = """
import sys
import numpy as np
from recommender.engine.registry import get_algorithm, make_model
from recommender.engine.tables import FactorTables
assert get_algorithm("spark_als").serving_kind == "rating"
assert get_algorithm("spark_implicit_als").serving_kind == "ranking"
tables = FactorTables(
    item_ids=np.arange(4), item_vectors=np.eye(4, 2, dtype=np.float32),
    item_bias=np.zeros(4, np.float32), global_mean=3.5, rating_scale=(1.0, 5.0),
)
for name in ("spark_als", "spark_implicit_als"):
    vector, bias = make_model(name, {"factors": "2"}).fold_in_from_tables(tables, np.array([0, 1]), [5.0, 4.0])
    assert vector.shape == (2,) and np.isfinite(vector).all()
"""


def run_python(script: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "PYTHONPATH": str(ROOT),
        },
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_engine_serves_a_spark_model_without_importing_pyspark() -> None:
    script = (
        "import recommender.engine.spark_als\n"
        + SERVE_WITHOUT_SPARK
        + "print('PYSPARK ' + ','.join(sorted(m for m in sys.modules if m.partition('.')[0] == 'pyspark')))\n"
    )
    out = run_python(script).stdout.splitlines()
    assert "PYSPARK " in out, out


def test_without_pyspark_fitting_asks_for_requirements_spark_txt_and_serving_still_works() -> None:
    script = (
        HIDE_PYSPARK
        + SERVE_WITHOUT_SPARK
        + """
import importlib.util
assert importlib.util.find_spec("pyspark") is None
from recommender.engine import Interactions
from recommender.engine.registry import MissingExtraError
data = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])
for name in ("spark_als", "spark_implicit_als"):
    try:
        make_model(name).fit(data)
    except MissingExtraError as exc:
        assert "requirements-spark.txt" in str(exc) and "pyspark" in str(exc), exc
    else:
        raise AssertionError(name + " fitted without pyspark")
print("OK")
"""
    )
    assert run_python(script).stdout.splitlines()[-1] == "OK"
