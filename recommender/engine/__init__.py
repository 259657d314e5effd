"""Tastebase's recommendation engine: pure numpy/scipy, no Django.

Public API::

    from recommender.engine import Interactions, ExplicitALS
    data = Interactions.from_arrays(user_ids, item_ids, ratings)
    model = ExplicitALS(factors=64, random_state=0).fit(data)
    model.predict(user_ids, item_ids); model.recommend(user_id, n=10)
"""

from __future__ import annotations

from .als import ExplicitALS
from .base import Recommender
from .baseline import BiasBaseline, GlobalMean
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
from .registry import ALGORITHMS, get_algorithm, make_model
from .split import kfold, per_user_split, random_split, temporal_split
from .svd import PureSVD
from .tune import grid_search, random_search

__all__ = [
    "ALGORITHMS",
    "BPMF",
    "EASE",
    "LBFGSMF",
    "SGDMF",
    "BiasBaseline",
    "Blend",
    "EmptyInteractionsError",
    "ExplicitALS",
    "GlobalMean",
    "ImplicitALS",
    "Interactions",
    "ItemKNN",
    "PureSVD",
    "Recommender",
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
