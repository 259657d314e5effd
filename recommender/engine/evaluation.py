"""Offline evaluation of a registered algorithm on a train/test pair of CSV files.

Backs ``python manage.py evaluate --train TRAIN.csv --test TEST.csv --algorithm NAME
[--param key=value ...] [--json]``; the command only parses its arguments::

    train = read_ratings_csv(options["train"])
    test = read_ratings_csv(options["test"])
    params = parse_params(options["param"] or [])
    report = evaluate_algorithm(options["algorithm"], params, train, test)
    print(json.dumps(report) if options["json"] else format_report(report))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .interactions import Interactions
from .metrics import evaluate_ranking, evaluate_ratings
from .registry import make_model

__all__ = ["RatingRows", "RatingsFileError", "evaluate_algorithm", "format_report", "read_ratings_csv"]

#: Keys of :func:`evaluate_algorithm`'s result, in display order.
REPORT_KEYS = ("rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage", "fit_seconds")

_HEADERS = (("user", "item", "rating"), ("user", "item", "rating", "timestamp"))


class RatingsFileError(ValueError):
    """A ratings CSV that cannot be read; the message names the file and line."""


class RatingRows(NamedTuple):
    """Parallel arrays of one ratings file (ids kept as strings, as written)."""

    user_ids: NDArray[np.str_]
    item_ids: NDArray[np.str_]
    ratings: NDArray[np.float64]
    timestamps: NDArray[np.int64] | None


def _first_bad(values: NDArray[np.str_], parse: type) -> int:
    """Index of the first entry ``parse`` rejects (only called once bulk parsing failed)."""
    for i, text in enumerate(values.tolist()):
        try:
            parse(text)
        except ValueError:
            return i
    return 0


def read_ratings_csv(path: str | Path) -> RatingRows:
    """Read ``user,item,rating[,timestamp]`` CSV (header required) into arrays.

    Parsing is vectorized: lines are split in C by ``str.split`` and numeric
    columns converted by numpy in one call; only when that fails is the file
    scanned for the first bad value, so errors cite ``file:line``. Fields are
    trimmed of spaces and surrounding double quotes; quoted commas are not
    supported. Ratings must be finite numbers, timestamps integers.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RatingsFileError(f"{path}: cannot read ratings file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RatingsFileError(f"{path}: not a UTF-8 text file") from None
    all_lines = np.array(text.splitlines(), dtype=str)
    # Blank lines carry nothing; keep each line's 1-based number for messages.
    numbers = np.flatnonzero(np.strings.strip(all_lines) != "") + 1
    lines = all_lines[numbers - 1]
    if lines.shape[0] == 0:
        raise RatingsFileError(
            f"{path}: file is empty; expected a header line 'user,item,rating[,timestamp]'"
        )
    first = str(lines[0])
    header = tuple(field.strip().strip('"').strip().lower() for field in first.split(","))
    if header not in _HEADERS:
        raise RatingsFileError(
            f"{path}:{numbers[0]}: header must be 'user,item,rating' or 'user,item,rating,timestamp', "
            f"got {first!r}"
        )
    n_cols = len(header)
    body, body_numbers = lines[1:], numbers[1:]
    if body.shape[0] == 0:
        raise RatingsFileError(f"{path}: no ratings after the header line")
    n_fields = np.strings.count(body, ",") + 1
    wrong = np.flatnonzero(n_fields != n_cols)
    if wrong.shape[0]:
        i = int(wrong[0])
        raise RatingsFileError(
            f"{path}:{body_numbers[i]}: expected {n_cols} comma-separated fields "
            f"({','.join(header)}), got {n_fields[i]}: {str(body[i])!r}"
        )
    fields = np.array(",".join(body.tolist()).split(","), dtype=str).reshape(-1, n_cols)
    fields = np.strings.strip(np.strings.strip(fields), '"')
    empty = np.flatnonzero((fields == "").any(axis=1))
    if empty.shape[0]:
        i = int(empty[0])
        column = header[int(np.flatnonzero(fields[i] == "")[0])]
        raise RatingsFileError(f"{path}:{body_numbers[i]}: empty {column} field: {str(body[i])!r}")

    def numeric(column: int, dtype: type, parse: type, what: str) -> NDArray[Any]:
        try:
            values: NDArray[Any] = fields[:, column].astype(dtype)
        except (ValueError, OverflowError):
            i = _first_bad(fields[:, column], parse)
            raise RatingsFileError(
                f"{path}:{body_numbers[i]}: {header[column]} {str(fields[i, column])!r} is not {what}"
            ) from None
        return values

    ratings = numeric(2, np.float64, float, "a number")
    bad = np.flatnonzero(~np.isfinite(ratings))
    if bad.shape[0]:
        i = int(bad[0])
        raise RatingsFileError(
            f"{path}:{body_numbers[i]}: rating {str(fields[i, 2])!r} is not a finite number"
        )
    timestamps = numeric(3, np.int64, int, "an integer") if n_cols == 4 else None
    return RatingRows(fields[:, 0], fields[:, 1], ratings, timestamps)


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
