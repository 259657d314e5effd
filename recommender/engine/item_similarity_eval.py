"""Offline quality of "similar items" lists: leave one liked item out.

A similar-items list is judged by whether it shows what the same person also
liked. Protocol (:func:`leave_one_liked_out`, then :func:`similar_list_quality`):

1. Every user ``u`` with at least two liked ratings (``r_ui >= threshold``,
   4 stars by default) has one liked item ``h_u`` drawn uniformly at random
   (seeded) removed from the ratings; the model is fitted on the rest.
2. ``Q_u`` is the set of ``u``'s liked items left in the training data (the
   "query" items, ``|Q_u| >= 1``), and ``L_q`` the top-``N`` similar list of
   item ``q`` as the site would show it (best first, at most ``N`` items,
   never ``q`` itself).
3. Per evaluated user (a hidden item and ``Q_u`` not empty)::

       hit_u        = 1/|Q_u| sum_{q in Q_u} [h_u in L_q]
       union_u      = [h_u in union_{q in Q_u} L_q]
       aggregated_u = [h_u in the top N of A_u]

   ``hit_u`` is the chance that the similar list of one of u's liked items
   shows another item u liked that the model never saw u rate; every list has
   the same ``N`` slots, so long or varied lists gain nothing. ``union_u``
   counts u as hit if any of their lists shows ``h_u`` (it grows with
   ``|Q_u|`` and with list diversity). ``A_u`` is a Borda vote over u's
   lists, ``a_u(j) = sum_{q in Q_u, j in L_q} (N + 1 - rank_q(j))``, over
   items with ``a_u(j) > 0`` that u did not rate in training, best first,
   ties to the lower index (item-based top-N from the served lists;
   Deshpande & Karypis, TOIS 2004).

4. Averages over the evaluated users ``U``::

       hit rate@N = 1/|U| sum_u hit_u            (likewise union, aggregated)
       PS hit rate@N = sum_u w_u hit_u / sum_u w_u,   w_u = (n+_{h_u})^-gamma

   where ``n+_h`` is the number of liked ratings of ``h`` in the data the
   holdout was carved from. Hidden items are drawn per liked *rating*, so the
   plain hit rate is dominated by blockbusters: a list of the ten most popular
   items, the same for every item, scores well on it. The popularity-stratified
   hit rate (Steck, "Item popularity and recommendation accuracy", RecSys 2011)
   reweights each hidden item by ``1/n+^gamma``: ``gamma = 0`` is the plain
   hit rate, ``gamma = 1`` weighs every item equally, ``gamma = 0.5`` (the
   default) sits between.

Popularity guards, so a list of blockbusters cannot win silently: catalogue
**coverage** = distinct items in any list / catalogue size, and **mean
popularity** = mean number of training ratings of a listed item, over every
entry of every item's list. :func:`feature_overlap` checks lists against item
features a person would recognise (genres) that the models never saw.

Everything is sparse products and per-chunk dense arrays: no Python loop per
rating, user or item. :func:`similar_list_quality_reference` is the slow,
obviously-correct twin used by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .interactions import Interactions
from .tables import FactorTables, NeighborTables, positions_of

__all__ = [
    "LikedHoldout",
    "SimilarListHits",
    "factor_cosine_lists",
    "feature_overlap",
    "leave_one_liked_out",
    "lists_from_neighbor_tables",
    "popularity_lists",
    "random_lists",
    "similar_list_hits",
    "similar_list_quality",
    "similar_list_quality_reference",
]

#: Rows per dense chunk (users when ranking aggregated lists, items for factor/random lists).
_CHUNK = 512


@dataclass(frozen=True)
class LikedHoldout:
    """The training ratings and, per evaluated user, the one liked item hidden from them.

    ``users`` (sorted) and ``items`` are indices into ``train``'s vocabularies,
    which are those of the data the holdout was carved from; ``liked_counts``
    is every item's number of liked ratings in that data (hidden ones included).
    """

    train: Interactions
    users: NDArray[np.int64]
    items: NDArray[np.int64]
    liked_counts: NDArray[np.int64]
    threshold: float


def leave_one_liked_out(
    data: Interactions, *, threshold: float = 4.0, random_state: int | None = None
) -> LikedHoldout:
    """Hide one liked rating (``r >= threshold``), uniformly at random, of every user with >= 2.

    A random key per rating; within each user the liked rating with the
    smallest key is hidden (a uniform choice), found with one ``lexsort``.
    Users with fewer than two liked ratings keep all their ratings and are not
    evaluated. ``train`` keeps ``data``'s vocabularies.
    """
    rows, cols, values = data.to_coo_arrays()
    key = np.random.default_rng(random_state).random(data.nnz)
    liked = values >= threshold
    n_liked = np.bincount(rows[liked], minlength=data.n_users)
    # Group by user, liked first, then by the random key: each user's run starts with its pick.
    order = np.lexsort((key, ~liked, rows))
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    picked = order[first]
    picked = picked[n_liked[rows[picked]] >= 2]
    hide = np.zeros(data.nnz, dtype=bool)
    hide[picked] = True
    return LikedHoldout(
        train=data.select(~hide),
        users=rows[picked].astype(np.int64),
        items=cols[picked].astype(np.int64),
        liked_counts=np.bincount(cols[liked], minlength=data.n_items).astype(np.int64),
        threshold=float(threshold),
    )


# ---- lists -------------------------------------------------------------------
def _pad(rows: NDArray[np.int64], cols: NDArray[np.int64], n_rows: int, n: int) -> NDArray[np.int64]:
    """A dense (n_rows x n) list table from (row, item) pairs sorted by row, in list order."""
    starts = np.searchsorted(rows, np.arange(n_rows))
    slot = np.arange(rows.shape[0]) - starts[rows]
    keep = slot < n
    out = np.full((n_rows, n), -1, dtype=np.int64)
    out[rows[keep], slot[keep]] = cols[keep]
    return out


def _top_n_rows(scores: NDArray[np.float64], n: int) -> NDArray[np.int64]:
    """Per row, the ``n`` largest finite scores, best first, ties to the lower index.

    Row-wise twin of :func:`recommender.engine.tables.top_n`: the ``n``-th
    best value is a partition away, every finite entry at least that good is
    a candidate, and one ``lexsort`` by (row, -score, index) orders them.
    """
    n_rows, width = scores.shape
    s = np.where(np.isfinite(scores), scores, -np.inf)
    m = min(n, width)
    if m == 0:
        return np.full((n_rows, n), -1, dtype=np.int64)
    kth = -np.partition(-s, m - 1, axis=1)[:, m - 1]
    rows, cols = np.nonzero((s >= kth[:, None]) & np.isfinite(s))
    order = np.lexsort((cols, -s[rows, cols], rows))
    return _pad(rows[order].astype(np.int64), cols[order].astype(np.int64), n_rows, n)


def lists_from_neighbor_tables(
    tables: NeighborTables, item_ids: NDArray[Any], n: int = 10
) -> NDArray[np.int64]:
    """The first ``n`` stored neighbours of every item of ``item_ids`` (n_items x n, padded with -1).

    What the site shows: ``NeighborTables`` keeps positive scores ranked 1..
    best first, and the selector reads them by rank.
    """
    top = tables.top(n)
    rows, cols = positions_of(item_ids, top.item_ids), positions_of(item_ids, top.neighbor_ids)
    keep = (rows >= 0) & (cols >= 0)
    order = np.lexsort((top.ranks[keep], rows[keep]))
    return _pad(rows[keep][order], cols[keep][order], item_ids.shape[0], n)


def factor_cosine_lists(tables: FactorTables, n: int = 10) -> NDArray[np.int64]:
    """Every item's ``n`` nearest items by cosine of the item factors (n_items x n).

    ``cos(i, j) = v_i . v_j / (|v_i| |v_j|)`` from ``FactorTables.unit_vectors``
    (float32), the item itself excluded, ties to the lower index: the site's
    fallback similar list (``recommender.selectors.similar_items``), one
    matrix product per block of items.
    """
    unit = tables.unit_vectors
    n_items = unit.shape[0]
    out = np.full((n_items, n), -1, dtype=np.int64)
    for start in range(0, n_items, _CHUNK):
        stop = min(start + _CHUNK, n_items)
        sims = (unit[start:stop] @ unit.T).astype(np.float64)
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        out[start:stop] = _top_n_rows(sims, n)
    return out


def popularity_lists(train: Interactions, n: int = 10) -> NDArray[np.int64]:
    """The ``n`` most rated items (ties to the lower index) for every item, itself left out."""
    counts = np.diff(train.csc.indptr).astype(np.float64)
    best = _top_n_rows(counts[None, :], n + 1)[0]
    best = best[best >= 0]
    n_items = train.n_items
    others = np.broadcast_to(best, (n_items, best.shape[0]))
    rows, slots = np.nonzero(others != np.arange(n_items)[:, None])
    return _pad(rows.astype(np.int64), others[rows, slots].astype(np.int64), n_items, n)


def random_lists(n_items: int, n: int = 10, *, random_state: int | None = None) -> NDArray[np.int64]:
    """``n`` distinct items drawn uniformly for every item, itself left out (a floor, not a method)."""
    rng = np.random.default_rng(random_state)
    out = np.full((n_items, n), -1, dtype=np.int64)
    for start in range(0, n_items, _CHUNK):
        stop = min(start + _CHUNK, n_items)
        keys = rng.random((stop - start, n_items))
        keys[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        out[start:stop] = _top_n_rows(keys, n)
    return out


# ---- the metric ------------------------------------------------------------------
def _list_matrix(lists: NDArray[np.int64], weighted: bool) -> sp.csr_matrix:
    """Row q = q's list: 1 (or the Borda weight N + 1 - rank) at each listed item."""
    n_items, n = lists.shape
    rows, slots = np.nonzero(lists >= 0)
    values = (n - slots).astype(np.float64) if weighted else np.ones(rows.shape[0])
    return sp.csr_matrix((values, (rows, lists[rows, slots])), shape=(n_items, n_items))


