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

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from .base import Recommender
from .interactions import EmptyInteractionsError, Interactions

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


#: Pairs per ``predict`` call in :func:`evaluate_ratings`: a model's per-pair
#: temporaries (gathered factor rows, ...) then stay in cache and take
#: O(chunk) memory instead of O(test ratings).
PREDICT_CHUNK = 1 << 12


def _shares_vocabularies(model: Recommender, test: Interactions) -> bool:
    """Do ``test``'s dense indices mean the same ids as the model's (and is ``predict`` the base one)?"""
    fitted_on = getattr(model, "data_", None)
    if fitted_on is None or type(model).predict is not Recommender.predict:
        return False
    return all(
        a is b or (a.dtype == b.dtype and np.array_equal(a, b))
        for a, b in ((fitted_on.user_ids, test.user_ids), (fitted_on.item_ids, test.item_ids))
    )


def evaluate_ratings(model: Recommender, test: Interactions | Sequence[ArrayLike]) -> dict[str, float]:
    """``{"rmse", "mae"}`` of ``model.predict`` over the test ratings (raw ids, fallbacks included).

    Predictions are made ``PREDICT_CHUNK`` pairs at a time (the same values as
    one call). A test split over the model's own vocabularies (``Interactions.select``
    of its training data) skips the raw-id round trip: ``predict_indices`` on its
    indices is what ``predict`` on its raw ids computes.
    """
    if getattr(model, "ranking_only", False):
        raise ValueError(f"{type(model).__name__} is ranking-only and does not predict ratings")
    predict: Callable[[Any, Any], NDArray[np.float64]]
    if isinstance(test, Interactions) and _shares_vocabularies(model, test):
        users, items, ratings32 = test.to_coo_arrays()
        ratings = ratings32.astype(np.float64)
        predict = model.predict_indices
    else:
        users, items, ratings = _raw_triples(test)
        predict = model.predict
    n = ratings.shape[0]
    pred = np.empty(n, dtype=np.float64)
    for start in range(0, n, PREDICT_CHUNK):
        stop = min(start + PREDICT_CHUNK, n)
        chunk = np.asarray(predict(users[start:stop], items[start:stop]), dtype=np.float64)
        if chunk.shape != (stop - start,):
            raise ValueError("user_ids and item_ids must have the same length")
        pred[start:stop] = chunk
    return {"rmse": rmse(ratings, pred), "mae": mae(ratings, pred)}


@njit(cache=True, nogil=True, inline="always")
def _sift_down(heap_s: NDArray[np.float64], out: NDArray[np.int64], size: int, s: float, j: int) -> None:
    """Put ``(s, j)`` at the root of the min-heap ``heap_s[:size]`` / ``out[:size]``
    and sift it down (worse = lower score, or the same score and the higher index)."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and (
            heap_s[child + 1] < heap_s[child]
            or (heap_s[child + 1] == heap_s[child] and out[child + 1] > out[child])
        ):
            child += 1
        if heap_s[child] < s or (heap_s[child] == s and out[child] > j):
            heap_s[pos] = heap_s[child]
            out[pos] = out[child]
            pos = child
        else:
            break
    heap_s[pos] = s
    out[pos] = j


@njit(cache=True, nogil=True)
def _top_k_hits(
    scores: NDArray[np.float64],
    exclude: NDArray[np.int32],
    k: int,
    relevant: NDArray[np.int64],
    excluded: NDArray[np.bool_],
    out: NDArray[np.int64],
    hits: NDArray[np.bool_],
) -> int:
    """The ``k`` best finite scores outside ``exclude`` into ``out`` (best first,
    ties by the lower index: :func:`~recommender.engine.tables.rank_items`'s
    order); ``hits[r]`` = ``out[r]`` is in the sorted ``relevant``. Returns the
    list's length (fewer than ``k`` when fewer candidates are finite).

    One pass with a size-``k`` min-heap (root = worst kept), O(n log k).
    ``excluded`` is an all-False scratch mask of len(scores), restored on return.
    """
    n = scores.shape[0]
    for e in exclude:
        if e >= 0:
            excluded[e] = True
    heap_s = np.empty(k, dtype=np.float64)
    size = 0
    for j in range(n):
        s = scores[j]
        if excluded[j] or not np.isfinite(s):
            continue
        if size < k:
            pos = size
            size += 1
        elif s > heap_s[0]:  # same score: the kept item has the lower index and wins
            # The root (the worst kept) is replaced by (s, j).
            _sift_down(heap_s, out, size, s, j)
            continue
        else:
            continue
        # Sift the new leaf up.
        while pos > 0:
            parent = (pos - 1) // 2
            if heap_s[parent] > s or (heap_s[parent] == s and out[parent] < j):
                heap_s[pos] = heap_s[parent]
                out[pos] = out[parent]
                pos = parent
            else:
                break
        heap_s[pos] = s
        out[pos] = j
    for e in exclude:
        if e >= 0:
            excluded[e] = False
    # Heap sort: repeatedly move the worst kept item to the end -> best first.
    for end in range(size - 1, 0, -1):
        s, j = heap_s[end], out[end]
        heap_s[end], out[end] = heap_s[0], out[0]
        _sift_down(heap_s, out, end, s, j)
    for r in range(size):
        hits[r] = False
        lo, hi = 0, relevant.shape[0]
        while lo < hi:
            mid = (lo + hi) >> 1
            if relevant[mid] < out[r]:
                lo = mid + 1
            else:
                hi = mid
        hits[r] = lo < relevant.shape[0] and relevant[lo] == out[r]
    return size


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
    no_exclusions = np.empty(0, dtype=np.int32)
    scratch = np.zeros(train.n_items, dtype=bool)
    top = np.empty(k, dtype=np.int64)
    # One model call per user (not per rating): score_items is the model's
    # vectorized "all items for one user" kernel; the top k, the exclusion of
    # the user's train items and the hits are one compiled pass (what
    # rank_items and np.isin give, without their full-length temporaries).
    # One BLAS thread: a user's scores are one small matrix-vector product, for
    # which waking a second thread costs more than it saves (on 2 busy cores,
    # 26,744 x 64 items: 1.8 ms a user with 2 threads, 0.35 ms with one).
    with threadpool_limits(limits=1, user_api="blas"):
        for row, g in enumerate(evaluated):
            u = int(user_idx[g])
            if u >= 0:
                scores, seen = model.score_items(u), indices[indptr[u] : indptr[u + 1]]
            else:
                scores, seen = model.popularity_, no_exclusions
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (train.n_items,):
                raise ValueError(f"score_items returned {scores.shape[0]} scores for {train.n_items} items")
            size = _top_k_hits(
                scores,
                seen.astype(np.int32, copy=False),
                k,
                rel_items[starts[g] : starts[g + 1]],
                scratch,
                top,
                hits[row],
            )
            recommended.append(top[:size].copy())

    per_user = ranking_metrics_from_hits(hits, n_rel_all[evaluated])
    out = {f"{name}@{k}": float(values.mean()) for name, values in per_user.items()}
    out["coverage"] = catalog_coverage(recommended, train.n_items)
    out["n_users"] = float(evaluated.shape[0])
    return out
