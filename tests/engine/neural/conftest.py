"""The neural models need PyTorch, an optional extra: without it their tests skip, saying why.

CI installs the extra (``pip install -r requirements-neural.txt`` in ``.ci/run``),
so everything here runs there. A test module that checks the engine *without*
torch (and so runs anywhere) sets ``NEEDS_TORCH = False``.
"""

from __future__ import annotations

import pytest

TORCH_MISSING = (
    "PyTorch is not installed: the neural models are an optional extra "
    "(pip install -r requirements-neural.txt); CI installs it"
)


@pytest.fixture(autouse=True)
def _skip_without_torch(request: pytest.FixtureRequest) -> None:
    if getattr(request.module, "NEEDS_TORCH", True):
        pytest.importorskip("torch", reason=TORCH_MISSING)