def _check_lists(lists: ArrayLike, n_items: int) -> NDArray[np.int64]:
    out = np.asarray(lists, dtype=np.int64)
    if out.ndim != 2 or out.shape[0] != n_items:
        raise ValueError(f"lists must be (n_items={n_items}) x N, got {out.shape}")
    return out


@dataclass(frozen=True)
class SimilarListHits:
    """Per evaluated user: ``hit_u``, ``union_u`` and ``aggregated_u`` (module docstring).

    ``users`` and ``items`` (the hidden ones) index the training data; paired
    comparisons of two methods on one holdout subtract these arrays.
    """

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    hit_rate: NDArray[np.float64]
    union: NDArray[np.bool_]
    aggregated: NDArray[np.bool_]


def similar_list_hits(lists: ArrayLike, holdout: LikedHoldout) -> SimilarListHits:
    """Per-user hits of ``lists`` (n_items x N, row ``q`` = ``L_q`` best first, padded with -1).

    ``votes_u = #{q in Q_u : h_u in L_q} = sum_q Q[u, q] T[q, h_u]`` with
    ``Q`` the users' liked training items and ``T`` the 0/1 list matrix; the
    aggregated lists score ``A = Q W`` with Borda weights ``W[q, j] = N + 1 -
    rank_q(j)``, ranked per chunk of users.
    """
    train = holdout.train
    table = _check_lists(lists, train.n_items)
    n = table.shape[1]
    csr = train.csr[holdout.users]
    # Copies: eliminate_zeros() compacts indices/indptr in place, which csr must keep.
    liked = sp.csr_matrix(
        ((csr.data >= holdout.threshold).astype(np.float64), csr.indices.copy(), csr.indptr.copy()),
        shape=csr.shape,
    )
    liked.eliminate_zeros()
    n_queries = np.diff(liked.indptr)
    ok = n_queries > 0
    liked, csr, hidden, n_queries = liked[ok], csr[ok], holdout.items[ok], n_queries[ok]

    t = _list_matrix(table, weighted=False).tocsc()
    votes = np.asarray(liked.multiply(t[:, hidden].T).sum(axis=1)).ravel()

    w = _list_matrix(table, weighted=True)
    aggregated = np.zeros(hidden.shape[0], dtype=bool)
    index = np.arange(train.n_items)
    for start in range(0, hidden.shape[0], _CHUNK):
        stop = min(start + _CHUNK, hidden.shape[0])
        scores = (liked[start:stop] @ w).toarray()
        rated = csr[start:stop]
        scores[np.repeat(np.arange(stop - start), np.diff(rated.indptr)), rated.indices] = 0.0
        h = hidden[start:stop]
        mine = scores[np.arange(stop - start), h]
        # h's rank in A_u: items scoring more, or as much with a lower index.
        ahead = (scores > mine[:, None]) | ((scores == mine[:, None]) & (index < h[:, None]))
        aggregated[start:stop] = (mine > 0) & (ahead.sum(axis=1) < n)
    return SimilarListHits(
        users=holdout.users[ok],
        items=hidden,
        hit_rate=votes / n_queries,
        union=votes > 0,
        aggregated=aggregated,
    )


