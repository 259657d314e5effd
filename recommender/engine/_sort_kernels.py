"""Compiled passes of :mod:`.interactions` (a module of their own so that importing
the engine's data types, as the settings do, does not load numba)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def counting_sort(keys: NDArray[np.integer[Any]], n_keys: int, order: NDArray[np.int64]) -> NDArray[np.int64]:
    """``order`` stably re-sorted by ``keys[order]`` (keys in ``0..n_keys-1``): one counting-sort pass."""
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for j in order:
        starts[keys[j] + 1] += 1
    for key in range(n_keys):
        starts[key + 1] += starts[key]
    out = np.empty_like(order)
    for j in order:
        key = keys[j]
        out[starts[key]] = j
        starts[key] += 1
    return out


@njit(cache=True, nogil=True)
def last_of_runs(
    order: NDArray[np.int64], user_idx: NDArray[np.integer[Any]], item_idx: NDArray[np.integer[Any]]
) -> NDArray[np.int64]:
    """The entries of ``order`` (sorted by pair) that end a run of equal (user, item) pairs,
    in one pass: no sorted copies of the keys."""
    keep = np.empty_like(order)
    kept = 0
    for p in range(order.shape[0]):
        j = order[p]
        if p + 1 < order.shape[0]:
            following = order[p + 1]
            if user_idx[following] == user_idx[j] and item_idx[following] == item_idx[j]:
                continue
        keep[kept] = j
        kept += 1
    return keep[:kept].copy()
