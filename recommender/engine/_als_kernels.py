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

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray

#: Ratings ahead of the one being gathered whose vectors are prefetched: two
#: blocks of eight, about the time a block's residual takes (~100 ns), which
#: is a miss's latency when the other side's vectors do not fit in L2.
PREFETCH_AHEAD = 16


@intrinsic
def prefetch_row(typingctx: Any, array: Any, row: Any) -> Any:
    """Hint the CPU to load row ``row`` of a C-contiguous 2-D array (``llvm.prefetch``).

    A gather of vectors scattered over a table larger than L2 stalls on every
    miss; prefetching the vectors of the ratings ``PREFETCH_AHEAD`` further on
    overlaps those misses with the arithmetic (the item half step at 5M
    ratings, whose user table is 9 MB, gathers twice as fast). Only a hint: no
    effect on results, and an address past the row is never dereferenced.
    """
    if not (isinstance(array, types.Array) and array.ndim == 2 and isinstance(row, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        array_value, row_value = args
        ary = context.make_array(array_type)(context, builder, array_value)
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        row64 = builder.sext(row_value, i64) if row_value.type.width < 64 else row_value
        row_stride = cgutils.unpack_tuple(builder, ary.strides)[0]
        address = builder.add(builder.ptrtoint(ary.data, i64), builder.mul(row64, row_stride))
        row_bytes = builder.mul(
            cgutils.unpack_tuple(builder, ary.shape)[1],
            ir.Constant(i64, context.get_abi_sizeof(ary.data.type.pointee)),
        )
        i8p = ir.IntType(8).as_pointer()
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), row_bytes, ir.Constant(i64, 64), i64) as (
            offset,
            _,
        ):
            line = builder.inttoptr(builder.add(address, offset), i8p)
            builder.call(prefetch, [line, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return types.void(array, row), codegen


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


@njit(cache=True, fastmath=True, error_model="numpy")
def row_penalty(w: NDArray[np.float32], b: float, reg_w: float, reg_b: float) -> float:
    """``reg_w |w|^2 + reg_b b^2`` in float64: a row's part of the penalty in J."""
    acc = 0.0
    for a in range(w.shape[0]):
        acc += np.float64(w[a]) * np.float64(w[a])
    return reg_w * acc + reg_b * np.float64(b) * np.float64(b)


@njit(cache=True, fastmath=True, error_model="numpy")
def row_squared_errors_direct(
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    start: int,
    n: int,
    mu: float,
    other_bias: NDArray[np.float32],
    other_factors: NDArray[np.float32],
    w: NDArray[np.float32],
    b: float,
) -> float:
    """``sum_j (r_uj - mu - c_j - b_u - v_j . w_u)^2`` of one row, in float64.

    The arithmetic of :func:`row_squared_errors`, reading each ``v_j`` where it
    is stored (the exact solve has just read them, so they are in cache).
    """
    k = w.shape[0]
    b64 = np.float64(b)
    acc = 0.0
    for j in range(n):
        i = indices[start + j]
        v = other_factors[i]
        e = np.float64(ratings[start + j]) - mu - b64 - np.float64(other_bias[i])
        for a in range(k):
            e -= np.float64(v[a]) * np.float64(w[a])
        acc += e * e
    return acc


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
    row_objective: NDArray[np.float64],
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
    allocated once per chunk, never per row. If ``row_objective`` has one
    entry per row, it receives the row's part of the objective J at the new
    ``[w_u, b_u]``: its squared errors (:func:`row_squared_errors_direct`) and
    its penalty (:func:`row_penalty`).
    """
    k = other_factors.shape[1]
    kp = (k + 3) // 4 * 4
    n_chunks = chunk_bounds.shape[0] - 1
    want_objective = row_objective.shape[0] > 0
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
                if want_objective:
                    row_objective[u] = 0.0
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
            if want_objective:
                row_objective[u] = row_squared_errors_direct(
                    indices, ratings, start, n, mu, other_bias, other_factors, factors[u], bias[u]
                ) + row_penalty(factors[u], bias[u], reg_factors[u], reg_bias[u])


# Inlined by numba: as a call, passing the array views made the passes 20 % slower.
@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def residual_block(
    z: NDArray[np.float32],
    j: int,
    t: NDArray[np.float32],
    x: NDArray[np.float32],
    xb: float | np.float32,
    out: NDArray[np.float32],
) -> np.float32:
    """Ratings ``j .. j+7`` of :func:`residual_normal_product`: ``out += sum e_q v_q``, returns ``sum e_q``.

    Eight dot products at once share the loads of ``x``, and ``out`` is
    loaded and stored once for the eight ratings instead of eight times.
    """
    k = z.shape[1]
    z0 = z[j]
    z1 = z[j + 1]
    z2 = z[j + 2]
    z3 = z[j + 3]
    z4 = z[j + 4]
    z5 = z[j + 5]
    z6 = z[j + 6]
    z7 = z[j + 7]
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    s4 = np.float32(0.0)
    s5 = np.float32(0.0)
    s6 = np.float32(0.0)
    s7 = np.float32(0.0)
    for a in range(k):
        xa = x[a]
        s0 += z0[a] * xa
        s1 += z1[a] * xa
        s2 += z2[a] * xa
        s3 += z3[a] * xa
        s4 += z4[a] * xa
        s5 += z5[a] * xa
        s6 += z6[a] * xa
        s7 += z7[a] * xa
    e0 = t[j] - xb - s0
    e1 = t[j + 1] - xb - s1
    e2 = t[j + 2] - xb - s2
    e3 = t[j + 3] - xb - s3
    e4 = t[j + 4] - xb - s4
    e5 = t[j + 5] - xb - s5
    e6 = t[j + 6] - xb - s6
    e7 = t[j + 7] - xb - s7
    for a in range(k):
        out[a] += (e0 * z0[a] + e1 * z1[a] + e2 * z2[a] + e3 * z3[a]) + (
            e4 * z4[a] + e5 * z5[a] + e6 * z6[a] + e7 * z7[a]
        )
    return ((e0 + e1) + (e2 + e3)) + ((e4 + e5) + (e6 + e7))


# Inlined by numba: as a call, passing the array views made the passes 20 % slower.
@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def residual_row(
    z: NDArray[np.float32],
    j: int,
    t: NDArray[np.float32],
    x: NDArray[np.float32],
    xb: float | np.float32,
    out: NDArray[np.float32],
) -> np.float32:
    """Rating ``j`` alone (the last ``n % 8``): ``out += e_j v_j``, returns ``e_j``."""
    k = z.shape[1]
    zj = z[j]
    s = np.float32(0.0)
    for a in range(k):
        s += zj[a] * x[a]
    e = t[j] - xb - s
    for a in range(k):
        out[a] += e * zj[a]
    return e


@njit(cache=True, fastmath=True, error_model="numpy")
def residual_normal_product(
    z: NDArray[np.float32],
    t: NDArray[np.float32],
    n: int,
    x: NDArray[np.float32],
    xb: float | np.float32,
    out: NDArray[np.float32],
) -> np.float32:
    """``out = V^T e`` and return ``sum(e)``, i.e. ``Z^T e`` for ``e = t - Z [x, xb]``, ``Z = [V, 1]``.

    One pass over the gathered rows ``z[:n]``: each rating's residual
    ``e_j = t_j - v_j . x - xb`` and its contribution ``e_j v_j`` are computed
    while ``v_j`` is in L1, eight ratings per block (:func:`residual_block`).
    With ``t = 0`` this is ``-Z^T Z [x, xb]``, the CG matrix product.
    """
    out[:] = 0.0
    e_sum = np.float32(0.0)
    j = 0
    while j + 8 <= n:
        e_sum += residual_block(z, j, t, x, xb, out)
        j += 8
    while j < n:
        e_sum += residual_row(z, j, t, x, xb, out)
        j += 1
    return e_sum


# Inlined by numba: as a call, passing the array views made the passes 20 % slower.
@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def gather_row(
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    start: int,
    j: int,
    mu: float,
    other_bias: NDArray[np.float32],
    other_factors: NDArray[np.float32],
    z: NDArray[np.float32],
    t: NDArray[np.float32],
) -> None:
    """``z[j] = v_i`` and ``t[j] = r_ui - mu - c_i`` for the row's ``j``-th rating (item ``i``)."""
    i = indices[start + j]
    src = other_factors[i]
    dst = z[j]
    for a in range(src.shape[0]):  # an explicit loop: a slice assignment costs ~4x more per row
        dst[a] = src[a]
    t[j] = ratings[start + j] - mu - other_bias[i]


@njit(cache=True, fastmath=True, error_model="numpy")
def gather_residual(
    indices: NDArray[np.integer],
    ratings: NDArray[np.float32],
    start: int,
    n: int,
    mu: float,
    other_bias: NDArray[np.float32],
    other_factors: NDArray[np.float32],
    z: NDArray[np.float32],
    t: NDArray[np.float32],
    x: NDArray[np.float32],
    out: NDArray[np.float32],
    column_sum: NDArray[np.float32],
) -> tuple[np.float32, np.float32]:
    """Gather a row's ratings and compute its starting residual in the same pass.

    Fills ``z[:n]`` with the rated vectors ``v_j`` (whole rows copied as they
    are: 2.5x faster than the transposed gather of :func:`gather_transposed`,
    which scatters each vector over k cache lines) and ``t[:n]`` with
    ``r_j - mu - c_j``; sets ``column_sum = V^T 1`` and ``out = V^T (t - V x)``;
    returns ``(sum t, sum (t - V x))``. Eight ratings at a time are copied and
    then used while they are still in L1, so the residual costs no second
    read of the gathered block.
    """
    k = z.shape[1]
    out[:] = 0.0
    column_sum[:] = 0.0
    t_sum = np.float32(0.0)
    e_sum = np.float32(0.0)
    zero = np.float32(0.0)
    j = 0
    while j + 8 <= n:
        for q in range(j, j + 8):
            if q + PREFETCH_AHEAD < n:
                prefetch_row(other_factors, indices[start + q + PREFETCH_AHEAD])  # type: ignore[call-arg]
            gather_row(indices, ratings, start, q, mu, other_bias, other_factors, z, t)
        z0 = z[j]
        z1 = z[j + 1]
        z2 = z[j + 2]
        z3 = z[j + 3]
        z4 = z[j + 4]
        z5 = z[j + 5]
        z6 = z[j + 6]
        z7 = z[j + 7]
        for a in range(k):
            column_sum[a] += ((z0[a] + z1[a]) + (z2[a] + z3[a])) + ((z4[a] + z5[a]) + (z6[a] + z7[a]))
        t_sum += ((t[j] + t[j + 1]) + (t[j + 2] + t[j + 3])) + ((t[j + 4] + t[j + 5]) + (t[j + 6] + t[j + 7]))
        e_sum += residual_block(z, j, t, x, zero, out)
        j += 8
    while j < n:
        gather_row(indices, ratings, start, j, mu, other_bias, other_factors, z, t)
        zj = z[j]
        for a in range(k):
            column_sum[a] += zj[a]
        t_sum += t[j]
        e_sum += residual_row(z, j, t, x, zero, out)
        j += 1
    return t_sum, e_sum


@njit(cache=True, fastmath=True, error_model="numpy")
def squared_residuals(
    z: NDArray[np.float32], t: NDArray[np.float32], n: int, x: NDArray[np.float32], xb: float | np.float32
) -> float:
    """``sum_j (t_j - v_j . x - xb)^2`` over the gathered rows ``z[:n]``, summed in float64.

    The dot products are float32 (eight ratings per block, as in
    :func:`residual_normal_product`); each residual is formed and squared in
    float64. Against the all-float64 :func:`row_squared_errors` this differs
    by about 1e-7 relative (float32 round-off of the dots and of ``t``), at a
    third of its cost.
    """
    k = z.shape[1]
    xb64 = np.float64(xb)
    acc = 0.0
    j = 0
    while j + 8 <= n:
        z0 = z[j]
        z1 = z[j + 1]
        z2 = z[j + 2]
        z3 = z[j + 3]
        z4 = z[j + 4]
        z5 = z[j + 5]
        z6 = z[j + 6]
        z7 = z[j + 7]
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        s3 = np.float32(0.0)
        s4 = np.float32(0.0)
        s5 = np.float32(0.0)
        s6 = np.float32(0.0)
        s7 = np.float32(0.0)
        for a in range(k):
            xa = x[a]
            s0 += z0[a] * xa
            s1 += z1[a] * xa
            s2 += z2[a] * xa
            s3 += z3[a] * xa
            s4 += z4[a] * xa
            s5 += z5[a] * xa
            s6 += z6[a] * xa
            s7 += z7[a] * xa
        e0 = np.float64(t[j]) - xb64 - np.float64(s0)
        e1 = np.float64(t[j + 1]) - xb64 - np.float64(s1)
        e2 = np.float64(t[j + 2]) - xb64 - np.float64(s2)
        e3 = np.float64(t[j + 3]) - xb64 - np.float64(s3)
        e4 = np.float64(t[j + 4]) - xb64 - np.float64(s4)
        e5 = np.float64(t[j + 5]) - xb64 - np.float64(s5)
        e6 = np.float64(t[j + 6]) - xb64 - np.float64(s6)
        e7 = np.float64(t[j + 7]) - xb64 - np.float64(s7)
        acc += ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7))
        j += 8
    while j < n:
        zj = z[j]
        s = np.float32(0.0)
        for a in range(k):
            s += zj[a] * x[a]
        e = np.float64(t[j]) - xb64 - np.float64(s)
        acc += e * e
        j += 1
    return acc


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
    row_objective: NDArray[np.float64],
) -> None:
    """Inexact ALS half step: ``cg_steps`` conjugate-gradient steps per row, bias eliminated.

    Same system as :func:`half_step_cholesky`. With ``V`` the row's vectors,
    ``s = V^T 1``, ``m = n_u + lambda_b`` and ``t`` the targets, the bias row of
    ``[[V^T V + lambda I, s], [s^T, m]] [w; b] = [V^T t; sum t]`` gives
    ``b = (sum t - s . w) / m``; substituting it leaves the Schur complement::

        S w = V^T t - s (sum t) / m,    S = V^T V + lambda I - s s^T / m

    CG runs on that k x k system, warm-started from the current ``w_u``, and
    ``b_u`` is then the exact bias for the new ``w_u``. ``S p`` is applied as
    ``V^T (V p) + lambda p - s (s . p) / m`` in O(n_u k) without forming the
    Gram (Takacs, Pilaszy & Tikk, RecSys 2011). Removing the bias also removes
    the augmented system's one large eigenvalue (~ n_u, along the mean
    vector), which CG would spend a step on: 2 steps here reach the objective
    that 3 steps on the augmented system did (``bench/bench_als.py`` notes).
    Every step is an exact line search on ``min_b J_u(w, b)``, so J never
    increases, and ``cg_steps >= k`` is the exact solve up to round-off.

    The row's vectors are gathered once, together with the starting residual
    and ``s`` (:func:`gather_residual`); every CG product is then one pass
    over that cache-resident block (:func:`residual_normal_product`), 2 k
    multiply-adds per rating. If ``row_objective`` has one entry per row, it
    receives the row's part of the objective J at the new ``[w_u, b_u]``, from
    one more pass over the gathered block (:func:`squared_residuals`,
    :func:`row_penalty`).
    """
    k = other_factors.shape[1]
    n_chunks = chunk_bounds.shape[0] - 1
    want_objective = row_objective.shape[0] > 0
    for c in prange(n_chunks):
        longest = 1
        for u in range(chunk_bounds[c], chunk_bounds[c + 1]):
            longest = max(longest, indptr[u + 1] - indptr[u])
        z = np.empty((longest, k), dtype=np.float32)
        t = np.empty(longest, dtype=np.float32)
        zeros = np.zeros(longest, dtype=np.float32)
        s = np.empty(k, dtype=np.float32)
        x = np.empty(k, dtype=np.float32)
        r = np.empty(k, dtype=np.float32)
        p = np.empty(k, dtype=np.float32)
        ap = np.empty(k, dtype=np.float32)
        zero = np.float32(0.0)  # a float64 literal would make the passes float64
        for u in range(chunk_bounds[c], chunk_bounds[c + 1]):
            start = indptr[u]
            n = indptr[u + 1] - start
            if n == 0:
                factors[u, :] = 0.0
                bias[u] = 0.0
                if want_objective:
                    row_objective[u] = 0.0
                continue
            lam = np.float32(reg_factors[u])
            inv_m = np.float32(1.0 / (n + reg_bias[u]))  # 1 / (n + lambda_b), the bias pivot
            x[:] = factors[u]
            # r = g - S x = V^T (t - V x) - lambda x - s (sum t - s . x) / m.
            t_sum, e_sum = gather_residual(
                indices, ratings, start, n, mu, other_bias, other_factors, z, t, x, r, s
            )
            e_sum *= inv_m
            rs_old = np.float32(0.0)
            for a in range(k):
                r[a] -= lam * x[a] + s[a] * e_sum
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(cg_steps):
                if rs_old < 1e-20:
                    break  # converged; another step would divide by ~0
                # S p = V^T V p + lambda p - s (s . p) / m; the pass with t = 0 and
                # xb = 0 gives -V^T V p and returns -s . p.
                sp = -residual_normal_product(z, zeros, n, p, zero, ap) * inv_m
                pap = np.float32(0.0)
                for a in range(k):
                    ap[a] = lam * p[a] - ap[a] - s[a] * sp
                    pap += p[a] * ap[a]
                if pap <= 0.0:
                    break  # S is positive definite; only round-off gets here
                step = rs_old / pap
                rs_new = np.float32(0.0)
                for a in range(k):
                    x[a] += step * p[a]
                    r[a] -= step * ap[a]
                    rs_new += r[a] * r[a]
                beta = rs_new / rs_old
                for a in range(k):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new
            # The bias that is optimal for the new vector.
            sx = np.float32(0.0)
            for a in range(k):
                sx += s[a] * x[a]
            xb = (t_sum - sx) * inv_m
            factors[u, :] = x
            bias[u] = xb
            if want_objective:
                row_objective[u] = squared_residuals(z, t, n, x, xb) + row_penalty(
                    factors[u], bias[u], reg_factors[u], reg_bias[u]
                )


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