def _weighted_mean_se(x: NDArray[np.float64], w: NDArray[np.float64]) -> tuple[float, float]:
    """``sum w x / sum w`` and its standard error (ratio estimator, Cochran 1977, 6.3)."""
    mean = float((w * x).sum() / w.sum())
    if x.shape[0] < 2:
        return mean, 0.0
    n = x.shape[0]
    se = np.sqrt(n / (n - 1) * (w * w * (x - mean) ** 2).sum()) / w.sum()
    return mean, float(se)


def similar_list_quality(lists: ArrayLike, holdout: LikedHoldout, *, gamma: float = 0.5) -> dict[str, float]:
    """The module docstring's averages of ``lists`` (n_items x N, best first, padded with -1).

    Returns ``hit_rate`` (with ``hit_rate_se``), ``stratified_hit_rate``
    (popularity-stratified with exponent ``gamma``, with
    ``stratified_hit_rate_se``), ``union_hit_rate``, ``aggregated_hit_rate``,
    ``coverage``, ``mean_popularity``, ``mean_list_length`` (listed items per
    catalogue item) and ``n_users``.
    """
    hits = similar_list_hits(lists, holdout)
    n_users = hits.users.shape[0]
    if n_users == 0:
        raise ValueError("no user has a hidden liked item and a liked item left to query")
    train = holdout.train
    table = _check_lists(lists, train.n_items)
    listed = table[table >= 0]
    popularity = np.diff(train.csc.indptr).astype(np.float64)
    plain, plain_se = _weighted_mean_se(hits.hit_rate, np.ones(n_users))
    weights = np.maximum(holdout.liked_counts[hits.items], 1).astype(np.float64) ** -gamma
    stratified, stratified_se = _weighted_mean_se(hits.hit_rate, weights)
    return {
        "hit_rate": plain,
        "hit_rate_se": plain_se,
        "stratified_hit_rate": stratified,
        "stratified_hit_rate_se": stratified_se,
        "union_hit_rate": float(hits.union.mean()),
        "aggregated_hit_rate": float(hits.aggregated.mean()),
        "coverage": float(np.unique(listed).shape[0] / train.n_items),
        "mean_popularity": float(popularity[listed].mean()) if listed.size else 0.0,
        "mean_list_length": float(listed.shape[0] / train.n_items),
        "n_users": float(n_users),
    }


