"""Deep MF: concatenated user and item embeddings through an MLP with dropout (PyTorch).

The deep model of the course material (Keras: user and item embeddings,
``Concatenate``, ``Dense`` + ReLU with dropout, ``Dense(1)``), i.e. the MLP
tower of He et al., "Neural Collaborative Filtering", WWW 2017, sec. 3.3,
with a squared loss for explicit ratings::

    x_0   = [p_u ; q_i]                                        (2k inputs)
    x_l   = dropout(relu(A_l x_{l-1} + a_l)),   l = 1..L         (``hidden`` units each)
    r̂_ui = mu + A_out x_L + a_out

Each mini-batch B takes an Adam step (Kingma & Ba, ICLR 2015) on::

    L_B = (1/|B|) sum_{(u,i) in B} (r_ui - r̂_ui)^2 + lambda (|p_u|^2 + |q_i|^2)

(the embedding penalty per rating, as in :mod:`.embedding_mf`; dropout
regularizes the MLP). Dropout is inverted (scaled at training time), so
inference is the plain forward pass, which :class:`MLPWeights` runs in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..interactions import Interactions
from .common import (
    FoldInRecommender,
    TrainingSession,
    chunks,
    mlp_forward,
    to_numpy,
    training_session,
)

__all__ = ["DeepMF", "MLPWeights", "fold_in_embedding", "train_mlp"]

F32 = NDArray[np.float32]


@dataclass
class MLPWeights:
    """A trained ``r̂ = offset + MLP([p_u ; q_i])`` as numpy arrays (float32).

    ``weights[l]`` is ``(out, in)`` like ``torch.nn.Linear.weight``; the last
    layer has one output.
    """

    user_embeddings: F32
    item_embeddings: F32
    weights: list[F32]
    biases: list[F32]
    offset: float

    def forward(self, user_vectors: NDArray[Any], item_vectors: NDArray[Any]) -> NDArray[np.float64]:
        """``offset + MLP([p ; q])`` row by row (blocks of :data:`.common.CHUNK` rows)."""
        n = item_vectors.shape[0]
        out = np.empty(n, dtype=np.float64)
        for block in chunks(n):
            x = np.hstack([user_vectors[block], item_vectors[block]]).astype(np.float32, copy=False)
            out[block] = mlp_forward(x, self.weights, self.biases)
        return out + self.offset

    def predict(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.forward(self.user_embeddings[users], self.item_embeddings[items])

    def score_user(self, user_vector: NDArray[Any]) -> NDArray[np.float64]:
        """Every item's output for one user vector."""
        q = self.item_embeddings
        p = np.broadcast_to(np.asarray(user_vector, dtype=np.float32), (q.shape[0], q.shape[1]))
        return self.forward(p, q)


