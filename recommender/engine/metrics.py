"""Accuracy metrics: rating error (RMSE, MAE) and top-K ranking quality.

Ranking protocol (used by :func:`evaluate_ranking` and the benchmarks):

* a test rating ``>= relevance_threshold`` (default 4.0) marks a **relevant**
  item for its user; gains are binary;
* every test user with at least one relevant item is evaluated: the model
  scores every item of the train vocabulary, items the user rated in train are
  excluded, and the ``k`` best remaining items form the recommended list;
* relevant items that can never be recommended (not in the train vocabulary,
  or already rated by the user in train) are left out of the relevant set, so
  they do not count against any model;
* each metric is averaged over the evaluated users.

The per-list functions (``precision_at_k`` ...) are the textbook definitions
on one ranked list and serve as the reference; :func:`ranking_metrics_from_hits`
is the vectorized kernel computing all of them for many users at once (tests
check that both agree).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .base import Recommender
from .interactions import EmptyInteractionsError, Interactions
from .tables import rank_items

__all__ = [
    "average_precision_at_k",
    "catalog_coverage",
    "evaluate_ranking",
    "evaluate_ratings",
    "hit_rate_at_k",
    "mae",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics_from_hits",
    "recall_at_k",
    "rmse",
]


# ---- rating error ---------------------------------------------------------
def _paired(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("cannot compute an error over zero ratings")
    return t, p


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error: sqrt( (1/n) sum_j (r_j - r̂_j)^2 )."""
    t, p = _paired(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error: (1/n) sum_j |r_j - r̂_j|."""
    t, p = _paired(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


# ---- ranking metrics on one list (reference definitions) -------------------
def _hits_in_top_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> list[bool]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = list(recommended)[:k]
    if len(set(top)) != len(top):
        raise ValueError("recommended list contains duplicate items")
    rel = set(relevant)
    return [item in rel for item in top]


def _n_relevant(relevant: Collection[Any], metric: str) -> int:
    n = len(set(relevant))
    if n == 0:
        raise ValueError(f"{metric} is undefined for a user with no relevant items")
    return n


def precision_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """P@K = |top-K ∩ R| / K (a list shorter than K is padded with misses)."""
    return sum(_hits_in_top_k(recommended, relevant, k)) / k


def recall_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """R@K = |top-K ∩ R| / |R|; undefined (ValueError) when R is empty."""
    hits = _hits_in_top_k(recommended, relevant, k)
    return sum(hits) / _n_relevant(relevant, "recall")


def ndcg_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """Normalized discounted cumulative gain with binary gains.

    DCG@K = sum_{r=1..K} rel_r / log2(r + 1), IDCG@K = sum_{r=1..min(|R|,K)} 1 / log2(r + 1),
    NDCG@K = DCG@K / IDCG@K (Järvelin & Kekäläinen, "Cumulated gain-based
    evaluation of IR techniques", ACM TOIS 20(4), 2002).
    """
    hits = _hits_in_top_k(recommended, relevant, k)
    n_rel = _n_relevant(relevant, "NDCG")
    dcg = sum(1.0 / np.log2(r + 1) for r, hit in enumerate(hits, start=1) if hit)
    idcg = sum(1.0 / np.log2(r + 1) for r in range(1, min(n_rel, k) + 1))
    return float(dcg / idcg)


def average_precision_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """AP@K = (1 / min(|R|, K)) sum_{r=1..K} P@r · rel_r; its mean over users is MAP@K.

    The min(|R|, K) normalization makes a perfect list score 1 even when the
    user has more than K relevant items (Manning, Raghavan & Schütze,
    *Introduction to Information Retrieval*, 2008, sec. 8.4).
    """
    hits = _hits_in_top_k(recommended, relevant, k)
    n_rel = _n_relevant(relevant, "average precision")
    total, n_hit = 0.0, 0
    for r, hit in enumerate(hits, start=1):
        if hit:
            n_hit += 1
            total += n_hit / r
    return total / min(n_rel, k)


def hit_rate_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    """HR@K = 1 if at least one relevant item is in the top K, else 0."""
    return float(any(_hits_in_top_k(recommended, relevant, k)))


def catalog_coverage(recommended_lists: Iterable[ArrayLike], n_items: int) -> float:
    """Fraction of the ``n_items`` catalog appearing in at least one recommended list."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    lists = [np.asarray(lst).ravel() for lst in recommended_lists]
    if not lists:
        return 0.0
    return float(np.unique(np.concatenate(lists)).shape[0] / n_items)


# ---- vectorized kernel ---------------------------------------------------------
def ranking_metrics_from_hits(
    hits: NDArray[np.bool_], n_relevant: NDArray[np.integer[Any]]
) -> dict[str, NDArray[np.float64]]:
    """Per-user P@K, R@K, NDCG@K, AP@K and HR@K from a (users x K) hit matrix.

    ``hits[u, r-1]`` says whether the item at rank r of user u's list is
    relevant; ``n_relevant[u] = |R_u| >= 1``. Same formulas as the per-list
    functions: the discounts 1/log2(r+1) are a length-K vector, DCG is a
    matrix-vector product, IDCG a lookup in their cumulative sum, and
    P@r = cumsum(hits)/r for average precision.
    """
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError("hits must be a 2-D (users x K) array")
    n_rel = np.asarray(n_relevant, dtype=np.int64)
    if n_rel.shape != (hits.shape[0],):
        raise ValueError("n_relevant must have one entry per row of hits")
    if np.any(n_rel < 1):
        raise ValueError("every evaluated user needs at least one relevant item")
    k = hits.shape[1]
    h = hits.astype(np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    n_hits = h.sum(axis=1)
    capped = np.minimum(n_rel, k)
    idcg = np.cumsum(discount)[capped - 1]
    precision_at_r = np.cumsum(h, axis=1) / ranks
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": (h @ discount) / idcg,
        "map": (precision_at_r * h).sum(axis=1) / capped,
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


# ---- model evaluation ------------------------------------------------------------
def _raw_triples(
    test: Interactions | Sequence[ArrayLike],
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float64]]:
    """(raw users, raw items, ratings) from an Interactions or a (users, items, ratings[, ...]) tuple."""
    if isinstance(test, Interactions):
        users, items, raw_ratings = test.to_raw_arrays()
    else:
        if len(test) < 3:
            raise ValueError("test must be an Interactions or a (user_ids, item_ids, ratings) tuple")
        users, items, raw_ratings = (np.asarray(a).ravel() for a in test[:3])
    ratings = np.asarray(raw_ratings, dtype=np.float64)
    if not (users.shape == items.shape == ratings.shape):
        raise ValueError("test user ids, item ids and ratings must have the same length")
    return np.asarray(users), np.asarray(items), ratings


def evaluate_ratings(model: Recommender, test: Interactions | Sequence[ArrayLike]) -> dict[str, float]:
    """``{"rmse", "mae"}`` of ``model.predict`` over the test ratings (raw ids, fallbacks included)."""
    if getattr(model, "ranking_only", False):
        raise ValueError(f"{type(model).__name__} is ranking-only and does not predict ratings")
    users, items, ratings = _raw_triples(test)
    pred = model.predict(users, items)
    return {"rmse": rmse(ratings, pred), "mae": mae(ratings, pred)}


def evaluate_ranking(
    model: Recommender,
    train: Interactions,
    test: Interactions | Sequence[ArrayLike],
    k: int = 10,
    relevance_threshold: float = 4.0,
) -> dict[str, float]:
    """Mean top-``k`` metrics of a fitted model under the module's ranking protocol.

    Returns ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``, ``hit_rate@k``
    (means over evaluated users), ``coverage`` (distinct recommended items /
    train catalog size, :func:`catalog_coverage`) and ``n_users`` (number of
    evaluated users). Known users are scored with ``model.score_items``; users
    absent from train get the model's cold-start popularity ranking
    (``model.popularity_``), as ``recommend`` does.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if train.nnz == 0:
        raise EmptyInteractionsError("cannot evaluate against an empty train set")
    fitted_on = getattr(model, "data_", None)
    if fitted_on is not None and (fitted_on.n_users, fitted_on.n_items) != (train.n_users, train.n_items):
        raise ValueError("the model was not fitted on `train` (different user/item vocabularies)")
    users_raw, items_raw, ratings = _raw_triples(test)
    keep = ratings >= relevance_threshold
    users_raw, items_raw = users_raw[keep], items_raw[keep]
    item_idx = train.item_index(items_raw)
    users_raw, item_idx = users_raw[item_idx >= 0], item_idx[item_idx >= 0]
    # Group by raw test user: also covers users the train vocabulary lacks.
    groups, group_of = np.unique(users_raw, return_inverse=True)
    user_idx = train.user_index(groups) if groups.shape[0] else np.empty(0, dtype=np.int64)
    # Drop (user, item) pairs the user rated in train: they are excluded from
    # the candidates, so they could never be hit.
    # CSR order is sorted by (row, column), so row * n_items + column is a
    # sorted key array and membership is one searchsorted.
    train_rows, train_cols, _ = train.to_coo_arrays()
    train_keys = train_rows * train.n_items + train_cols
    pair_user = user_idx[group_of]
    pair_keys = pair_user * train.n_items + item_idx
    pos = np.minimum(np.searchsorted(train_keys, pair_keys), train_keys.shape[0] - 1)
    seen = (pair_user >= 0) & (train_keys[pos] == pair_keys)
    group_of, item_idx = group_of[~seen], item_idx[~seen]
    # A pair rated twice in test is still one relevant item.
    pair_key = np.unique(group_of * train.n_items + item_idx)
    group_of, item_idx = pair_key // train.n_items, pair_key % train.n_items
    n_rel_all = np.bincount(group_of, minlength=groups.shape[0])
    order = np.argsort(group_of, kind="stable")
    rel_items, starts = item_idx[order], np.concatenate(([0], np.cumsum(n_rel_all)))

    evaluated = np.flatnonzero(n_rel_all > 0)
    if evaluated.shape[0] == 0:
        raise ValueError(
            f"no test user has a rating >= {relevance_threshold} on an item the model can recommend"
        )
    hits = np.zeros((evaluated.shape[0], k), dtype=bool)
    recommended: list[NDArray[np.int64]] = []
    indptr, indices = train.csr.indptr, train.csr.indices
    # One model call per user (not per rating): score_items is the model's
    # vectorized "all items for one user" kernel.
    for row, g in enumerate(evaluated):
        u = int(user_idx[g])
        if u >= 0:
            top = rank_items(model.score_items(u), k, exclude=indices[indptr[u] : indptr[u + 1]])
        else:
            top = rank_items(model.popularity_, k)
        recommended.append(top)
        hits[row, : top.shape[0]] = np.isin(top, rel_items[starts[g] : starts[g + 1]])

    per_user = ranking_metrics_from_hits(hits, n_rel_all[evaluated])
    out = {f"{name}@{k}": float(values.mean()) for name, values in per_user.items()}
    out["coverage"] = catalog_coverage(recommended, train.n_items)
    out["n_users"] = float(evaluated.shape[0])
    return out
