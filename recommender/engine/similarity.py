"""Item-item (or user-user) similarity kernels on a sparse rating matrix.

Conventions: the input ``X`` is a ``co-raters x entities`` sparse matrix. For
item similarities that is the usual users x items rating matrix; for user
similarities pass its transpose (items x users). Missing entries are absent
from the sparse structure (an explicit stored value is a rating, even 0).

For two entities ``i`` and ``j`` let ``U_ij`` be their co-raters (rows where
both have a value), ``n = |U_ij|`` and ``x_u``/``y_u`` the (possibly centred)
values of ``i``/``j``. Every similarity is built from six sums over co-raters

    n, Sx = sum x_u, Sy = sum y_u, Sxx = sum x_u^2, Syy = sum y_u^2, Sxy = sum x_u y_u

which are sparse products: with ``B`` the 0/1 pattern of ``X`` and ``V`` the
values, ``n = B^T B``, ``Sx = V^T B``, ``Sxx = (V∘V)^T B``, ``Sxy = V^T V``.

* ``jaccard``: ``n / (|U_i| + |U_j| - n)`` on who-rated (in [0, 1]).
* ``cosine``: ``Sxy / sqrt(Sxx Syy)`` on raw ratings over co-raters
  (Sarwar et al., WWW 2001, sec. 3.1.1).
* ``adjusted_cosine``: cosine after subtracting each co-rater's mean
  (the user's mean rating for item similarities; Sarwar et al. 2001, 3.1.3).
* ``pearson``: true Pearson correlation restricted to co-raters, each side
  centred by its own mean over ``U_ij``:
  ``(n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))``.
* ``pearson_baseline``: cosine of the baseline residuals
  ``r_ui - (mu + b_u + b_i)`` over co-raters (Koren, TKDD 2010, sec. 2.2),
  the similarity KNNBaseline uses.

All but jaccard lie in [-1, 1]. Pairs with ``n < min_support`` (or zero
denominator) have similarity 0 and are never neighbours. Shrinkage multiplies
by ``n / (n + shrinkage)`` so similarities resting on few co-raters are pulled
to 0 (Koren 2010, eq. 2).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads, njit, prange
from numpy.typing import NDArray

Similarity = Literal["cosine", "adjusted_cosine", "pearson", "pearson_baseline", "jaccard"]
SIMILARITIES: tuple[str, ...] = ("cosine", "adjusted_cosine", "pearson", "pearson_baseline", "jaccard")

# Kernel modes: which sums are needed and which formula combines them.
_MODE_JACCARD, _MODE_COSINE, _MODE_PEARSON = 0, 1, 2
# Relative tolerance below which a co-rater variance counts as zero.
_VAR_EPS = 1e-12
# Tests set this to run jaccard through the general kernel, the counts kernel's reference.
_GENERAL_JACCARD = False


def _mode(kind: str) -> int:
    if kind == "jaccard":
        return _MODE_JACCARD
    if kind == "pearson":
        return _MODE_PEARSON
    if kind in ("cosine", "adjusted_cosine", "pearson_baseline"):
        return _MODE_COSINE
    raise ValueError(f"unknown similarity {kind!r}; valid: {', '.join(SIMILARITIES)}")


def similarity_values(
    x: sp.spmatrix,
    kind: str,
    *,
    baseline: tuple[float, NDArray[np.floating], NDArray[np.floating]] | None = None,
) -> sp.csr_matrix:
    """The (co-raters x entities) float64 CSR of values the similarity correlates.

    Same sparsity structure as ``x`` (explicit zeros are kept: a centred value
    of 0 is still a co-rating). ``adjusted_cosine`` subtracts each row's mean;
    ``pearson_baseline`` subtracts ``mu + b_row + b_col`` with
    ``baseline = (mu, b_row, b_col)``; ``jaccard`` uses ones.
    """
    _mode(kind)
    m = sp.csr_matrix(x, dtype=np.float64, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    if kind == "jaccard":
        m.data[:] = 1.0
        return m
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    if kind == "adjusted_cosine":
        counts = np.diff(m.indptr)
        means = np.bincount(rows, weights=m.data, minlength=m.shape[0]) / np.maximum(counts, 1)
        m.data -= means[rows]
        # A rater whose ratings are all equal centres to exactly 0; snap the
        # rounding residue of the mean so it cannot turn into a +-1 cosine.
        m.data[np.abs(m.data) <= 1e-9 * np.maximum(1.0, np.abs(means[rows]))] = 0.0
    elif kind == "pearson_baseline":
        if baseline is None:
            raise ValueError("pearson_baseline needs baseline=(mu, b_row, b_col)")
        mu, b_row, b_col = baseline
        m.data -= (
            mu + np.asarray(b_row, dtype=np.float64)[rows] + np.asarray(b_col, dtype=np.float64)[m.indices]
        )
    return m


def _combine(
    mode: int,
    n: NDArray[np.float64],
    sx: NDArray[np.float64],
    sy: NDArray[np.float64],
    sxx: NDArray[np.float64],
    syy: NDArray[np.float64],
    sxy: NDArray[np.float64],
    count_i: NDArray[np.float64],
    count_j: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Vectorized similarity from co-rater sums (arrays broadcast together)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == _MODE_JACCARD:
            # |U_i ∩ U_j| / |U_i ∪ U_j|
            sim = n / (count_i + count_j - n)
        elif mode == _MODE_COSINE:
            sim = sxy / np.sqrt(sxx * syy)
        else:
            # Pearson on co-raters; n * (centred sums) avoids dividing twice by n.
            vx, vy = n * sxx - sx * sx, n * syy - sy * sy
            sim = (n * sxy - sx * sy) / np.sqrt(vx * vy)
            # A constant side has no correlation; the tolerance absorbs rounding
            # of n Sxx - Sx^2 for non-integer values.
            sim = np.where((vx > _VAR_EPS * n * sxx) & (vy > _VAR_EPS * n * syy), sim, 0.0)
    sim = np.where(np.isfinite(sim) & (n > 0), sim, 0.0)
    return np.clip(sim, -1.0, 1.0)


def _shrink_and_support(
    sim: NDArray[np.float64], n: NDArray[np.float64], min_support: int, shrinkage: float
) -> NDArray[np.float64]:
    # sim * n / (n + shrinkage), Koren 2010 eq. 2; unsupported pairs are 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = sim * (n / (n + shrinkage)) if shrinkage > 0 else sim
    return np.where((n >= max(min_support, 1)) & np.isfinite(shrunk), shrunk, 0.0)


def co_rater_sums(x: sp.spmatrix, kind: str, **kwargs: object) -> dict[str, NDArray[np.float64]]:
    """Dense (entities x entities) co-rater sums n, Sx, Sy, Sxx, Syy, Sxy as sparse products.

    ``Sx[i, j] = sum_{u in U_ij} x_ui`` is ``V^T B`` (values of ``i`` masked
    by who rated ``j``), ``Sy = Sx^T``, ``Sxx = (V∘V)^T B``, ``Sxy = V^T V``.
    Memory is O(entities^2): for small data and as the fast kernel's check.
    """
    v = similarity_values(x, kind, **kwargs)  # type: ignore[arg-type]
    b = v.copy()
    b.data[:] = 1.0
    v2 = v.multiply(v).tocsr()
    n = (b.T @ b).toarray()
    sx = (v.T @ b).toarray()
    sxx = (v2.T @ b).toarray()
    sxy = (v.T @ v).toarray()
    return {"n": n, "sx": sx, "sy": sx.T, "sxx": sxx, "syy": sxx.T, "sxy": sxy}


def similarity_matrix(
    x: sp.spmatrix,
    kind: str = "cosine",
    *,
    min_support: int = 1,
    shrinkage: float = 0.0,
    baseline: tuple[float, NDArray[np.floating], NDArray[np.floating]] | None = None,
) -> NDArray[np.float64]:
    """Full dense (entities x entities) similarity from sparse products.

    Symmetric, diagonal 1 by definition (an entity is identical to itself),
    off-diagonal values as in the module docstring (0 where unsupported).
    """
    mode = _mode(kind)
    s = co_rater_sums(x, kind, baseline=baseline)
    counts = np.diff(sp.csc_matrix(x).indptr).astype(np.float64)
    sim = _combine(
        mode, s["n"], s["sx"], s["sy"], s["sxx"], s["syy"], s["sxy"], counts[:, None], counts[None, :]
    )
    sim = _shrink_and_support(sim, s["n"], min_support, shrinkage)
    np.fill_diagonal(sim, 1.0)
    return sim


def similarity_reference(
    ratings: NDArray[np.floating],
    kind: str = "cosine",
    *,
    min_support: int = 1,
    shrinkage: float = 0.0,
    baseline: tuple[float, NDArray[np.floating], NDArray[np.floating]] | None = None,
) -> NDArray[np.float64]:
    """Slow textbook reference: a double loop over entity pairs, numpy per pair.

    ``ratings`` is dense (co-raters x entities) with ``np.nan`` for missing.
    """
    r = np.asarray(ratings, dtype=np.float64)
    _mode(kind)
    observed = ~np.isnan(r)
    if kind == "adjusted_cosine":
        # Centre each co-rater (row) by its mean over everything it rated.
        means = np.array([row[~np.isnan(row)].mean() if (~np.isnan(row)).any() else 0.0 for row in r])
        r = r - means[:, None]
    elif kind == "pearson_baseline":
        assert baseline is not None
        mu, b_row, b_col = baseline
        r = r - (
            mu + np.asarray(b_row, dtype=np.float64)[:, None] + np.asarray(b_col, dtype=np.float64)[None, :]
        )
    n_ent = r.shape[1]
    sim = np.eye(n_ent)
    for i in range(n_ent):
        for j in range(n_ent):
            if i == j:
                continue
            common = observed[:, i] & observed[:, j]
            n = int(common.sum())
            if n < max(min_support, 1):
                continue
            a, b = r[common, i], r[common, j]
            if kind == "jaccard":
                s = n / float((observed[:, i] | observed[:, j]).sum())
            elif kind == "pearson":
                a, b = a - a.mean(), b - b.mean()
                den = np.sqrt((a * a).sum() * (b * b).sum())
                s = float((a * b).sum() / den) if den > 0 else 0.0
            else:
                den = np.sqrt((a * a).sum() * (b * b).sum())
                s = float((a * b).sum() / den) if den > 0 else 0.0
            sim[i, j] = min(max(s, -1.0), 1.0) * (n / (n + shrinkage) if shrinkage > 0 else 1.0)
    return sim


# ---- blocked top-k ------------------------------------------------------------------
@njit(cache=True, inline="always")
def _worse(s_a: float, j_a: int, s_b: float, j_b: int) -> bool:
    """Is candidate a ranked below b? Lower score, or same score and higher index."""
    return s_a < s_b or (s_a == s_b and j_a > j_b)


@njit(cache=True)
def _sift_down(heap_s: NDArray[np.float32], heap_j: NDArray[np.int32], size: int, pos: int) -> None:
    """Restore the min-heap (root = worst kept candidate) below ``pos``."""
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _worse(heap_s[child + 1], heap_j[child + 1], heap_s[child], heap_j[child]):
            child += 1
        if not _worse(heap_s[child], heap_j[child], heap_s[pos], heap_j[pos]):
            return
        heap_s[pos], heap_s[child] = heap_s[child], heap_s[pos]
        heap_j[pos], heap_j[child] = heap_j[child], heap_j[pos]
        pos = child


@njit(cache=True)
def _select_top_k(
    cand_j: NDArray[np.int64],
    cand_s: NDArray[np.float32],
    n_cand: int,
    nb_row: NDArray[np.int32],
    sc_row: NDArray[np.float32],
) -> None:
    """The ``len(nb_row)`` best candidates into the rows, best first, ties by lower index.

    A bounded min-heap whose root is the worst kept candidate: O(n log k)
    worst case, ~O(n) in practice since most candidates lose to the root.
    The (score, index) order makes the result independent of candidate order.
    Hand-written rather than ``np.partition``/``argsort``: several times
    cheaper for numba to compile.
    """
    k = nb_row.shape[0]
    size = 0
    for c in range(n_cand):
        s = cand_s[c]
        j = cand_j[c]
        if size < k:
            # Sift up the new leaf.
            pos = size
            sc_row[pos] = s
            nb_row[pos] = j
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if not _worse(sc_row[pos], nb_row[pos], sc_row[parent], nb_row[parent]):
                    break
                sc_row[pos], sc_row[parent] = sc_row[parent], sc_row[pos]
                nb_row[pos], nb_row[parent] = nb_row[parent], nb_row[pos]
                pos = parent
        elif _worse(sc_row[0], nb_row[0], s, j):
            sc_row[0] = s
            nb_row[0] = j
            _sift_down(sc_row, nb_row, size, 0)
    # Heap sort in place: repeatedly move the worst to the end -> best first.
    for end in range(size - 1, 0, -1):
        sc_row[0], sc_row[end] = sc_row[end], sc_row[0]
        nb_row[0], nb_row[end] = nb_row[end], nb_row[0]
        _sift_down(sc_row, nb_row, end, 0)


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _block_top_k(
    start: int,
    stop: int,
    col_indptr: NDArray[np.int64],
    col_indices: NDArray[np.int32],
    col_values: NDArray[np.float64],
    row_indptr: NDArray[np.int64],
    row_indices: NDArray[np.int32],
    row_values: NDArray[np.float64],
    counts: NDArray[np.float64],
    labels: NDArray[np.int64],
    mode: int,
    min_support: int,
    shrinkage: float,
    n_threads: int,
    out_nb: NDArray[np.int32],
    out_sc: NDArray[np.float32],
) -> None:
    """Top-k neighbours of entities ``start:stop`` into ``out_nb``/``out_sc`` rows ``0:stop-start``.

    Row ``i`` of the similarity matrix is one sparse product ``x_i^T X``: for
    each co-rater ``u`` of ``i`` and each entity ``j`` in ``u``'s row,
    accumulate the co-rater sums into a dense per-thread workspace. Only the
    touched ``j`` are combined, offered to the top-k and reset, so a row costs
    O(sum of its co-raters' row lengths), never O(entities^2) memory.
    """
    n_ent = counts.shape[0]
    n_rows = stop - start
    k = out_nb.shape[1]
    var_eps = 1e-12  # = _VAR_EPS
    # The sums of one pair are interleaved (n, Sxx, Syy, Sxy, Sx, Sy) so a
    # scatter-add touches one cache line, not six arrays.
    width = 1 if mode == 0 else (4 if mode == 1 else 6)
    for t in prange(n_threads):
        acc = np.zeros((n_ent, width))
        touched = np.empty(n_ent, dtype=np.int64)
        cand_j = np.empty(n_ent, dtype=np.int64)
        cand_s = np.empty(n_ent, dtype=np.float32)
        for b in range(t, n_rows, n_threads):
            i = start + b
            n_touched = 0
            for p in range(col_indptr[i], col_indptr[i + 1]):
                u = col_indices[p]
                xv = col_values[p]
                xx = xv * xv
                for q in range(row_indptr[u], row_indptr[u + 1]):
                    j = row_indices[q]
                    if acc[j, 0] == 0.0:
                        touched[n_touched] = j
                        n_touched += 1
                    acc[j, 0] += 1.0
                    if mode != 0:
                        yv = row_values[q]
                        acc[j, 1] += xx
                        acc[j, 2] += yv * yv
                        acc[j, 3] += xv * yv
                        if mode == 2:
                            acc[j, 4] += xv
                            acc[j, 5] += yv
            n_cand = 0
            for s in range(n_touched):
                j = touched[s]
                n = acc[j, 0]
                if j != i and n >= min_support:
                    sim = 0.0
                    if mode == 0:
                        # |U_i ∩ U_j| / |U_i ∪ U_j|
                        sim = n / (counts[i] + counts[j] - n)
                    elif mode == 1:
                        # Sxy / sqrt(Sxx Syy)
                        den = np.sqrt(acc[j, 1] * acc[j, 2])
                        if den > 0.0:
                            sim = acc[j, 3] / den
                    else:
                        # (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))
                        vx = n * acc[j, 1] - acc[j, 4] * acc[j, 4]
                        vy = n * acc[j, 2] - acc[j, 5] * acc[j, 5]
                        den = np.sqrt(vx * vy)
                        if vx > var_eps * n * acc[j, 1] and vy > var_eps * n * acc[j, 2] and den > 0.0:
                            sim = (n * acc[j, 3] - acc[j, 4] * acc[j, 5]) / den
                    sim = min(max(sim, -1.0), 1.0)
                    if shrinkage > 0.0:
                        # Koren 2010 eq. 2: sim * n / (n + shrinkage)
                        sim *= n / (n + shrinkage)
                    cand_j[n_cand] = labels[j]
                    cand_s[n_cand] = sim
                    n_cand += 1
                for c in range(width):
                    acc[j, c] = 0.0
            m = min(k, n_cand)
            _select_top_k(cand_j, cand_s, n_cand, out_nb[b, :m], out_sc[b, :m])
            out_nb[b, m:] = -1
            out_sc[b, m:] = 0.0


@njit(cache=True, parallel=True, fastmath=False, nogil=True)
def _block_top_k_jaccard(
    start: int,
    stop: int,
    col_indptr: NDArray[np.int64],
    col_indices: NDArray[np.int32],
    row_indptr: NDArray[np.int64],
    row_indices: NDArray[np.int32],
    counts: NDArray[np.float64],
    labels: NDArray[np.int64],
    min_support: int,
    shrinkage: float,
    n_threads: int,
    out_nb: NDArray[np.int32],
    out_sc: NDArray[np.float32],
) -> None:
    """:func:`_block_top_k` for jaccard, which needs only the co-rater counts ``n``.

    The counts are int32 (half the workspace of the float sums, so more of it
    stays in cache). A row whose co-raters' rows hold more entries than there
    are entities touches most of them anyway: its hot loop is a bare
    ``acc[j] += 1`` and the touched entities are found by one scan of ``acc``
    afterwards instead of being listed on first touch. Same formula and
    candidates as the general kernel, so the same table (the top-k does not
    depend on the order candidates are offered in).
    """
    n_ent = counts.shape[0]
    n_rows = stop - start
    k = out_nb.shape[1]
    for t in prange(n_threads):
        acc = np.zeros(n_ent, dtype=np.int32)
        touched = np.empty(n_ent, dtype=np.int64)
        cand_j = np.empty(n_ent, dtype=np.int64)
        cand_s = np.empty(n_ent, dtype=np.float32)
        for b in range(t, n_rows, n_threads):
            i = start + b
            visits = 0
            for p in range(col_indptr[i], col_indptr[i + 1]):
                u = col_indices[p]
                visits += row_indptr[u + 1] - row_indptr[u]
            n_touched = 0
            if visits >= n_ent:
                for p in range(col_indptr[i], col_indptr[i + 1]):
                    u = col_indices[p]
                    for q in range(row_indptr[u], row_indptr[u + 1]):
                        acc[row_indices[q]] += 1
                for j in range(n_ent):
                    if acc[j] != 0:
                        touched[n_touched] = j
                        n_touched += 1
            else:
                for p in range(col_indptr[i], col_indptr[i + 1]):
                    u = col_indices[p]
                    for q in range(row_indptr[u], row_indptr[u + 1]):
                        j = row_indices[q]
                        if acc[j] == 0:
                            touched[n_touched] = j
                            n_touched += 1
                        acc[j] += 1
            n_cand = 0
            for s in range(n_touched):
                j = touched[s]
                n = np.float64(acc[j])
                acc[j] = 0
                if j != i and n >= min_support:
                    # |U_i ∩ U_j| / |U_i ∪ U_j|
                    sim = n / (counts[i] + counts[j] - n)
                    sim = min(max(sim, -1.0), 1.0)
                    if shrinkage > 0.0:
                        # Koren 2010 eq. 2: sim * n / (n + shrinkage)
                        sim *= n / (n + shrinkage)
                    cand_j[n_cand] = labels[j]
                    cand_s[n_cand] = sim
                    n_cand += 1
            m = min(k, n_cand)
            _select_top_k(cand_j, cand_s, n_cand, out_nb[b, :m], out_sc[b, :m])
            out_nb[b, m:] = -1
            out_sc[b, m:] = 0.0


def top_k_neighbors(
    x: sp.spmatrix,
    kind: str = "cosine",
    k: int = 40,
    *,
    min_support: int = 1,
    shrinkage: float = 0.0,
    baseline: tuple[float, NDArray[np.floating], NDArray[np.floating]] | None = None,
    block_size: int | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The ``k`` most similar entities of every entity, by blocked sparse products.

    Returns ``(neighbors, scores)``, both (entities x k): row ``i`` lists
    ``i``'s neighbours by decreasing similarity (float32; ties by lower
    index), never ``i`` itself nor an entity with fewer than ``min_support``
    co-raters; shorter rows are padded with index -1 and score 0. Blocks of
    rows are computed in parallel (numba; one sparse row product per entity
    into a per-thread dense accumulator, then a bounded-heap top-k), so
    memory is O(threads x entities + entities x k), never O(entities^2).
    ``block_size`` (rows per kernel call, default all) only sets the
    granularity; memory does not depend on it.
    """
    mode = _mode(kind)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = similarity_values(x, kind, baseline=baseline)
    n_ent = values.shape[1]
    # Relabel entities by decreasing popularity: the accumulators of the
    # entities touched most often then share a few hot cache lines (a Zipf
    # catalogue: 93 s -> 65 s CPU on the ML-20M-shaped bench). ``labels``
    # maps back to the input ids, which also break ties, so the result does
    # not depend on the relabelling. (Computing only the upper triangle and
    # offering each pair to both rows' heaps halves the products but was
    # slower at that size: the second heap access is a cache miss per pair.)
    labels = np.argsort(-np.bincount(values.indices, minlength=n_ent), kind="stable").astype(np.int64)
    rank = np.empty(n_ent, dtype=np.int64)
    rank[labels] = np.arange(n_ent)
    values = sp.csr_matrix((values.data, rank[values.indices], values.indptr), shape=values.shape)
    values.sort_indices()
    csc = values.tocsc()
    csc.sort_indices()
    counts = np.diff(csc.indptr).astype(np.float64)
    neighbors = np.full((n_ent, k), -1, dtype=np.int32)
    scores = np.zeros((n_ent, k), dtype=np.float32)
    if n_ent == 0:
        return neighbors, scores
    block_size = n_ent if block_size is None else max(1, int(block_size))
    col_indptr, col_indices = csc.indptr.astype(np.int64), csc.indices.astype(np.int32)
    row_indptr, row_indices = values.indptr.astype(np.int64), values.indices.astype(np.int32)
    support, shrink, threads = int(max(min_support, 1)), float(shrinkage), get_num_threads()
    block_nb = np.empty((min(block_size, n_ent), k), dtype=np.int32)
    block_sc = np.empty((min(block_size, n_ent), k), dtype=np.float32)
    for start in range(0, n_ent, block_size):
        stop = min(start + block_size, n_ent)
        if mode == _MODE_JACCARD and not _GENERAL_JACCARD:
            _block_top_k_jaccard(
                start, stop, col_indptr, col_indices, row_indptr, row_indices, counts, labels,
                support, shrink, threads, block_nb, block_sc,
            )  # fmt: skip
        else:
            _block_top_k(
                start, stop, col_indptr, col_indices, csc.data, row_indptr, row_indices, values.data,
                counts, labels, mode, support, shrink, threads, block_nb, block_sc,
            )  # fmt: skip
        neighbors[labels[start:stop]] = block_nb[: stop - start]
        scores[labels[start:stop]] = block_sc[: stop - start]
    return neighbors, scores


def neighbor_matrix(neighbors: NDArray[np.integer], scores: NDArray[np.floating], n: int) -> sp.csr_matrix:
    """The top-k table as an (n x n) CSR: row ``i`` holds ``i``'s neighbours' scores."""
    valid = neighbors >= 0
    rows = np.repeat(np.arange(neighbors.shape[0]), valid.sum(axis=1))
    return sp.csr_matrix(
        (scores[valid].astype(np.float64), (rows, neighbors[valid])), shape=(neighbors.shape[0], n)
    )
