"""PyTorch is optional: the engine never imports it, and asking for a neural model without it names the extra.

Both checks run in a clean interpreter, so nothing this test process imported
(pytest plugins, other tests) can hide or cause a torch import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NEURAL = ("autorec", "deep_mf", "embedding_mf", "residual_mf")
#: These checks need no torch (see conftest.py): they run everywhere.
NEEDS_TORCH = False

#: Hides torch from the import system as if it were not installed: ``import torch``
#: raises ModuleNotFoundError and ``importlib.util.find_spec("torch")`` is None.
HIDE_TORCH = """
import importlib.machinery, sys

class _PathFinderWithoutTorch(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [
    _PathFinderWithoutTorch if f is importlib.machinery.PathFinder else f for f in sys.meta_path
]
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


def test_the_engine_registry_and_a_classic_model_never_import_torch() -> None:
    script = (
        "import json, sys\n"
        "import recommender.engine\n"
        "import recommender.engine.neural\n"
        "from recommender.engine import Interactions\n"
        "from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm, make_model\n"
        "data = Interactions.from_arrays([1, 1, 2, 3], [10, 20, 10, 20], [4.0, 3.0, 5.0, 2.0])\n"
        "make_model('bias_baseline').fit(data).predict([1, 2], [20, 20])\n"
        # Every class, the neural ones included, imports for its serving kind (training does this).
        "kinds = {name: get_algorithm(name).serving_kind for name in sorted(ALGORITHM_PATHS)}\n"
        "print('KINDS ' + json.dumps(kinds))\n"
        "print('TORCH ' + ','.join(sorted(m for m in sys.modules if m.partition('.')[0] == 'torch')))\n"
    )
    out = run_python(script).stdout.splitlines()
    assert "TORCH " in out, out
    kinds = json.loads(next(line for line in out if line.startswith("KINDS "))[len("KINDS ") :])
    assert set(NEURAL) <= set(kinds)
    assert kinds["embedding_mf"] == "rating"
    assert kinds["deep_mf"] is kinds["residual_mf"] is kinds["autorec"] is None


def test_without_torch_a_neural_model_asks_for_requirements_neural_txt() -> None:
    script = HIDE_TORCH + (
        "import importlib.util, json\n"
        "assert importlib.util.find_spec('torch') is None\n"
        "from recommender.engine import Interactions\n"
        "from recommender.engine.registry import MissingExtraError, make_model\n"
        "from recommender.engine.neural import EmbeddingMF\n"
        "data = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])\n"
        "errors = {}\n"
        f"for name in {NEURAL!r}:\n"
        "    try:\n"
        "        make_model(name)\n"
        "    except MissingExtraError as exc:\n"
        "        errors[name] = [str(exc), isinstance(exc, ValueError), isinstance(exc, ImportError)]\n"
        "try:\n"
        "    EmbeddingMF(epochs=1).fit(data)\n"
        "except MissingExtraError as exc:\n"
        "    errors['EmbeddingMF.fit'] = [str(exc), True, True]\n"
        "make_model('bias_baseline').fit(data)  # the rest of the engine is unaffected\n"
        "print(json.dumps(errors))\n"
    )
    errors = json.loads(run_python(script).stdout.splitlines()[-1])
    assert set(errors) == {*NEURAL, "EmbeddingMF.fit"}
    for message, is_value_error, is_import_error in errors.values():
        assert "requirements-neural.txt" in message and "torch" in message
        assert is_value_error and is_import_error
    assert "algorithm 'autorec' needs" in errors["autorec"][0]
