"""EASE: an item-item linear autoencoder with a closed-form solution.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import Recommender
from .interactions import Interactions


def ease_weights(binary: sp.spmatrix, regularization: float) -> NDArray[np.float64]:
    """Closed-form EASE item-item weights ``B`` (items x items, zero diagonal).

    Solves ``min_B ||X - X B||_F^2 + lambda ||B||_F^2  s.t. diag(B) = 0``;
    with ``P = (X^T X + lambda I)^-1`` the Lagrangian gives
    ``B = I - P diag(1 / diag(P))``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal.
    """
    if regularization <= 0:
        raise ValueError("regularization must be > 0 (X^T X alone is usually singular)")
    x = sp.csr_matrix(binary, dtype=np.float64)
    # The Gram matrix is items x items and dense anyway; float64 keeps the
    # inverse accurate for large lambda / tiny entries.
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += regularization
    # gram is symmetric positive definite (lambda > 0): a Cholesky solve is
    # cheaper and more stable than a general LU inverse.
    p = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), np.eye(gram.shape[0]))
    b = p / (-np.diag(p))[np.newaxis, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def ease_weights_reference(binary: NDArray[np.floating], regularization: float) -> NDArray[np.float64]:
    """Slow reference: solve the constrained least squares column by column.

    For column ``j`` the constraint ``B_jj = 0`` simply drops item ``j`` from
    the regressors, so ``B_{-j, j} = (X_{-j}^T X_{-j} + lambda I)^-1 X_{-j}^T x_j``
    -- a ridge regression of item ``j`` on every other item.
    """
    x = np.asarray(binary, dtype=np.float64)
    n_items = x.shape[1]
    b = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = np.array([i for i in range(n_items) if i != j], dtype=np.int64)
        xo = x[:, others]
        a = xo.T @ xo + regularization * np.eye(others.shape[0])
        b[others, j] = np.linalg.solve(a, xo.T @ x[:, j])
    return b


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019), a top-N ranking model.

    On the binary who-rated-what matrix ``X`` (users x items)::

        P = (X^T X + lambda I)^-1
        B = I - P diag(1 / diag(P))          (so diag(B) = 0)
        score(u, .) = x_u B

    ``similar_items`` ranks item ``i`` for query ``j`` by ``(B_ij + B_ji) / 2``:
    ``B`` is not symmetric (column ``j`` regresses item ``j`` on the others),
    so the mean scores "i and j predict each other". Ranking only: ``predict`` returns the regularized baseline of
    :mod:`recommender.engine.base`.

    Cost: O(n_items^2) memory and O(n_items^3) time, fine up to ~20k items.
    """

    ranking_only = True

    weights_: NDArray[np.float32]

    def __init__(self, *, regularization: float = 500.0) -> None:
        self.regularization = regularization

    def _fit(self, data: Interactions) -> None:
        binary = data.csr.copy()
        binary.data = np.ones_like(binary.data)
        self.weights_ = ease_weights(binary, float(self.regularization)).astype(np.float32)

    def _score_items(self, user: int) -> NDArray[np.float64]:
        csr = self.data_.csr
        seen = csr.indices[csr.indptr[user] : csr.indptr[user + 1]]
        # x_u is binary, so x_u B is the sum of the rows of B for the seen items.
        return self.weights_[seen].sum(axis=0, dtype=np.float64)

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        # Mean of B_ij and B_ji: symmetric "i and j predict each other".
        return 0.5 * (self.weights_[:, item].astype(np.float64) + self.weights_[item].astype(np.float64))
