"""Neural rating models (PyTorch, an optional extra: ``pip install -r requirements-neural.txt``).

* :class:`EmbeddingMF` — biased MF as embeddings, mini-batch SGD with momentum
  (the Keras model of the course material); servable like the other MF models.
* :class:`DeepMF` — concatenated user/item embeddings through an MLP with dropout.
* :class:`ResidualMF` — a fitted :class:`EmbeddingMF` plus an MLP fitted to its residuals.
* :class:`AutoRec` — I-AutoRec / U-AutoRec (Sedhain et al., WWW 2015).

Importing this package (or a model module) never imports torch: only ``fit``
(and the gradient-based fold-ins) do, through :func:`.common.import_torch`,
which names the requirements file when torch is missing. Fitted models keep
their weights as numpy arrays, so predicting, recommending and pickling need
neither torch nor the device that trained them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule that defines it.
_EXPORTS: dict[str, str] = {
    "AutoRec": "autorec",
    "DeepMF": "deep_mf",
    "EmbeddingMF": "embedding_mf",
    "ResidualMF": "residual_mf",
}

__all__ = ["AutoRec", "DeepMF", "EmbeddingMF", "ResidualMF"]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from .autorec import AutoRec
    from .deep_mf import DeepMF
    from .embedding_mf import EmbeddingMF
    from .residual_mf import ResidualMF
