"""Tastebase's recommendation engine: pure numpy/scipy, no Django.

Public API::

    from recommender.engine import Interactions, ExplicitALS
    data = Interactions.from_arrays(user_ids, item_ids, ratings)
    model = ExplicitALS(factors=64, random_state=0).fit(data)
    model.predict(user_ids, item_ids); model.recommend(user_id, n=10)
"""

from __future__ import annotations

from .base import Recommender
from .interactions import EmptyInteractionsError, Interactions

__all__ = ["EmptyInteractionsError", "Interactions", "Recommender"]
