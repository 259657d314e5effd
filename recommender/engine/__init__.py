"""Tastebase's recommendation engine: pure numpy/scipy, no Django.

Public API::

    from recommender.engine import Interactions, ExplicitALS
    data = Interactions.from_arrays(user_ids, item_ids, ratings)
    model = ExplicitALS(factors=64, random_state=0).fit(data)
    model.predict(user_ids, item_ids); model.recommend(user_id, n=10)

Names are imported on first use (PEP 562), so ``import recommender.engine.registry``
(settings validation, the web process's start-up) does not compile numba kernels
or load scipy for every model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule that defines it.
_EXPORTS: dict[str, str] = {
    "ExplicitALS": "als",
    "Recommender": "base",
    "BiasBaseline": "baseline",
    "GlobalMean": "baseline",
    "Blend": "blend",
    "BPMF": "bpmf",
    "BayesianSVDpp": "bayesian_svdpp",
    "ServedBayesianSVDpp": "bayesian_svdpp",
    "EASE": "ease",
    "evaluate_algorithm": "evaluation",
    "read_ratings_csv": "evaluation",
    "RatingsFileError": "readers",
    "LBFGSMF": "gradient_mf",
    "SGDMF": "gradient_mf",
    "ImplicitALS": "implicit_als",
    "EmptyInteractionsError": "interactions",
    "Interactions": "interactions",
    "ItemKNN": "knn",
    "UserKNN": "knn",
    "average_precision_at_k": "metrics",
    "catalog_coverage": "metrics",
    "evaluate_ranking": "metrics",
    "evaluate_ratings": "metrics",
    "hit_rate_at_k": "metrics",
    "mae": "metrics",
    "ndcg_at_k": "metrics",
    "precision_at_k": "metrics",
    "recall_at_k": "metrics",
    "rmse": "metrics",
    "ALGORITHMS": "registry",
    "get_algorithm": "registry",
    "make_model": "registry",
    "kfold": "split",
    "per_user_split": "split",
    "random_split": "split",
    "temporal_split": "split",
    "RankBlend": "rank_blend",
    "PureSVD": "svd",
    "FactorTables": "tables",
    "NeighborTables": "tables",
    "grid_search": "tune",
    "random_search": "tune",
}

__all__ = [
    "ALGORITHMS",
    "BPMF",
    "EASE",
    "LBFGSMF",
    "SGDMF",
    "BayesianSVDpp",
    "BiasBaseline",
    "Blend",
    "EmptyInteractionsError",
    "ExplicitALS",
    "FactorTables",
    "GlobalMean",
    "ImplicitALS",
    "Interactions",
    "ItemKNN",
    "NeighborTables",
    "PureSVD",
    "RankBlend",
    "RatingsFileError",
    "Recommender",
    "ServedBayesianSVDpp",
    "UserKNN",
    "average_precision_at_k",
    "catalog_coverage",
    "evaluate_algorithm",
    "evaluate_ranking",
    "evaluate_ratings",
    "get_algorithm",
    "grid_search",
    "hit_rate_at_k",
    "kfold",
    "mae",
    "make_model",
    "ndcg_at_k",
    "per_user_split",
    "precision_at_k",
    "random_search",
    "random_split",
    "read_ratings_csv",
    "recall_at_k",
    "rmse",
    "temporal_split",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .als import ExplicitALS
    from .base import Recommender
    from .baseline import BiasBaseline, GlobalMean
    from .bayesian_svdpp import BayesianSVDpp, ServedBayesianSVDpp
    from .blend import Blend
    from .bpmf import BPMF
    from .ease import EASE
    from .evaluation import evaluate_algorithm, read_ratings_csv
    from .gradient_mf import LBFGSMF, SGDMF
    from .implicit_als import ImplicitALS
    from .interactions import EmptyInteractionsError, Interactions
    from .knn import ItemKNN, UserKNN
    from .metrics import (
        average_precision_at_k,
        catalog_coverage,
        evaluate_ranking,
        evaluate_ratings,
        hit_rate_at_k,
        mae,
        ndcg_at_k,
        precision_at_k,
        recall_at_k,
        rmse,
    )
    from .rank_blend import RankBlend
    from .readers import RatingsFileError
    from .registry import ALGORITHMS, get_algorithm, make_model
    from .split import kfold, per_user_split, random_split, temporal_split
    from .svd import PureSVD
    from .tables import FactorTables, NeighborTables
    from .tune import grid_search, random_search
