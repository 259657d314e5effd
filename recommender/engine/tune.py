"""Hyperparameter search on a validation split carved out of the training data only.

The protocol (what ``manage.py evaluate --tune`` and ``bench/bench_ml100k.py`` run)::

    fit_part, validation = validation_split(train, validation_fraction, random_state)
    score(theta) = metric(model_theta fitted on fit_part, validation)   for every candidate theta
    theta*       = argmin score (rmse, mae)  or  argmax score (ndcg@K, precision@K, ...)
    model*       = model_theta* fitted on the whole of train
    # the caller then scores model* once on its test data, which this module never sees

Every candidate is scored on the same held-out ratings (one seeded
:func:`~recommender.engine.split.random_split` of the *training* ratings), so
candidates are compared on equal terms and a seed fixes the whole search.

Metrics:

* ``"rmse"`` / ``"mae"``: rating error of ``predict`` (lower is better);
* ``"ndcg@10"`` (or ``precision@K``, ``recall@K``, ``map@K``, ``hit_rate@K``):
  :func:`~recommender.engine.metrics.evaluate_ranking` with the fit part as the
  "seen" items and, as on a test split, only items rated in the fit part as the
  catalog (higher is better; see :func:`validation_score`).

Ties keep the earliest candidate and a NaN score (a diverged fit) loses to any
number, so results are deterministic.

Entry points: :func:`tune` (registry name or class -> fitted model, chosen
params, validation score, search table), :func:`grid_search` /
:func:`random_search` (the search alone), and :func:`search` (any model that
can be fitted by a callable: the benchmarks tune scikit-surprise and implicit
with it, on the same validation split).
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import Recommender
from .interactions import Interactions
from .metrics import evaluate_ranking, evaluate_ratings
from .readers import RatingRows
from .split import random_split

__all__ = [
    "SEARCH_SPACES",
    "SearchResult",
    "TuneResult",
    "default_metric",
    "format_params",
    "grid_candidates",
    "grid_search",
    "parse_grid",
    "random_search",
    "sample_candidates",
    "search",
    "tune",
    "validation_score",
    "validation_split",
]

_RATING_METRICS = ("rmse", "mae")
_RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")

#: Default share of the training ratings held out for validation.
VALIDATION_FRACTION = 0.1

#: Default search space per registry name: every combination is one candidate
#: (a grid; :func:`tune` with ``n_iter`` samples from it instead). Names absent
#: here (or mapped to ``{}``) are not searched: their defaults are refitted as is.
#:
#: The grids are small on purpose: ``python -m bench.bench_ml100k --folds 5``
#: runs each one six times (the 80/20 split and five folds) on two shared
#: cores. Each started centred on the estimator's default, which was chosen
#: before this protocol existed with the ML-100K 80/20 *test* split in view;
#: where validation then chose a value at the edge of a grid, the grid was
#: widened past it (the 2026-12-02 runs: explicit_als 128 factors, item_knn and
#: user_knn shrinkage 250, item_knn k = 80 in four of five folds, user_knn k = 80;
#: then item_knn shrinkage 600 of {100, 250, 600} on fold 1).
#: Fit time per candidate on 72 000 ML-100K ratings, two free cores, in brackets.
#:
#: * ``bias_baseline`` (< 0.1 s): the two bias penalties lambda_u, lambda_i of
#:   ``sum (r - mu - b_u - b_i)^2 + lambda_u sum b_u^2 + lambda_i sum b_i^2``.
#: * ``explicit_als`` (~3 s at k = 128, ~2.5x that at 192): rank k and the weighted
#:   penalty lambda of ``n_u^alpha lambda |w_u|^2 + n_i^alpha lambda |v_i|^2``
#:   (64 factors and lambda 0.8 were never chosen in six searches; 1.3 always was).
#: * ``sgd_mf`` (~7 s), ``lbfgs_mf`` (~25 s): the per-rating penalty lambda only;
#:   L-BFGS gets two candidates because one fit runs 200 full-batch iterations.
#: * ``bpmf`` (~6 s): the rank k (the Gibbs sampler sets every penalty itself).
#: * ``item_knn`` / ``user_knn`` (< 1 s): neighbourhood size k and the
#:   shrinkage s of ``sim * n / (n + s)``.
#: * ``implicit_als`` (~2-4 s): rank k, lambda and the confidence slope alpha of
#:   ``sum c_ui (p_ui - x_u . y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)``,
#:   ``c_ui = 1 + alpha r_ui``, tuned on NDCG@10 like every ranking-only model.
#:   Only lambda / alpha matters much (scaling c by t is lambda / t); a wider
#:   validation sweep (k in {128, 192, 256} x lambda in {30, 50, 100} x alpha in
#:   {1, 1.5, 3}) peaked at 192, 30, 1 and moved by < 0.003 with k, so the grid
#:   brackets that peak.
#: * ``pure_svd`` (< 0.2 s): the rank k of the truncated SVD.
#: * ``ease`` (~1 s): lambda of ``B = I - P diag(1 / diag P)``, ``P = (X^T X + lambda I)^-1``.
#: * ``bayesian_svdpp`` (~30 s): the rank k; ``bayesian_svdpp_served`` (~30 s): the
#:   ridge penalty of the served form's user solve (its sampler settings, rank 10
#:   and the item-side implicit term only, were chosen on the 80/20 split's
#:   validation part: :mod:`.bayesian_svdpp`).
#: * ``rank_blend``: not searched here; its member weights are chosen on the same
#:   kind of validation split inside its own ``fit`` (:mod:`.rank_blend`).
#: * Neural models (optional PyTorch extra; default epochs, one thread; CPU
#:   seconds per fit, ~6 s like ``sgd_mf`` measured in the same run): the
#:   penalty lambda of ``embedding_mf`` (~6 s), the dropout of ``deep_mf``
#:   (~15 s; 0.6 was the top of {0.4, 0.5, 0.6}, so the grid moved up), the MF
#:   penalty of ``residual_mf`` (~7 s) and the weight decay of I-AutoRec
#:   (``autorec``, ~6 s), three candidates each around the default (which the
#:   models' docstrings say was chosen on a validation split).
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "global_mean": {},
    "bias_baseline": {"regularization_user": [2.0, 5.0, 10.0], "regularization_item": [1.0, 3.0, 10.0]},
    "explicit_als": {"factors": [128, 192], "regularization": [1.0, 1.3, 2.0]},
    "sgd_mf": {"regularization": [0.04, 0.07, 0.12]},
    "lbfgs_mf": {"regularization": [0.1, 0.2]},
    "bpmf": {"factors": [10, 20]},
    "bayesian_svdpp": {"factors": [6, 10]},
    "bayesian_svdpp_served": {"serving_regularization": [1.0, 1.5]},
    "item_knn": {"k": [40, 80, 160], "shrinkage": [250.0, 600.0, 1500.0]},
    "user_knn": {"k": [40, 80, 160], "shrinkage": [100.0, 250.0, 600.0]},
    "implicit_als": {"factors": [128, 192], "regularization": [30.0, 50.0], "alpha": [1.0, 1.5]},
    "pure_svd": {"factors": [10, 15, 20, 30]},
    "ease": {"regularization": [250.0, 500.0, 1000.0]},
    "blend": {},
    "embedding_mf": {"regularization": [0.05, 0.07, 0.1]},
    "deep_mf": {"dropout": [0.5, 0.6, 0.7]},
    "residual_mf": {"mf_regularization": [0.05, 0.07, 0.1]},
    "autorec": {"regularization": [150.0, 200.0, 300.0]},
}


# ---- metrics -------------------------------------------------------------------------


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


def default_metric(model_class: type[Recommender] | str) -> str:
    """``"ndcg@10"`` for a ranking-only model, ``"rmse"`` for one that predicts ratings."""
    return "ndcg@10" if getattr(_resolve(model_class), "ranking_only", False) else "rmse"


class _RatedItemsOnly:
    """``model`` as :func:`evaluate_ranking` sees it, ranking only the items rated in ``fit_part``.

    A validation fit part keeps the whole training vocabulary, so some of its
    items have no rating in it. On a test split the catalog is the items of
    the training part, every one of them rated; scoring such an item (which
    the model knows nothing about) as ``-inf`` keeps validation on the same
    footing.
    """

    ranking_only = True

    def __init__(self, model: Any, rated: np.ndarray) -> None:
        self._model = model
        self._rated = rated
        self.popularity_ = np.where(rated, np.asarray(model.popularity_, dtype=np.float64), -np.inf)

    def score_items(self, user: int) -> np.ndarray:
        return np.where(self._rated, np.asarray(self._model.score_items(user), dtype=np.float64), -np.inf)


def validation_score(model: Any, fit_part: Interactions, validation: Interactions, metric: str) -> float:
    """``metric`` of ``model`` (fitted on ``fit_part``) on the held-out ``validation`` ratings.

    ``model`` needs ``predict(user_ids, item_ids)`` for a rating metric and
    ``score_items(user)`` + ``popularity_`` for a ranking one, so adapters
    around other libraries' models are scored by the same code.

    A ranking metric follows the test protocol of
    :func:`~recommender.engine.metrics.evaluate_ranking`, whose catalog is the
    items with a training rating: here the catalog is the items with at least
    one rating in ``fit_part``. Validation ratings of other items (rated only
    in the validation part) cannot be recommended, so they leave the relevant
    sets, and those items are not ranked either.
    """
    base, k, _ = _parse_metric(metric)
    if k is None:
        return float(evaluate_ratings(model, validation)[base])
    rated = np.diff(fit_part.csc.indptr) > 0
    users, items, ratings = validation.to_raw_arrays()
    item_idx = fit_part.item_index(items)
    keep = item_idx >= 0
    keep[keep] = rated[item_idx[keep]]
    held_out = (users[keep], items[keep], ratings[keep])
    ranker: Any = _RatedItemsOnly(model, rated)  # duck-typed: score_items + popularity_
    return float(evaluate_ranking(ranker, fit_part, held_out, k=k)[f"{base}@{k}"])


# ---- candidates and the validation split -------------------------------------------------


def validation_split(
    data: Interactions,
    validation_fraction: float = VALIDATION_FRACTION,
    random_state: int | None = 0,
) -> tuple[Interactions, Interactions]:
    """(fit part, validation part) of the training ``data``: a seeded rating-level holdout.

    ``round(validation_fraction * nnz)`` ratings, uniformly at random, go to
    validation (:func:`~recommender.engine.split.random_split`). Both parts are
    subsets of ``data`` with its vocabularies, so nothing outside ``data`` (a
    test split in particular) can enter the search.
    """
    return random_split(data, validation_fraction, random_state=random_state)


def grid_candidates(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``grid`` (cartesian product, last key fastest), in grid order."""
    for key, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ValueError(f"grid values must be sequences; {key}={values!r} (use n_iter to sample)")
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def sample_candidates(
    distributions: Mapping[str, Any], n_iter: int, random_state: int | None = 0
) -> list[dict[str, Any]]:
    """``n_iter`` candidates drawn from ``distributions`` with ``np.random.default_rng(random_state)``.

    Each value is a sequence (sampled uniformly), an object with
    ``rvs(random_state=...)`` (a frozen ``scipy.stats`` distribution, e.g.
    ``loguniform(1e-3, 1)``), or a constant.
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    rng = np.random.default_rng(random_state)
    candidates: list[dict[str, Any]] = []
    for _ in range(n_iter):
        params: dict[str, Any] = {}
        for key, dist in distributions.items():
            if hasattr(dist, "rvs"):
                value = dist.rvs(random_state=rng)
                params[key] = value.item() if hasattr(value, "item") else value
            elif isinstance(dist, Sequence) and not isinstance(dist, str):
                value = dist[int(rng.integers(len(dist)))]
                params[key] = value.item() if isinstance(value, np.generic) else value
            else:
                params[key] = dist
        candidates.append(params)
    return candidates


# ---- the search ---------------------------------------------------------------------------


@dataclass
class SearchResult:
    """Outcome of a search.

    Attributes:
        best_params: hyperparameters of the best candidate.
        best_score: its validation score.
        metric: the metric name; ``higher_is_better`` tells its direction.
        results: one row per candidate, in evaluation order:
            ``{"params": {...}, "score": float, "fit_seconds": float}``.
        n_fit, n_validation: ratings in the fit part and in the validation part.
    """

    best_params: dict[str, Any]
    best_score: float
    metric: str
    higher_is_better: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    n_fit: int = 0
    n_validation: int = 0

    def table(self) -> str:
        """The results as a markdown table, best first."""
        rows = sorted(self.results, key=lambda r: -r["score"] if self.higher_is_better else r["score"])
        lines = [f"| params | validation {self.metric} | fit s |", "|---|---:|---:|"]
        lines += [
            f"| {format_params(r['params'])} | {r['score']:.4f} | {r['fit_seconds']:.2f} |" for r in rows
        ]
        return "\n".join(lines)


def format_params(params: Mapping[str, Any]) -> str:
    """``"factors=64, regularization=1.3"``; ``"defaults"`` for no parameters."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def search(
    candidates: Sequence[Mapping[str, Any]],
    data: Interactions,
    fit: Callable[[dict[str, Any], Interactions], Any],
    *,
    metric: str,
    score: Callable[[Any, Interactions, Interactions, str], float] = validation_score,
    validation_fraction: float = VALIDATION_FRACTION,
    random_state: int | None = 0,
) -> SearchResult:
    """Score every candidate on :func:`validation_split` of ``data``; the best one wins.

    ``fit(params, fit_part)`` returns a model fitted on ``fit_part`` (any
    object: a Tastebase estimator or an adapter around another library's);
    ``score(model, fit_part, validation, metric)`` rates it, by default with
    :func:`validation_score`. ``data`` is the training data and nothing else:
    the function has no way to reach a test split.
    """
    _, _, higher = _parse_metric(metric)
    if not candidates:
        raise ValueError("the search space is empty")
    fit_part, validation = validation_split(data, validation_fraction, random_state)
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for params in candidates:
        start = time.perf_counter()
        model = fit(dict(params), fit_part)
        fit_seconds = time.perf_counter() - start
        value = float(score(model, fit_part, validation, metric))
        row = {"params": dict(params), "score": value, "fit_seconds": fit_seconds}
        results.append(row)
        # Strict comparison: ties keep the earlier candidate; NaN loses to any number.
        if (
            best is None
            or (math.isnan(best["score"]) and not math.isnan(value))
            or (value > best["score"] if higher else value < best["score"])
        ):
            best = row
    assert best is not None
    return SearchResult(
        best_params=dict(best["params"]),
        best_score=best["score"],
        metric=metric,
        higher_is_better=higher,
        results=results,
        n_fit=fit_part.nnz,
        n_validation=validation.nnz,
    )