def feature_overlap(lists: ArrayLike, features: sp.spmatrix | NDArray[Any]) -> float:
    """Mean Jaccard overlap of item features between each item and the items on its list.

    ``features`` is a 0/1 (n_items x n_features) matrix (genres, say):
    ``mean over (q, j in L_q) of |F_q ∩ F_j| / |F_q ∪ F_j|``, over pairs where
    either side has a feature. A person-facing check the models never saw.
    """
    f = sp.csr_matrix(features, dtype=np.float64)
    f.data[:] = 1.0
    table = _check_lists(lists, f.shape[0])
    q, slot = np.nonzero(table >= 0)
    j = table[q, slot]
    inter = np.asarray(f[q].multiply(f[j]).sum(axis=1)).ravel()
    sizes = np.diff(f.indptr)
    union = sizes[q] + sizes[j] - inter
    ok = union > 0
    return float((inter[ok] / union[ok]).mean()) if ok.any() else 0.0


def similar_list_quality_reference(
    lists: NDArray[np.integer[Any]], holdout: LikedHoldout, *, gamma: float = 0.5
) -> dict[str, float]:
    """Slow, obviously-correct twin of :func:`similar_list_quality`: Python sets and sorts per user."""
    train = holdout.train
    dense = train.csr.toarray()
    # An explicit 0 rating would vanish from toarray(); "rated" comes from the structure.
    rated = np.zeros(dense.shape, dtype=bool)
    for u in range(train.n_users):
        rated[u, train.csr.indices[train.csr.indptr[u] : train.csr.indptr[u + 1]]] = True
    n = lists.shape[1]
    table = [[int(j) for j in row if j >= 0] for row in lists]
    per_user, weights, union, agg = [], [], [], []
    for u, h in zip(holdout.users.tolist(), holdout.items.tolist(), strict=True):
        queries = [q for q in range(train.n_items) if rated[u, q] and dense[u, q] >= holdout.threshold]
        if not queries:
            continue
        per_user.append(sum(h in table[q] for q in queries) / len(queries))
        weights.append(1.0 / max(int(holdout.liked_counts[h]), 1) ** gamma)
        union.append(any(h in table[q] for q in queries))
        borda: dict[int, float] = {}
        for q in queries:
            for rank, j in enumerate(table[q], start=1):
                borda[j] = borda.get(j, 0.0) + (n + 1 - rank)
        candidates = sorted((-s, j) for j, s in borda.items() if not rated[u, j])
        agg.append(h in [j for _, j in candidates[:n]])
    x, w = np.array(per_user), np.array(weights)
    m = len(per_user)

    def mean_se(weight: NDArray[np.float64]) -> tuple[float, float]:
        mean = sum(wi * xi for wi, xi in zip(weight, x, strict=True)) / sum(weight)
        if m < 2:
            return float(mean), 0.0
        var = sum((wi * (xi - mean)) ** 2 for wi, xi in zip(weight, x, strict=True)) * m / (m - 1)
        return float(mean), float(np.sqrt(var) / sum(weight))

    plain, plain_se = mean_se(np.ones(m))
    stratified, stratified_se = mean_se(w)
    listed = [j for row in table for j in row]
    counts = rated.sum(axis=0)
    return {
        "hit_rate": plain,
        "hit_rate_se": plain_se,
        "stratified_hit_rate": stratified,
        "stratified_hit_rate_se": stratified_se,
        "union_hit_rate": float(np.mean(union)),
        "aggregated_hit_rate": float(np.mean(agg)),
        "coverage": len(set(listed)) / train.n_items,
        "mean_popularity": float(np.mean([counts[j] for j in listed])) if listed else 0.0,
        "mean_list_length": len(listed) / train.n_items,
        "n_users": float(m),
    }
