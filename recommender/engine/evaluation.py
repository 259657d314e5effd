"""Offline evaluation of a registered algorithm on a train/test pair of CSV files.

Backs ``python manage.py evaluate --train TRAIN.csv --test TEST.csv --algorithm NAME
[--param key=value ...] [--json]``; the command only parses its arguments::

    train = read_ratings_csv(options["train"])
    test = read_ratings_csv(options["test"])
    params = parse_params(options["param"] or [])
    report = evaluate_algorithm(options["algorithm"], params, train, test)
    print(json.dumps(report) if options["json"] else format_report(report))

The CSV reader is the project's one ratings-file reader
(:func:`recommender.engine.readers.read_ratings_csv`), re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .interactions import Interactions
from .metrics import evaluate_ranking, evaluate_ratings
from .readers import RatingRows, RatingsFileError, read_ratings_csv
from .registry import make_model

__all__ = ["RatingRows", "RatingsFileError", "evaluate_algorithm", "format_report", "read_ratings_csv"]

#: Keys of :func:`evaluate_algorithm`'s result, in display order.
REPORT_KEYS = ("rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage", "fit_seconds")


def _as_rows(rows: RatingRows | Sequence[ArrayLike]) -> RatingRows:
    if isinstance(rows, RatingRows):
        return rows
    if len(rows) not in (3, 4):
        raise ValueError("rows must be (user_ids, item_ids, ratings[, timestamps])")
    ts = None if len(rows) == 3 or rows[3] is None else np.asarray(rows[3], dtype=np.int64)
    return RatingRows(np.asarray(rows[0]), np.asarray(rows[1]), np.asarray(rows[2], dtype=np.float64), ts)


def evaluate_algorithm(
    name: str,
    params: Mapping[str, Any] | None,
    train_rows: RatingRows | Sequence[ArrayLike],
    test_rows: RatingRows | Sequence[ArrayLike],
    *,
    k: int = 10,
    relevance_threshold: float = 4.0,
) -> dict[str, float | None]:
    """Fit registry algorithm ``name`` on ``train_rows`` and score it on ``test_rows``.

    ``params`` are ``__init__`` keywords (strings are coerced, see
    :func:`~recommender.engine.registry.make_model`). Returns exactly the keys
    ``rmse``, ``mae``, ``precision@10``, ``recall@10``, ``ndcg@10``,
    ``coverage``, ``fit_seconds`` (for ``k=10``); the rating metrics are
    ``None`` for ranking-only models. Ranking follows
    :func:`~recommender.engine.metrics.evaluate_ranking`.
    """
    model = make_model(name, params or {})
    train = _as_rows(train_rows)
    test = _as_rows(test_rows)
    data = Interactions.from_arrays(train.user_ids, train.item_ids, train.ratings, train.timestamps)
    start = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - start
    test_triples = (test.user_ids, test.item_ids, test.ratings)
    ratings: dict[str, float | None] = {"rmse": None, "mae": None}
    if not getattr(model, "ranking_only", False):
        ratings.update(evaluate_ratings(model, test_triples))
    ranking = evaluate_ranking(model, data, test_triples, k=k, relevance_threshold=relevance_threshold)
    return {
        "rmse": ratings["rmse"],
        "mae": ratings["mae"],
        f"precision@{k}": ranking[f"precision@{k}"],
        f"recall@{k}": ranking[f"recall@{k}"],
        f"ndcg@{k}": ranking[f"ndcg@{k}"],
        "coverage": ranking["coverage"],
        "fit_seconds": fit_seconds,
    }


def format_report(report: Mapping[str, float | None]) -> str:
    """Aligned ``key  value`` lines for humans; ``None`` shows as ``n/a``."""
    width = max(len(key) for key in report)
    return "\n".join(
        f"{key.ljust(width)}  {'n/a' if value is None else f'{value:.4f}'}" for key, value in report.items()
    )