def _resolve(model_class: type[Recommender] | str) -> type[Recommender]:
    if isinstance(model_class, str):
        from .registry import get_algorithm

        return get_algorithm(model_class)
    return model_class


def _builder(model_class: type[Recommender] | str) -> Callable[[Mapping[str, Any]], Recommender]:
    """params -> unfitted model; registry names coerce string values (``"64"``) like the CLI does."""
    if isinstance(model_class, str):
        from .registry import make_model

        return lambda params: make_model(model_class, params)
    return lambda params: model_class(**params)


def _check_rating_metric(cls: type[Recommender], metric: str) -> None:
    base, _, _ = _parse_metric(metric)
    if base in _RATING_METRICS and getattr(cls, "ranking_only", False):
        raise ValueError(f"{cls.__name__} is ranking-only; tune it with a ranking metric such as ndcg@10")


def _search_model(
    model_class: type[Recommender] | str,
    candidates: Sequence[dict[str, Any]],
    data: Interactions,
    metric: str,
    validation_fraction: float,
    random_state: int | None,
    fixed_params: Mapping[str, Any] | None,
) -> SearchResult:
    _check_rating_metric(_resolve(model_class), metric)
    build = _builder(model_class)
    return search(
        candidates,
        data,
        lambda params, part: build({**(fixed_params or {}), **params}).fit(part),
        metric=metric,
        validation_fraction=validation_fraction,
        random_state=random_state,
    )


