"""Biased MF as user/item embeddings, trained by mini-batch SGD with momentum (PyTorch).

The Keras model of the course material (user and item embeddings, bias
embeddings, a dot product, ``loss="mse"``, ``SGD(momentum=0.9)``) is exactly the
biased MF of Koren, Bell & Volinsky, "Matrix factorization techniques for
recommender systems", IEEE Computer 2009::

    r̂_ui = mu + b_u + c_i + w_u . v_i

Each mini-batch B takes a step on the batch mean of the per-rating objective of
:mod:`recommender.engine.gradient_mf` (the L2 penalty on the embedding rows each
rating looks up, so the expected batch loss is J / N)::

    L_B = (1/|B|) sum_{(u,i) in B} (r_ui - r̂_ui)^2 + lambda (|w_u|^2 + |v_i|^2 + b_u^2 + c_i^2)

with torch's momentum SGD (``g`` the gradient of ``L_B``)::

    m = momentum * m + g,   theta = theta - learning_rate * m

Because the objective is :class:`~recommender.engine.gradient_mf.SGDMF`'s, the
model shares its serving code: like SGDMF the fit ends with the exact ridge
solve of every user's ``(w_u, b_u)`` with the items fixed, so the model
exports :class:`~recommender.engine.tables.FactorTables` and a user folded in
from the stored tables gets exactly their trained vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..gradient_mf import _BiasedMF
from ..interactions import Interactions
from .common import TrainingSession, to_numpy, training_session

__all__ = ["EmbeddingMF", "train_embedding_mf"]

Float = NDArray[np.float64]


def train_embedding_mf(
    session: TrainingSession,
    rows: NDArray[np.integer[Any]],
    cols: NDArray[np.integer[Any]],
    ratings: NDArray[np.floating[Any]],
    init: tuple[Float, Float, Float, Float],
    global_mean: float,
    *,
    learning_rate: float,
    momentum: float,
    regularization: float,
    batch_size: int,
    epochs: int,
) -> tuple[tuple[Float, Float, Float, Float], list[float]]:
    """Minimize ``J / N`` (module doc) by momentum SGD over shuffled mini-batches.

    ``init`` is ``(W, V, b, c)``. Returns the learned ``(W, V, b, c)`` as float64
    arrays and the training loss per rating of every epoch (the mean of the
    per-rating terms over the epoch's batches, as Keras reports it). Raises
    ``FloatingPointError`` if the loss becomes NaN or infinite.
    """
    torch = session.torch
    functional = torch.nn.functional
    u = session.tensor(rows, torch.long)
    i = session.tensor(cols, torch.long)
    r = session.tensor(ratings, torch.float32)
    params = [session.tensor(a, torch.float32).requires_grad_() for a in init]
    w, v, b, c = params
    optimizer = torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
    history: list[float] = []
    for _ in range(epochs):
        total = torch.zeros((), device=session.device)
        for idx in session.shuffled_batches(r.shape[0], batch_size):
            bu, bi = u[idx], i[idx]
            # embedding(): a row gather whose backward scatter-adds into the table.
            wu, vi = functional.embedding(bu, w), functional.embedding(bi, v)
            bias_u, bias_i = b[bu], c[bi]
            err = r[idx] - (global_mean + bias_u + bias_i + (wu * vi).sum(dim=1))
            per_rating = err.square() + regularization * (
                wu.square().sum(dim=1) + vi.square().sum(dim=1) + bias_u.square() + bias_i.square()
            )
            optimizer.zero_grad(set_to_none=True)
            per_rating.mean().backward()
            optimizer.step()
            total += per_rating.detach().sum()
        loss = float(total) / r.shape[0]
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"EmbeddingMF diverged (loss {loss}); lower learning_rate (now {learning_rate})"
            )
        history.append(loss)
    learned = tuple(to_numpy(p).astype(np.float64) for p in params)
    return (learned[0], learned[1], learned[2], learned[3]), history


class EmbeddingMF(_BiasedMF):
    """Biased MF ``r̂_ui = mu + b_u + c_i + w_u . v_i`` as embeddings, momentum SGD on mini-batches.

    The Keras embedding model of the course material, in PyTorch: the
    objective of Koren, Bell & Volinsky (IEEE Computer 2009) with the L2
    penalty per rating, mini-batch SGD with momentum 0.9 (Polyak 1964) on
    the batch-mean loss (see the module doc), then one exact ridge solve of
    every user's ``(w_u, b_u)``. Serves from factor tables like
    :class:`~recommender.engine.gradient_mf.SGDMF`; fold-in is that ridge solve.

    ``device="auto"`` trains on CUDA when available (``"cpu"`` pins it).
    ``loss_history_`` is the training loss per rating of every epoch.
    The defaults were picked among five (learning rate, lambda, epochs)
    candidates on a validation split inside the ML-100K training part (10 %
    of the 80/20 split's training ratings; the test part was not used); they
    train ML-100K in about ten CPU seconds.
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        learning_rate: float = 0.15,
        momentum: float = 0.9,
        regularization: float = 0.07,
        batch_size: int = 256,
        epochs: int = 25,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.regularization = regularization
        self.batch_size = batch_size
        self.epochs = epochs
        self.random_state = random_state
        self.device = device

    def _fit(self, data: Interactions) -> None:
        if self.factors < 1 or self.batch_size < 1 or self.epochs < 0:
            raise ValueError("factors and batch_size must be >= 1 and epochs >= 0")
        rows, cols, r = data.to_coo_arrays()
        init = self._init_params(data, np.random.default_rng(self.random_state))
        with training_session(self.random_state, self.device) as session:
            learned, history = train_embedding_mf(
                session,
                rows,
                cols,
                r,
                init,
                self.global_mean_,
                learning_rate=self.learning_rate,
                momentum=self.momentum,
                regularization=self.regularization,
                batch_size=self.batch_size,
                epochs=self.epochs,
            )
        self._store(*learned)
        self._finish_users(data)
        self.loss_history_ = history
