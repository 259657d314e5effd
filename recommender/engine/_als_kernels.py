"""Numba kernels for explicit-feedback ALS (biased matrix factorization).

Every kernel works on one side of the rating matrix in CSR form: rows are the
side being solved (users, or items when given the CSC arrays), ``indices``
point into the fixed side. Features are the fixed side's vectors augmented
with a constant, ``z_i = [v_i, 1]``, so the row's own bias is solved jointly
with its vector as the last coordinate of one ridge system::

    x_u = [w_u, b_u] = (Z_u^T Z_u + Lambda_u)^-1 Z_u^T t_u
    Z_u = [V_u, 1] for the items u rated,  t_ui = r_ui - mu - c_i

where ``Lambda_u`` is diagonal: ``reg_factors[u]`` on the k vector coordinates
and ``reg_bias[u]`` on the bias (the caller derives them from the
weighted-lambda rule of Zhou et al. 2008, ``lambda * n_u^alpha``). Rows are
independent, so ``prange`` over rows gives results that do not depend on the
number of threads or on scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray


@njit(cache=True, fastmath=True, error_model="numpy")
def cholesky_solve_inplace(a: NDArray[np.float64], b: NDArray[np.float64]) -> None:
    """Solve ``a x = b`` for symmetric positive definite ``a``; ``x`` overwrites ``b``.

    Left-looking Cholesky ``a = L L^T`` stored in the lower triangle of ``a``
    (only the lower triangle is read; the upper is left untouched), then
    ``L y = b`` and ``L^T x = y``. Column ``j`` of L needs
    ``L_ij = (a_ij - L_i,:j . L_j,:j) / L_jj``; four rows ``i`` are done per
    pass so they share the loads of ``L_j,:j`` and run four independent
    multiply-add chains (25 % faster than one row at a time at k = 64).
    Cost k^3 / 6 multiply-adds, no allocation.
    """
    n = a.shape[0]
    for j in range(n):
        lj = a[j, :j]
        s = a[j, j]
        for p in range(j):
            s -= lj[p] * lj[p]
        d = np.sqrt(s)
        a[j, j] = d
        inv = 1.0 / d
        i = j + 1
        while i + 4 <= n:
            r0 = a[i, :j]
            r1 = a[i + 1, :j]
            r2 = a[i + 2, :j]
            r3 = a[i + 3, :j]
            t0 = a[i, j]
            t1 = a[i + 1, j]
            t2 = a[i + 2, j]
            t3 = a[i + 3, j]
            for p in range(j):
                q = lj[p]
                t0 -= r0[p] * q
                t1 -= r1[p] * q
                t2 -= r2[p] * q
                t3 -= r3[p] * q
            a[i, j] = t0 * inv
            a[i + 1, j] = t1 * inv
            a[i + 2, j] = t2 * inv
            a[i + 3, j] = t3 * inv
            i += 4
        while i < n:
            ri = a[i, :j]
            t = a[i, j]
            for p in range(j):
                t -= ri[p] * lj[p]
            a[i, j] = t * inv
            i += 1
    for i in range(n):
        ri = a[i, :i]
        t = b[i]
        for p in range(i):
            t -= ri[p] * b[p]
        b[i] = t / a[i, i]
    for i in range(n - 1, -1, -1):
        t = b[i]
        for p in range(i + 1, n):
            t -= a[p, i] * b[p]
        b[i] = t / a[i, i]


#: Ratings per gathered panel: a k x PANEL float32 block (64 KiB at k = 64)
#: stays in L2 while the Gram tiles sweep it.
PANEL = 256


@njit(cache=True, fastmath=True, error_model="numpy")
def accumulate_gram_panel(zt: NDArray[np.float32], m: int, g: NDArray[np.float32]) -> None:
    """``g += Zt[:, :m] Zt[:, :m]^T`` on the upper triangle (by 2 x 4 tiles).

    ``zt`` holds a panel transposed (features x ratings), so every Gram entry is
    a dot product of two contiguous rows. A 2 x 4 tile keeps 8 running sums
    in registers while streaming 6 rows, 8 FMAs per 6 loads, and LLVM
    vectorizes the sums along the ratings. Rows of ``zt`` must be a multiple
    of 4 (callers zero-pad); entries below the 4 x 4 diagonal blocks are not
    written.
    """
    kp = zt.shape[0]
    for a0 in range(0, kp, 2):
        x0 = zt[a0]
        x1 = zt[a0 + 1]
        for b0 in range((a0 >> 2) << 2, kp, 4):
            z0 = zt[b0]
            z1 = zt[b0 + 1]
            z2 = zt[b0 + 2]
            z3 = zt[b0 + 3]
            s00 = np.float32(0.0)
            s01 = np.float32(0.0)
            s02 = np.float32(0.0)
            s03 = np.float32(0.0)
            s10 = np.float32(0.0)
            s11 = np.float32(0.0)
            s12 = np.float32(0.0)
            s13 = np.float32(0.0)
            for j in range(m):
                p0 = x0[j]
                p1 = x1[j]
                q0 = z0[j]
                q1 = z1[j]
                q2 = z2[j]
                q3 = z3[j]
                s00 += p0 * q0
                s01 += p0 * q1
                s02 += p0 * q2
                s03 += p0 * q3
                s10 += p1 * q0
                s11 += p1 * q1
                s12 += p1 * q2
                s13 += p1 * q3
            g[a0, b0] += s00
            g[a0, b0 + 1] += s01
            g[a0, b0 + 2] += s02
            g[a0, b0 + 3] += s03
            g[a0 + 1, b0] += s10
            g[a0 + 1, b0 + 1] += s11
            g[a0 + 1, b0 + 2] += s12
            g[a0 + 1, b0 + 3] += s13


@njit(cache=True, fastmath=True, error_model="numpy")
def gather_transposed(
    indices: NDArray[np.integer],
    start: int,
    m: int,
    other_factors: NDArray[np.float32],
    zt: NDArray[np.float32],
) -> None:
    """``zt[:, j] = other_factors[indices[start + j]]`` for ``j < m``.

    Eight rated items at a time: each feature row then receives 8 contiguous
    floats instead of 8 stores a cache line apart (4x faster than one item
    at a time).
    """
    k = other_factors.shape[1]
    j = 0
    while j + 8 <= m:
        y0 = other_factors[indices[start + j]]
        y1 = other_factors[indices[start + j + 1]]
        y2 = other_factors[indices[start + j + 2]]
        y3 = other_factors[indices[start + j + 3]]
        y4 = other_factors[indices[start + j + 4]]
        y5 = other_factors[indices[start + j + 5]]
        y6 = other_factors[indices[start + j + 6]]
        y7 = other_factors[indices[start + j + 7]]
        for a in range(k):
            r = zt[a]
            r[j] = y0[a]
            r[j + 1] = y1[a]
            r[j + 2] = y2[a]
            r[j + 3] = y3[a]
            r[j + 4] = y4[a]
            r[j + 5] = y5[a]
            r[j + 6] = y6[a]
            r[j + 7] = y7[a]
        j += 8
    for jr in range(j, m):
        y = other_factors[indices[start + jr]]
        for a in range(k):
            zt[a, jr] = y[a]


@njit(cache=True, parallel=True, fastmath=True, nogil=True, error_model="numpy")
def half_step_cholesky(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    mu: float,
    other_bias: NDArray[np.float32],
    other_factors: NDArray[np.float32],
    factors: NDArray[np.float32],
    bias: NDArray[np.float32],
    reg_factors: NDArray[np.float64],
    reg_bias: NDArray[np.float64],
    chunk_bounds: NDArray[np.int64],
) -> None:
    """Exact ALS half step: overwrite ``factors[u], bias[u]`` for every row ``u``.

    Solves ``(Z_u^T Z_u + Lambda_u) [w_u, b_u] = Z_u^T t_u`` (module doc) with
    ``Z_u = [V_u, 1]``, the augmented Gram assembled from its blocks::

        [[V^T V, V^T 1], [1^T V, n_u]],   rhs = [V^T t, sum t]

    The row's rated vectors are gathered, transposed, in panels of ``PANEL``
    ratings; ``V^T V`` is summed per panel by :func:`accumulate_gram_panel`
    in float32. The (k+1) x (k+1) solve runs in float64 (on ML-20M-sized data
    it is ~40 % of the user half step, whose rows are short). A row without
    ratings gets the prior mean 0.
    ``chunk_bounds`` splits rows into cost-balanced chunks; scratch is
    allocated once per chunk, never per row.
    """
    k = other_factors.shape[1]
    kp = (k + 3) // 4 * 4
    n_chunks = chunk_bounds.shape[0] - 1
    for c in prange(n_chunks):
        zt = np.zeros((kp, PANEL), dtype=np.float32)  # rows k..kp-1 stay zero
        tp = np.empty(PANEL, dtype=np.float32)
        g = np.empty((kp, kp), dtype=np.float32)
        col = np.empty(k, dtype=np.float32)  # V^T 1: the bias column of the Gram
        rhs = np.empty(k, dtype=np.float32)
        a64 = np.empty((k + 1, k + 1), dtype=np.float64)
        x64 = np.empty(k + 1, dtype=np.float64)
        for u in range(chunk_bounds[c], chunk_bounds[c + 1]):
            start = indptr[u]
            end = indptr[u + 1]
            n = end - start
            if n == 0:
                factors[u, :] = 0.0
                bias[u] = 0.0
                continue
            g[:, :] = 0.0
            col[:] = 0.0
            rhs[:] = 0.0
            t_sum = 0.0
            for p0 in range(start, end, PANEL):
                m = min(PANEL, end - p0)
                for j in range(m):
                    tp[j] = ratings[p0 + j] - mu - other_bias[indices[p0 + j]]
                    t_sum += tp[j]
                gather_transposed(indices, p0, m, other_factors, zt)
                for a in range(k):
                    row = zt[a]
                    s_col = np.float32(0.0)
                    s_rhs = np.float32(0.0)
                    for j in range(m):
                        s_col += row[j]
                        s_rhs += row[j] * tp[j]
                    col[a] += s_col
                    rhs[a] += s_rhs
                accumulate_gram_panel(zt, m, g)
            # Lower triangle of the augmented system (Cholesky reads only that),
            # taken from the upper triangle the tiles filled.
            for a in range(k):
                for b in range(a + 1):
                    a64[a, b] = g[b, a]
                a64[a, a] += reg_factors[u]
                a64[k, a] = col[a]
                x64[a] = rhs[a]
            a64[k, k] = n + reg_bias[u]
            x64[k] = t_sum
            cholesky_solve_inplace(a64, x64)
            for a in range(k):
                factors[u, a] = x64[a]
            bias[u] = x64[k]


@njit(cache=True, fastmath=True, error_model="numpy")
def _apply_z(zt: NDArray[np.float32], n: int, x: NDArray[np.float32], out: NDArray[np.float32]) -> None:
    # out[j] += z_j . x with z_j = [v_j, 1]: axpys along the ratings, no reductions.
    k = zt.shape[0]
    xb = x[k]
    for j in range(n):
        out[j] += xb
    for a in range(k):
        row = zt[a]
        xa = x[a]
        for j in range(n):
            out[j] += row[j] * xa


@njit(cache=True, fastmath=True, error_model="numpy")
def _apply_zt(zt: NDArray[np.float32], n: int, d: NDArray[np.float32], out: NDArray[np.float32]) -> None:
    # out = Z^T d: one long dot product per feature, plus sum(d) for the bias.
    k = zt.shape[0]
    for a in range(k):
        row = zt[a]
        acc = np.float32(0.0)
        for j in range(n):
            acc += row[j] * d[j]
        out[a] = acc
    acc = np.float32(0.0)
    for j in range(n):
        acc += d[j]
    out[k] = acc


@njit(cache=True, parallel=True, fastmath=True, nogil=True, error_model="numpy")
def half_step_cg(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    mu: float,
    other_bias: NDArray[np.float32],
    other_factors: NDArray[np.float32],
    factors: NDArray[np.float32],
    bias: NDArray[np.float32],
    reg_factors: NDArray[np.float64],
    reg_bias: NDArray[np.float64],
    cg_steps: int,
    chunk_bounds: NDArray[np.int64],
) -> None:
    """Inexact ALS half step: ``cg_steps`` conjugate-gradient steps per row.

    Same system as :func:`half_step_cholesky`, ``A x = Z^T t`` with
    ``A = Z^T Z + Lambda_u``, but ``A p`` is applied as
    ``Z^T (Z p) + Lambda_u p`` in O(n_u k) without forming the Gram
    (Takacs, Pilaszy & Tikk, RecSys 2011). CG is warm-started from the current
    ``[w_u, b_u]``; each step is an exact line search on the row's quadratic,
    so the objective never increases, and ``cg_steps >= k + 1`` is the exact
    solve up to round-off. The row's vectors are gathered once, transposed
    (features x ratings), so ``Z p`` and ``Z^T d`` are long contiguous loops
    over cache-resident memory.
    """
    k = other_factors.shape[1]
    k1 = k + 1
    n_chunks = chunk_bounds.shape[0] - 1
    for c in prange(n_chunks):
        longest = 1
        for u in range(chunk_bounds[c], chunk_bounds[c + 1]):
            longest = max(longest, indptr[u + 1] - indptr[u])
        zt = np.empty((k, longest), dtype=np.float32)
        d = np.empty(longest, dtype=np.float32)
        x = np.empty(k1, dtype=np.float32)
        r = np.empty(k1, dtype=np.float32)
        p = np.empty(k1, dtype=np.float32)
        ap = np.empty(k1, dtype=np.float32)
        lam = np.empty(k1, dtype=np.float32)
        for u in range(chunk_bounds[c], chunk_bounds[c + 1]):
            start = indptr[u]
            n = indptr[u + 1] - start
            if n == 0:
                factors[u, :] = 0.0
                bias[u] = 0.0
                continue
            lam[:k] = reg_factors[u]
            lam[k] = reg_bias[u]
            x[:k] = factors[u]
            x[k] = bias[u]
            gather_transposed(indices, start, n, other_factors, zt)
            # Residual r = Z^T (t - Z x) - Lambda x, with d = -(Z x) + t.
            for j in range(n):
                d[j] = -(ratings[start + j] - mu - other_bias[indices[start + j]])
            _apply_z(zt, n, x, d)
            for j in range(n):
                d[j] = -d[j]
            _apply_zt(zt, n, d, r)
            rs_old = np.float32(0.0)
            for a in range(k1):
                r[a] -= lam[a] * x[a]
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(cg_steps):
                if rs_old < 1e-20:
                    break  # converged; another step would divide by ~0
                d[:n] = 0.0
                _apply_z(zt, n, p, d)
                _apply_zt(zt, n, d, ap)
                pap = np.float32(0.0)
                for a in range(k1):
                    ap[a] += lam[a] * p[a]
                    pap += p[a] * ap[a]
                if pap <= 0.0:
                    break  # A is positive definite; only round-off gets here
                step = rs_old / pap
                rs_new = np.float32(0.0)
                for a in range(k1):
                    x[a] += step * p[a]
                    r[a] -= step * ap[a]
                    rs_new += r[a] * r[a]
                beta = rs_new / rs_old
                for a in range(k1):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new
            factors[u, :] = x[:k]
            bias[u] = x[k]


@njit(cache=True, parallel=True, nogil=True)
def row_squared_errors(
    indptr: NDArray[np.integer],
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    mu: float,
    row_bias: NDArray[np.float32],
    row_factors: NDArray[np.float32],
    col_bias: NDArray[np.float32],
    col_factors: NDArray[np.float32],
    out: NDArray[np.float64],
) -> None:
    """``out[u] = sum_i (r_ui - mu - b_u - c_i - w_u . v_i)^2`` in float64, per row.

    Per-row sums (added up by the caller) keep the total independent of how
    rows are split among threads.
    """
    k = row_factors.shape[1]
    for u in prange(indptr.shape[0] - 1):
        acc = 0.0
        for jj in range(indptr[u], indptr[u + 1]):
            i = indices[jj]
            e = np.float64(ratings[jj]) - mu - np.float64(row_bias[u]) - np.float64(col_bias[i])
            for a in range(k):
                e -= np.float64(row_factors[u, a]) * np.float64(col_factors[i, a])
            acc += e * e
        out[u] = acc