def grid_search(
    model_class: type[Recommender] | str,
    param_grid: Mapping[str, Sequence[Any]],
    data: Interactions,
    metric: str = "rmse",
    validation_fraction: float = VALIDATION_FRACTION,
    random_state: int | None = 0,
    fixed_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Try every combination of ``param_grid`` (cartesian product, in grid order).

    ``model_class`` is a class or a registry name; ``fixed_params`` are passed
    to every candidate (e.g. ``{"random_state": 0}``).
    """
    candidates = grid_candidates(param_grid)
    return _search_model(
        model_class, candidates, data, metric, validation_fraction, random_state, fixed_params
    )


def random_search(
    model_class: type[Recommender] | str,
    param_distributions: Mapping[str, Any],
    data: Interactions,
    n_iter: int = 10,
    metric: str = "rmse",
    validation_fraction: float = VALIDATION_FRACTION,
    random_state: int | None = 0,
    fixed_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Try ``n_iter`` candidates sampled from ``param_distributions`` (see :func:`sample_candidates`).

    The seed fixes both the sampled candidates and the validation split.
    """
    candidates = sample_candidates(param_distributions, n_iter, random_state)
    return _search_model(
        model_class, candidates, data, metric, validation_fraction, random_state, fixed_params
    )


# ---- tune: search, then refit on all of the training data -----------------------------------


@dataclass
class TuneResult:
    """What :func:`tune` chose and how.

    Attributes:
        algorithm: the registry name (or class name) tuned.
        params: the chosen hyperparameters: the best candidate plus ``fixed_params``
            (``{}`` = the estimator's defaults).
        metric: the validation metric.
        validation_score: the chosen candidate's validation score; ``None`` when
            there was nothing to choose between (a space with one candidate).
        search: every candidate's score (``None`` when not searched).
        model: the chosen configuration fitted on *all* the training data
            (``None`` with ``refit=False``).
        fit_seconds: wall seconds of that refit; ``search_seconds``: of the search.
    """

    algorithm: str
    params: dict[str, Any]
    metric: str
    validation_score: float | None
    search: SearchResult | None
    model: Recommender | None
    fit_seconds: float = 0.0
    search_seconds: float = 0.0

    @property
    def n_candidates(self) -> int:
        return 0 if self.search is None else len(self.search.results)

    def summary(self) -> str:
        """One line: the chosen params and the validation score they won with."""
        if self.search is None:
            return f"{self.algorithm}: {format_params(self.params)} (nothing searched)"
        return (
            f"{self.algorithm}: {format_params(self.params)} — validation {self.metric} "
            f"{self.validation_score:.4f}, best of {self.n_candidates} candidates "
            f"({self.search.n_fit} fit / {self.search.n_validation} validation ratings)"
        )

    def table(self) -> str:
        """The search table (markdown), best first; empty when nothing was searched."""
        return "" if self.search is None else self.search.table()


def _as_interactions(data: Interactions | RatingRows) -> Interactions:
    if isinstance(data, Interactions):
        return data
    return Interactions.from_arrays(data.user_ids, data.item_ids, data.ratings, data.timestamps)


def _typed(build: Callable[[Mapping[str, Any]], Recommender], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as the estimator stores them (``"64"`` -> 64 for registry names)."""
    stored = build(params).get_params()
    return {key: stored.get(key, value) for key, value in params.items()}


def tune(
    data: Interactions | RatingRows,
    algorithm: type[Recommender] | str,
    space: Mapping[str, Any] | None = None,
    *,
    metric: str | None = None,
    n_iter: int | None = None,
    fixed_params: Mapping[str, Any] | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    random_state: int | None = 0,
    refit: bool = True,
) -> TuneResult:
    """Choose ``algorithm``'s hyperparameters on a validation split of the training ``data``.

    1. ``space`` (default: ``SEARCH_SPACES[algorithm]``, ``{}`` for a class or
       a name without one) gives the candidates: its grid, or with ``n_iter``
       that many samples (:func:`sample_candidates`, seeded by ``random_state``).
       Keys given in ``fixed_params`` are pinned and left out of the search.
    2. Each candidate is fitted on the fit part of
       :func:`validation_split` ``(data, validation_fraction, random_state)``
       and scored on its validation part with ``metric`` (default
       :func:`default_metric`: ``"rmse"``, or ``"ndcg@10"`` if ranking-only).
    3. The best is refitted on all of ``data`` (skip with ``refit=False``,
       e.g. to refit elsewhere).

    A space with a single candidate is not searched (no validation score).
    ``data`` is the training data only (an ``Interactions`` or the
    :class:`~recommender.engine.readers.RatingRows` of a training file): score
    ``result.model`` on the test data once, afterwards.
    """
    cls = _resolve(algorithm)
    name = algorithm if isinstance(algorithm, str) else cls.__name__
    metric = metric or default_metric(cls)
    _check_rating_metric(cls, metric)
    fixed = dict(fixed_params or {})
    if space is None:
        space = SEARCH_SPACES.get(name, {}) if isinstance(algorithm, str) else {}
    space = {key: values for key, values in space.items() if key not in fixed}
    build = _builder(algorithm)
    unknown = set(space) - set(inspect.signature(cls.__init__).parameters)
    if unknown:
        raise ValueError(f"{name}: unknown parameters in the search space: {', '.join(sorted(unknown))}")
    drawn = grid_candidates(space) if n_iter is None else sample_candidates(space, n_iter, random_state)
    candidates = [_typed(build, c) for c in drawn]
    train = _as_interactions(data)

    started = time.perf_counter()
    result: SearchResult | None = None
    if len({tuple(sorted(c.items())) for c in candidates}) > 1:
        result = _search_model(algorithm, candidates, train, metric, validation_fraction, random_state, fixed)
        chosen = {**_typed(build, fixed), **result.best_params}
    else:
        chosen = {**_typed(build, fixed), **(candidates[0] if candidates else {})}
    search_seconds = time.perf_counter() - started

    model: Recommender | None = None
    fit_seconds = 0.0
    if refit:
        model = build(chosen)
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
    return TuneResult(
        algorithm=name,
        params=chosen,
        metric=metric,
        validation_score=None if result is None else result.best_score,
        search=result,
        model=model,
        fit_seconds=fit_seconds,
        search_seconds=search_seconds,
    )


def parse_grid(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``["factors=32,64", "regularization=1"]`` -> ``{"factors": ["32", "64"], ...}`` (CLI helper).

    Values stay strings; :func:`tune` converts them to the types of the
    estimator's defaults, as ``--param`` values are.
    """
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not items:
            raise ValueError(f"grid {pair!r} is not of the form key=value1,value2,...")
        grid[key] = items
    return grid
