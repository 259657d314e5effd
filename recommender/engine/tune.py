"""Hyperparameter search on a validation split carved out of the training data.

Both searches hold out ``validation_fraction`` of the given ratings with
:func:`~recommender.engine.split.random_split` (one fixed split for every
candidate, so candidates are compared on the same ratings), fit each candidate
on the rest and score it on the held-out part:

* ``metric="rmse"`` / ``"mae"``: rating error of ``predict`` (lower is better);
* ``metric="ndcg@10"`` (or ``precision@K``, ``recall@K``, ``map@K``,
  ``hit_rate@K``): :func:`~recommender.engine.metrics.evaluate_ranking`
  (higher is better).

Ties keep the earliest candidate, so results are deterministic.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import Recommender
from .interactions import Interactions
from .metrics import evaluate_ranking, evaluate_ratings
from .split import random_split

__all__ = ["SearchResult", "grid_search", "random_search"]

_RATING_METRICS = ("rmse", "mae")
_RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


@dataclass
class SearchResult:
    """Outcome of a search.

    Attributes:
        best_params: hyperparameters of the best candidate.
        best_score: its validation score.
        metric: the metric name; ``higher_is_better`` tells its direction.
        results: one row per candidate, in evaluation order:
            ``{"params": {...}, "score": float, "fit_seconds": float}``.
    """

    best_params: dict[str, Any]
    best_score: float
    metric: str
    higher_is_better: bool
    results: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        """The results as a markdown table, best first."""
        rows = sorted(self.results, key=lambda r: -r["score"] if self.higher_is_better else r["score"])
        lines = [f"| params | {self.metric} | fit s |", "|---|---:|---:|"]
        lines += [
            f"| {', '.join(f'{k}={v}' for k, v in r['params'].items())} | {r['score']:.4f} | {r['fit_seconds']:.2f} |"
            for r in rows
        ]
        return "\n".join(lines)


def _parse_metric(metric: str) -> tuple[str, int | None, bool]:
    """(base name, K or None, higher_is_better)."""
    name = metric.strip().lower()
    if name in _RATING_METRICS:
        return name, None, False
    base, sep, k_text = name.partition("@")
    if sep and base in _RANKING_METRICS and k_text.isdigit() and int(k_text) >= 1:
        return base, int(k_text), True
    valid = ", ".join([*_RATING_METRICS, *(f"{m}@K" for m in _RANKING_METRICS)])
    raise ValueError(f"unknown metric {metric!r}; valid: {valid}")


def _resolve(model_class: type[Recommender] | str) -> type[Recommender]:
    if isinstance(model_class, str):
        from .registry import get_algorithm

        return get_algorithm(model_class)
    return model_class


def _search(
    model_class: type[Recommender] | str,
    candidates: Sequence[dict[str, Any]],
    data: Interactions,
    metric: str,
    validation_fraction: float,
    random_state: int | None,
    fixed_params: Mapping[str, Any] | None,
) -> SearchResult:
    cls = _resolve(model_class)
    base, k, higher = _parse_metric(metric)
    if base in _RATING_METRICS and getattr(cls, "ranking_only", False):
        raise ValueError(f"{cls.__name__} is ranking-only; tune it with a ranking metric such as ndcg@10")
    if not candidates:
        raise ValueError("the search space is empty")
    train, valid = random_split(data, validation_fraction, random_state=random_state)
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for params in candidates:
        model = cls(**{**(fixed_params or {}), **params})
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        if k is None:
            score = evaluate_ratings(model, valid)[base]
        else:
            score = evaluate_ranking(model, train, valid, k=k)[f"{base}@{k}"]
        row = {"params": dict(params), "score": float(score), "fit_seconds": fit_seconds}
        results.append(row)
        # Strict comparison: ties keep the earlier candidate; NaN (a diverged
        # fit) loses to any number.
        if (
            best is None
            or (math.isnan(best["score"]) and not math.isnan(score))
            or (score > best["score"] if higher else score < best["score"])
        ):
            best = row
    assert best is not None
    return SearchResult(
        best_params=dict(best["params"]),
        best_score=best["score"],
        metric=metric,
        higher_is_better=higher,
        results=results,
    )


def grid_search(
    model_class: type[Recommender] | str,
    param_grid: Mapping[str, Sequence[Any]],
    data: Interactions,
    metric: str = "rmse",
    validation_fraction: float = 0.1,
    random_state: int | None = 0,
    fixed_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Try every combination of ``param_grid`` (cartesian product, in grid order).

    ``model_class`` is a class or a registry name; ``fixed_params`` are passed
    to every candidate (e.g. ``{"random_state": 0}``).
    """
    keys = list(param_grid)
    candidates = [dict(zip(keys, values, strict=True)) for values in itertools.product(*param_grid.values())]
    return _search(model_class, candidates, data, metric, validation_fraction, random_state, fixed_params)


def random_search(
    model_class: type[Recommender] | str,
    param_distributions: Mapping[str, Any],
    data: Interactions,
    n_iter: int = 10,
    metric: str = "rmse",
    validation_fraction: float = 0.1,
    random_state: int | None = 0,
    fixed_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Try ``n_iter`` candidates sampled from ``param_distributions``.

    Each value is a sequence (sampled uniformly), an object with
    ``rvs(random_state=...)`` (a frozen ``scipy.stats`` distribution, e.g.
    ``loguniform(1e-3, 1)``), or a constant. Sampling uses
    ``np.random.default_rng(random_state)``, so a seed fixes the candidates.
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    rng = np.random.default_rng(random_state)
    candidates: list[dict[str, Any]] = []
    for _ in range(n_iter):
        params: dict[str, Any] = {}
        for key, dist in param_distributions.items():
            if hasattr(dist, "rvs"):
                value = dist.rvs(random_state=rng)
                params[key] = value.item() if hasattr(value, "item") else value
            elif isinstance(dist, Sequence) and not isinstance(dist, str):
                value = dist[int(rng.integers(len(dist)))]
                params[key] = value.item() if isinstance(value, np.generic) else value
            else:
                params[key] = dist
        candidates.append(params)
    return _search(model_class, candidates, data, metric, validation_fraction, random_state, fixed_params)
