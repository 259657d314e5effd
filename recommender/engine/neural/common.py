"""What the neural models share: torch on demand, a reproducible training session,
shuffled mini-batches, numpy inference and the fold-in entry points.

Training runs in :func:`training_session`: torch is seeded from the model's
``random_state`` inside ``torch.random.fork_rng`` (the caller's global RNG
state is restored afterwards), on :data:`THREADS` CPU thread(s) and, on CPU,
with ``torch.use_deterministic_algorithms(True)``, so a seed gives identical
weights run after run on the same machine. CUDA runs are seeded too but not
bit-reproducible (cuBLAS reductions).

One thread: every step works on a mini-batch of a few hundred rows, where
OpenMP's fork/join costs more than a second thread gains, and on a busy
two-core machine far more (measured on ML-100K-sized data: an EmbeddingMF epoch took
3.5 s on two threads and 0.3 s on one; an I-AutoRec epoch 1.5 s and 0.23 s).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..base import Recommender
from ..registry import OPTIONAL_EXTRAS, MissingExtraError, missing_extra_message

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "THREADS",
    "FoldInRecommender",
    "TrainingSession",
    "chunks",
    "import_torch",
    "mlp_forward",
    "resolve_device",
    "seed_from",
    "sigmoid",
    "to_numpy",
    "training_session",
]

#: CPU threads of a fit (see the module doc; the site's workers share their machine).
THREADS = 1
#: Rows per block in numpy inference: bounds its temporaries (8192 x 500 float32 = 16 MB for AutoRec).
CHUNK = 8192


def import_torch() -> Any:
    """The ``torch`` module; :class:`MissingExtraError` naming the requirements file if absent."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise MissingExtraError(
            missing_extra_message("the neural models", *OPTIONAL_EXTRAS["neural"])
        ) from None
    return torch


def resolve_device(torch_module: Any, device: str) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; asking for CUDA without one is an error."""
    if device == "auto":
        return torch_module.device("cuda" if torch_module.cuda.is_available() else "cpu")
    resolved = torch_module.device(device)
    if resolved.type == "cuda" and not torch_module.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='cpu' or 'auto'")
    return resolved


def seed_from(random_state: int | None) -> int:
    """``random_state`` itself, or fresh OS entropy for None."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(random_state)


@dataclass
class TrainingSession:
    """The torch module, the device to train on and a seeded CPU generator for shuffling."""

    torch: Any
    device: torch.device
    generator: torch.Generator

    def shuffled_batches(self, n: int, batch_size: int) -> Sequence[torch.Tensor]:
        """A fresh random order of ``range(n)`` split into batches of ``batch_size`` (on the device)."""
        order = self.torch.randperm(n, generator=self.generator)
        return order.to(self.device).split(batch_size)

    def tensor(self, array: ArrayLike, dtype: Any = None) -> torch.Tensor:
        return self.torch.as_tensor(np.asarray(array), dtype=dtype, device=self.device)


@contextmanager
def training_session(random_state: int | None, device: str = "cpu") -> Iterator[TrainingSession]:
    """Seeded, single-threaded, deterministic torch for one fit; global state restored on exit."""
    torch_module = import_torch()
    dev = resolve_device(torch_module, device)
    seed = seed_from(random_state)
    previous_threads = torch_module.get_num_threads()
    deterministic = torch_module.are_deterministic_algorithms_enabled()
    warn_only = torch_module.is_deterministic_algorithms_warn_only_enabled()
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch_module.random.fork_rng(devices=cuda_devices):
        torch_module.manual_seed(seed)
        torch_module.set_num_threads(THREADS)
        if dev.type == "cpu":
            torch_module.use_deterministic_algorithms(True)
        try:
            yield TrainingSession(torch_module, dev, torch_module.Generator().manual_seed(seed))
        finally:
            torch_module.set_num_threads(previous_threads)
            torch_module.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def to_numpy(tensor: torch.Tensor) -> NDArray[np.float32]:
    """A detached float32 numpy copy of a (possibly CUDA) tensor."""
    return np.array(tensor.detach().to("cpu").float().numpy())


# ---- numpy inference --------------------------------------------------------------------------
def sigmoid(x: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    """``1 / (1 + exp(-x))``, written with tanh so large |x| cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def mlp_forward(
    x: NDArray[np.float32], weights: Sequence[NDArray[np.float32]], biases: Sequence[NDArray[np.float32]]
) -> NDArray[np.float32]:
    """``h_{l+1} = relu(W_l h_l + b_l)`` for the hidden layers, then ``W_L h_L + b_L`` (one output).

    Inference only: dropout (inverted, as in torch) is the identity here.
    Returns a vector with one value per row of ``x``.
    """
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        x = np.maximum(x @ w.T + b, 0.0)
    return (x @ weights[-1].T + biases[-1])[:, 0]


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)`` in blocks of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# ---- fold-in entry points ------------------------------------------------------------------
class FoldInRecommender(Recommender):
    """Fold-in for models that cannot be served from factor tables.

    ``fold_in`` / ``fold_in_indices`` return the model's own user
    representation ``(vector, bias)`` (each model documents what it is), and
    ``score_vector(vector, bias)`` scores every item for it (unclipped), so
    ``score_vector(*fold_in(items, ratings))`` ranks items for a new user.
    Subclasses implement ``_fold_in`` and ``_score_user``.
    """

    def fold_in_indices(self, items: NDArray[np.integer[Any]], ratings: ArrayLike) -> Any:
        self._check_fitted()
        idx = np.asarray(items, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if idx.shape != r.shape:
            raise ValueError("item indices and ratings must have the same length")
        if idx.size and (idx.min() < 0 or idx.max() >= self.data_.n_items):
            raise ValueError("item indices out of range")
        return self._fold_in(idx, r)

    def score_vector(self, user_vector: ArrayLike, user_bias: float = 0.0) -> NDArray[np.float64]:
        self._check_fitted()
        return self._score_user(np.asarray(user_vector, dtype=np.float64), float(user_bias))

    def _fold_in(
        self, items: NDArray[np.int64], ratings: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], float]:
        raise NotImplementedError

    def _score_user(self, vector: NDArray[np.float64], bias: float) -> NDArray[np.float64]:
        raise NotImplementedError
