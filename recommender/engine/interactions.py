"""User-item interaction data as sparse matrices with id vocabularies.

Raw ids (ints or strings) are mapped to dense indices ``0..n-1`` through sorted
vocabularies, so mapping is a vectorized ``searchsorted`` rather than a Python
dict lookup per rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray


class EmptyInteractionsError(ValueError):
    """Raised when a model is asked to learn from no ratings at all."""


def _as_id_array(ids: ArrayLike) -> NDArray[Any]:
    arr = np.asarray(ids)
    if arr.dtype.kind in "US":
        # Fixed-width unicode sorts and compares fine and is much faster than object.
        return arr
    if arr.dtype.kind == "O":
        # Mixed or string objects: compare as strings so sorting is well defined.
        return arr.astype(str)
    return arr


def unique_inverse(ids: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """``np.unique(ids, return_inverse=True)``: the sorted distinct ids and each id's position.

    Integer ids spanning at most a few times their count (database keys) take
    an O(n) path: mark the ids present in a table of the span, and a running
    count of the table gives each id its position. ``np.unique`` sorts,
    O(n log n): 2.9 s for 20M ids against 0.3 s here.
    """
    if ids.dtype.kind in "iu" and ids.size:
        low, high = int(ids.min()), int(ids.max())
        span = high - low + 1
        if span <= 4 * ids.size + 1024:
            offsets = ids.astype(np.int64) - low
            present = np.zeros(span, dtype=bool)
            present[offsets] = True
            position = np.cumsum(present, dtype=np.int64) - 1
            vocabulary = (np.flatnonzero(present) + low).astype(ids.dtype)
            return vocabulary, position[offsets]
    vocabulary, inverse = np.unique(ids, return_inverse=True)
    return vocabulary, inverse.astype(np.int64).ravel()


def stable_order(
    user_idx: NDArray[np.integer[Any]], item_idx: NDArray[np.integer[Any]], n_users: int, n_items: int
) -> NDArray[np.int64] | None:
    """``np.argsort(user_idx * n_items + item_idx, kind="stable")``, or None if already strictly sorted.

    Two counting-sort passes (by item, then stably by user: a least-significant
    digit radix sort), O(n + n_users + n_items) instead of a comparison sort's
    O(n log n): 0.6 s for 20M ratings against 3.7 s. An export read in
    (user, item) order, as a fresh import leaves the table, is only checked.
    """
    for name, idx, n in (("user", user_idx, n_users), ("item", item_idx, n_items)):
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError(f"{name} indices must be in 0..{n - 1}")
    key = user_idx * max(n_items, 1) + item_idx
    if key.size < 2 or bool(np.all(key[1:] > key[:-1])):
        return None
    if max(n_users, n_items) > 4 * key.size + 1024:
        # Indices far sparser than the rows (raw database ids): tables of counts that
        # large would cost more than the comparison sort.
        return np.argsort(key, kind="stable")
    from ._sort_kernels import counting_sort  # numba: loaded when first needed, not with the settings

    by_item = counting_sort(item_idx, max(n_items, 1), np.arange(key.size, dtype=np.int64))
    return counting_sort(user_idx, max(n_users, 1), by_item)


def _lookup(vocabulary: NDArray[Any], raw: ArrayLike) -> NDArray[np.int64]:
    """Indices of ``raw`` in the sorted ``vocabulary``; -1 where absent."""
    raw_arr = np.atleast_1d(np.asarray(raw))
    if vocabulary.size == 0:
        return np.full(raw_arr.shape, -1, dtype=np.int64)
    if vocabulary.dtype.kind in "US" and raw_arr.dtype.kind not in "US":
        raw_arr = raw_arr.astype(str)
    elif vocabulary.dtype.kind in "iuf" and raw_arr.dtype.kind in "USO":
        # A string id can never match an integer vocabulary entry.
        try:
            raw_arr = raw_arr.astype(vocabulary.dtype)
        except (TypeError, ValueError):
            return np.full(raw_arr.shape, -1, dtype=np.int64)
    pos = np.searchsorted(vocabulary, raw_arr)
    pos_clipped = np.minimum(pos, vocabulary.size - 1)
    found = vocabulary[pos_clipped] == raw_arr
    return np.where(found, pos_clipped, -1).astype(np.int64)


@dataclass(eq=False)
class Interactions:
    """Explicit ratings as a users x items sparse matrix.

    Attributes:
        user_ids: sorted array of raw user ids; row ``u`` of ``csr`` is ``user_ids[u]``.
        item_ids: sorted array of raw item ids; column ``i`` is ``item_ids[i]``.
        csr: ratings, ``float32`` data and ``int32`` indices, users x items.
        csc: the same matrix in column-major form (fast per-item access).
        timestamps: optional ``int64`` timestamps aligned with ``csr.data``.
    """

    user_ids: NDArray[Any]
    item_ids: NDArray[Any]
    csr: sp.csr_matrix
    csc: sp.csc_matrix = field(repr=False)
    timestamps: NDArray[np.int64] | None = field(default=None, repr=False)

    @classmethod
    def from_arrays(
        cls,
        user_ids: ArrayLike,
        item_ids: ArrayLike,
        ratings: ArrayLike,
        timestamps: ArrayLike | None = None,
        *,
        user_vocabulary: ArrayLike | None = None,
        item_vocabulary: ArrayLike | None = None,
    ) -> Interactions:
        """Build from parallel arrays of raw ids and ratings (O(nnz) for integer ids of a compact range).

        Duplicate (user, item) pairs keep the **last** rating in input order.
        ``user_vocabulary`` / ``item_vocabulary`` fix the index space (for
        train/test splits sharing one id mapping); ids outside them raise.
        """
        users = _as_id_array(user_ids).ravel()
        items = _as_id_array(item_ids).ravel()
        values = np.asarray(ratings, dtype=np.float32).ravel()
        if not (users.shape == items.shape == values.shape):
            raise ValueError(
                f"user_ids, item_ids and ratings must have the same length, got "
                f"{users.shape[0]}, {items.shape[0]} and {values.shape[0]}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("ratings contain NaN or infinite values")
        ts = None
        if timestamps is not None:
            ts = np.asarray(timestamps, dtype=np.int64).ravel()
            if ts.shape != values.shape:
                raise ValueError("timestamps must have the same length as ratings")

        if user_vocabulary is None:
            user_vocab, user_idx = unique_inverse(users)
        else:
            user_vocab = np.unique(_as_id_array(user_vocabulary))
            user_idx = _lookup(user_vocab, users)
            if np.any(user_idx < 0):
                raise ValueError("user_ids contain ids outside user_vocabulary")
        if item_vocabulary is None:
            item_vocab, item_idx = unique_inverse(items)
        else:
            item_vocab = np.unique(_as_id_array(item_vocabulary))
            item_idx = _lookup(item_vocab, items)
            if np.any(item_idx < 0):
                raise ValueError("item_ids contain ids outside item_vocabulary")
        return cls.from_indices(
            user_idx.astype(np.int64),
            item_idx.astype(np.int64),
            values,
            ts,
            user_ids=user_vocab,
            item_ids=item_vocab,
        )

    @classmethod
    def from_indices(
        cls,
        user_idx: NDArray[np.integer[Any]],
        item_idx: NDArray[np.integer[Any]],
        ratings: NDArray[np.floating[Any]],
        timestamps: NDArray[np.int64] | None,
        *,
        user_ids: NDArray[Any],
        item_ids: NDArray[Any],
    ) -> Interactions:
        """Build from dense indices into the given (sorted) vocabularies."""
        n_users, n_items = len(user_ids), len(item_ids)
        user_idx = np.asarray(user_idx, dtype=np.int64)
        item_idx = np.asarray(item_idx, dtype=np.int64)
        values = np.asarray(ratings, dtype=np.float32)
        # Last-wins dedupe: a stable sort by (user, item) key keeps input order
        # within equal keys, so the last element of each run is the latest write.
        order = stable_order(user_idx, item_idx, n_users, n_items)
        keep: NDArray[np.int64] | slice
        if order is None:  # already sorted, no duplicates
            keep = slice(None)
        else:
            from ._sort_kernels import last_of_runs

            keep = last_of_runs(order, user_idx, item_idx)
            del order
        # Copies even when nothing moves: the matrix must not share the caller's arrays.
        rows, cols, data = user_idx[keep], item_idx[keep], values[keep].copy()
        # keep is sorted by (row, col): build CSR arrays directly.
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        index_dtype = np.int32 if max(len(data), n_items, n_users) < 2**31 - 1 else np.int64
        csr = sp.csr_matrix(
            (data, cols.astype(index_dtype), indptr.astype(index_dtype)),
            shape=(n_users, n_items),
        )
        csr.has_sorted_indices = True
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[keep].copy()
        return cls(
            user_ids=user_ids,
            item_ids=item_ids,
            csr=csr,
            csc=csr.tocsc(),
            timestamps=ts,
        )

    # ---- shape -----------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self.csr.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.csr.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.csr.nnz)

    def __len__(self) -> int:
        return self.nnz

    # ---- id mapping ------------------------------------------------------
    def user_index(self, raw_user_ids: ArrayLike) -> NDArray[np.int64]:
        """Dense indices of raw user ids; -1 for users not in the vocabulary."""
        return _lookup(self.user_ids, raw_user_ids)

    def item_index(self, raw_item_ids: ArrayLike) -> NDArray[np.int64]:
        """Dense indices of raw item ids; -1 for items not in the vocabulary."""
        return _lookup(self.item_ids, raw_item_ids)

    # ---- coordinate view -------------------------------------------------
    def to_coo_arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
        """(user_idx, item_idx, rating) triples in CSR order."""
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.csr.indptr))
        return rows, self.csr.indices.astype(np.int64), self.csr.data

    def to_raw_arrays(self) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float32]]:
        """(raw user id, raw item id, rating) triples in CSR order."""
        rows, cols, data = self.to_coo_arrays()
        return self.user_ids[rows], self.item_ids[cols], data

    def select(self, mask_or_index: NDArray[Any]) -> Interactions:
        """A subset of the ratings (in CSR order) over the **same** vocabularies.

        Used by splits: train and test share one index space, so a model fitted
        on the train part can be evaluated on test indices directly.
        """
        mask = np.asarray(mask_or_index)
        if mask.dtype == np.bool_ and mask.shape == (self.nnz,):
            # A mask keeps CSR order and uniqueness: slice the arrays, count per row.
            kept_before = np.zeros(self.nnz + 1, dtype=np.int64)
            np.cumsum(mask, out=kept_before[1:])
            csr = sp.csr_matrix(
                (
                    self.csr.data[mask],
                    self.csr.indices[mask],
                    kept_before[self.csr.indptr].astype(self.csr.indptr.dtype),
                ),
                shape=self.csr.shape,
            )
            csr.has_sorted_indices = True
            return Interactions(
                user_ids=self.user_ids,
                item_ids=self.item_ids,
                csr=csr,
                csc=csr.tocsc(),
                timestamps=None if self.timestamps is None else self.timestamps[mask],
            )
        rows, cols, data = self.to_coo_arrays()
        ts = None if self.timestamps is None else self.timestamps[mask_or_index]
        return Interactions.from_indices(
            rows[mask_or_index],
            cols[mask_or_index],
            data[mask_or_index],
            ts,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
        )

    @property
    def rating_scale(self) -> tuple[float, float]:
        """(min, max) rating observed; predictions are clipped to this range."""
        if self.nnz == 0:
            raise EmptyInteractionsError("no ratings")
        return float(self.csr.data.min()), float(self.csr.data.max())