def train_mlp(
    session: TrainingSession,
    rows: NDArray[np.integer[Any]],
    cols: NDArray[np.integer[Any]],
    targets: NDArray[np.floating[Any]],
    user_embeddings: NDArray[np.floating[Any]],
    item_embeddings: NDArray[np.floating[Any]],
    *,
    offset: float,
    train_embeddings: bool,
    hidden: int,
    layers: int,
    dropout: float,
    learning_rate: float,
    regularization: float,
    batch_size: int,
    epochs: int,
) -> tuple[MLPWeights, list[float]]:
    """Fit ``target_ui ~ offset + MLP([p_u ; q_i])`` by Adam on shuffled mini-batches.

    The embeddings start from the given arrays and are learned with the
    per-rating penalty ``regularization`` when ``train_embeddings`` (DeepMF),
    or stay fixed inputs otherwise (ResidualMF's MLP on its MF's factors).
    Hidden layers use torch's default (Kaiming-uniform) initialization under the
    session's seed. Returns the weights and the training squared error per
    rating of every epoch (with dropout, as it was optimized).
    """
    torch = session.torch
    nn = torch.nn
    u = session.tensor(rows, torch.long)
    i = session.tensor(cols, torch.long)
    t = session.tensor(targets, torch.float32)
    p_table = session.tensor(user_embeddings, torch.float32).requires_grad_(train_embeddings)
    q_table = session.tensor(item_embeddings, torch.float32).requires_grad_(train_embeddings)
    modules: list[Any] = []
    width = p_table.shape[1] + q_table.shape[1]
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    modules.append(nn.Linear(width, 1))
    net = nn.Sequential(*modules).to(session.device)
    params = [*net.parameters(), *([p_table, q_table] if train_embeddings else [])]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    net.train()
    history: list[float] = []
    for _ in range(epochs):
        total = torch.zeros((), device=session.device)
        for idx in session.shuffled_batches(t.shape[0], batch_size):
            p = torch.nn.functional.embedding(u[idx], p_table)
            q = torch.nn.functional.embedding(i[idx], q_table)
            squared = (t[idx] - offset - net(torch.cat([p, q], dim=1)).squeeze(1)).square()
            loss = squared.mean()
            if train_embeddings:
                loss = loss + regularization * (p.square().sum(dim=1) + q.square().sum(dim=1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += squared.detach().sum()
        mse = float(total) / t.shape[0]
        if not np.isfinite(mse):
            raise FloatingPointError(
                f"the MLP diverged (loss {mse}); lower learning_rate (now {learning_rate})"
            )
        history.append(mse)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    weights = MLPWeights(
        user_embeddings=to_numpy(p_table),
        item_embeddings=to_numpy(q_table),
        weights=[to_numpy(m.weight) for m in linears],
        biases=[to_numpy(m.bias) for m in linears],
        offset=float(offset),
    )
    return weights, history


def fold_in_embedding(
    network: MLPWeights,
    items: NDArray[np.int64],
    targets: NDArray[np.float64],
    regularization: float,
    *,
    max_iter: int = 100,
) -> NDArray[np.float64]:
    """A new user's embedding ``p`` with the network and item embeddings fixed.

    Minimizes the training objective restricted to the user,
    ``sum_i (r_ui - offset - MLP([p ; q_i]))^2 + lambda n_u |p|^2``, from
    ``p = 0`` by L-BFGS (strong-Wolfe line search) in float64: deterministic,
    no sampling. No ratings give the zero vector.
    """
    k = network.user_embeddings.shape[1]
    if items.size == 0:
        return np.zeros(k)
    with training_session(0, "cpu") as session:
        torch = session.torch
        f64 = torch.float64
        q = torch.as_tensor(network.item_embeddings[items], dtype=f64)
        layers = [
            (torch.as_tensor(w, dtype=f64), torch.as_tensor(b, dtype=f64))
            for w, b in zip(network.weights, network.biases, strict=True)
        ]
        t = torch.as_tensor(np.asarray(targets, dtype=np.float64) - network.offset)
        p = torch.zeros(k, dtype=f64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [p],
            lr=1.0,
            max_iter=max_iter,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )
        n = q.shape[0]

        def closure() -> Any:
            optimizer.zero_grad()
            x = torch.cat([p.expand(n, k), q], dim=1)
            for w, b in layers[:-1]:
                x = torch.relu(x @ w.T + b)
            w, b = layers[-1]
            loss = (t - (x @ w.T + b)[:, 0]).square().sum() + regularization * n * p.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return p.detach().numpy().copy()


class DeepMF(FoldInRecommender):
    """Concatenated user/item embeddings through an MLP with dropout: ``r̂_ui = mu + MLP([p_u ; q_i])``.

    The MLP of He et al., "Neural Collaborative Filtering", WWW 2017 (the
    deep model of the course material), trained on the squared error of
    explicit ratings with a per-rating L2 penalty on the embeddings, dropout
    after every hidden ReLU layer and Adam (module doc). ``layers`` hidden
    layers of ``hidden`` units each.

    Fold-in: a new user's embedding by L-BFGS on their ratings with the
    network fixed (:func:`fold_in_embedding`); ``fold_in`` returns
    ``(p, 0.0)`` and ``score_vector(p)`` scores every item. Not servable from
    factor tables (the score is not a dot product).

    The defaults (one hidden layer of 256 units, dropout 0.5, lambda = 0.1,
    15 epochs) were the best of about a dozen candidates on a validation
    split inside the ML-100K training part (10 % of the 80/20 split's training
    ratings; the test part was not used). The embedding penalty alone barely
    limits overfitting (the first layer can scale up to undo it); dropout and
    a single layer did.
    """

    def __init__(
        self,
        *,
        embedding_dim: int = 32,
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.5,
        learning_rate: float = 0.001,
        regularization: float = 0.1,
        batch_size: int = 256,
        epochs: int = 15,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.batch_size = batch_size
        self.epochs = epochs
        self.random_state = random_state
        self.device = device

    network_: MLPWeights
    loss_history_: list[float]

    def _fit(self, data: Interactions) -> None:
        if min(self.embedding_dim, self.hidden, self.batch_size) < 1 or self.layers < 0 or self.epochs < 0:
            raise ValueError("embedding_dim, hidden and batch_size must be >= 1; layers and epochs >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        rows, cols, r = data.to_coo_arrays()
        rng = np.random.default_rng(self.random_state)
        scale = 0.1 / np.sqrt(self.embedding_dim)
        p0 = rng.normal(0.0, scale, size=(data.n_users, self.embedding_dim))
        q0 = rng.normal(0.0, scale, size=(data.n_items, self.embedding_dim))
        with training_session(self.random_state, self.device) as session:
            self.network_, self.loss_history_ = train_mlp(
                session,
                rows,
                cols,
                r,
                p0,
                q0,
                offset=self.global_mean_,
                train_embeddings=True,
                hidden=self.hidden,
                layers=self.layers,
                dropout=self.dropout,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                batch_size=self.batch_size,
                epochs=self.epochs,
            )

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.network_.predict(users, items)

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.network_.score_user(self.network_.user_embeddings[user])

    def _fold_in(
        self, items: NDArray[np.int64], ratings: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], float]:
        return fold_in_embedding(self.network_, items, ratings, self.regularization), 0.0

    def _score_user(self, vector: NDArray[np.float64], bias: float) -> NDArray[np.float64]:
        return self.network_.score_user(vector) + bias
