"""Linear blending of several rating predictors (stacking on a held-out split)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import nnls

from .base import Recommender
from .interactions import Interactions


def clone(model: Recommender) -> Recommender:
    """An unfitted copy with the same hyperparameters (sklearn ``clone``)."""
    return type(model)(**model.get_params())


def ridge_blend_weights(
    predictions: NDArray[np.floating],
    target: NDArray[np.floating],
    regularization: float,
    non_negative: bool = False,
) -> tuple[float, NDArray[np.float64]]:
    """Intercept and weights of ``min ||y - c - P w||^2 + lambda ||w||^2`` (intercept not penalized).

    Centring ``P`` and ``y`` removes the intercept: ``w = (Pc^T Pc + lambda I)^-1 Pc^T yc``,
    ``c = mean(y) - mean(P) w``. With ``non_negative`` the weights are constrained
    to ``w >= 0`` (Breiman, "Stacked regressions", Machine Learning 1996), solved as
    non-negative least squares on the ridge-augmented system ``[Pc; sqrt(lambda) I] w = [yc; 0]``.
    """
    p = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    p_mean, y_mean = p.mean(axis=0), y.mean()
    pc, yc = p - p_mean, y - y_mean
    if non_negative:
        m = p.shape[1]
        augmented = np.vstack([pc, np.sqrt(regularization) * np.eye(m)])
        w = nnls(augmented, np.concatenate([yc, np.zeros(m)]))[0]
    else:
        gram = pc.T @ pc + regularization * np.eye(p.shape[1])
        w = np.linalg.solve(gram, pc.T @ yc)
    return float(y_mean - p_mean @ w), w


#: Registry names of the default members: the served Bayesian SVD++ (the most
#: accurate servable model) and the two neighbourhood models, which make
#: different errors — what a blend feeds on. All three are core (no extras), so
#: the default blend is the same everywhere; I-AutoRec (optional PyTorch extra)
#: is the member that adds most on top of them (``members=...,autorec``;
#: docs/benchmarks.md has the validation figures).
DEFAULT_MEMBERS: tuple[str, ...] = ("bayesian_svdpp_served", "item_knn", "user_knn")


def default_models() -> list[Recommender]:
    """The :data:`DEFAULT_MEMBERS` at their defaults."""
    return models_from_names(DEFAULT_MEMBERS)


def models_from_names(names: Sequence[str]) -> list[Recommender]:
    """Unfitted models at their defaults from registry names (``make_model`` checks each name
    and refuses an optional-extra model whose extra is missing, saying which)."""
    from .registry import make_model

    return [make_model(name, {}) for name in names]


class Blend(Recommender):
    """Linear blend of fitted rating predictors (stacking; Töscher, Jahrer &
    Bell, "The BigChaos solution to the Netflix Grand Prize", 2009, sec. 5;
    Koren, "The BellKor solution to the Netflix Grand Prize", 2009).

    ``r̂_ui = c + sum_m w_m r̂^(m)_ui`` with ``(c, w)`` the ridge least-squares
    fit (``lambda = regularization``, intercept unpenalized, ``w >= 0`` unless
    ``non_negative=False``: correlated base models otherwise get large weights
    of opposite signs that generalize badly on small data) of the held-out
    ratings on the base models' predictions. The held-out part is a seeded
    random ``validation_fraction`` of the training ratings; the base models
    are fitted on the rest to produce those predictions, then every base
    model is refitted on all of the training data (``models_``). Base models
    are cloned (``type(m)(**m.get_params())``), never mutated. ``models=None``
    uses :func:`default_models`.

    Ranking uses the blended predicted ratings of every item.
    Learned: ``models_``, ``weights_``, ``intercept_``, ``validation_rmse_``
    (per base model and the blend, on the held-out split).
    """

    def __init__(
        self,
        *,
        models: Sequence[Recommender] | None = None,
        members: str | Sequence[str] | None = None,
        validation_fraction: float = 0.1,
        regularization: float = 1.0,
        non_negative: bool = True,
        random_state: int = 0,
    ) -> None:
        self.models = models
        self.members = members
        self.validation_fraction = validation_fraction
        self.regularization = regularization
        self.non_negative = non_negative
        self.random_state = random_state

    def _fit(self, data: Interactions) -> None:
        if self.models is not None and self.members is not None:
            raise ValueError("give Blend either models or members, not both")
        if self.models is not None:
            prototypes = list(self.models)
        elif self.members is not None:
            # "+" as well as ",": environment lists (TASTEBASE_RATING_PARAMS) split on commas.
            names = re.split(r"[,+]", self.members) if isinstance(self.members, str) else list(self.members)
            prototypes = models_from_names([name.strip() for name in names if name.strip()])
        else:
            prototypes = default_models()
        if not prototypes:
            raise ValueError("Blend needs at least one base model")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in (0, 1)")
        rows, cols, r = data.to_coo_arrays()
        rng = np.random.default_rng(self.random_state)
        n_val = max(1, round(self.validation_fraction * data.nnz))
        if n_val >= data.nnz:
            raise ValueError("too few ratings to carve out a validation split")
        val = np.zeros(data.nnz, dtype=bool)
        val[rng.permutation(data.nnz)[:n_val]] = True
        sub = data.select(~val)
        preds = np.column_stack([clone(m).fit(sub).predict_indices(rows[val], cols[val]) for m in prototypes])
        target = r[val].astype(np.float64)
        self.intercept_, self.weights_ = ridge_blend_weights(
            preds, target, self.regularization, non_negative=self.non_negative
        )
        blended = np.clip(self.intercept_ + preds @ self.weights_, *data.rating_scale)
        self.validation_rmse_ = {
            "models": [float(np.sqrt(np.mean((preds[:, m] - target) ** 2))) for m in range(preds.shape[1])],
            "blend": float(np.sqrt(np.mean((blended - target) ** 2))),
        }
        self.models_ = [clone(m).fit(data) for m in prototypes]

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        out = np.full(users.shape[0], self.intercept_)
        for w, model in zip(self.weights_, self.models_, strict=True):
            out += w * model.predict_indices(users, items)
        return out
