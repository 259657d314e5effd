"""Train/test splits: partition properties and agreement with per-user reference loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.engine import Interactions
from recommender.engine.split import _rank_within_user, kfold, per_user_split, random_split, temporal_split


def make_data(seed: int = 0, n_users: int = 30, n_items: int = 40, n: int = 500) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n) * 7 + 3  # raw ids are not indices
    items = rng.integers(0, n_items, n) * 5 + 1
    ratings = rng.integers(1, 6, n).astype(np.float32)
    # Few distinct timestamps, so ties inside a user are common.
    timestamps = rng.integers(0, 20, n)
    return Interactions.from_arrays(users, items, ratings, timestamps)


def quads(data: Interactions) -> list[tuple[int, int, float, int]]:
    rows, cols, vals = data.to_coo_arrays()
    ts = data.timestamps if data.timestamps is not None else np.zeros(len(vals), dtype=np.int64)
    return sorted(zip(rows.tolist(), cols.tolist(), vals.tolist(), ts.tolist(), strict=True))


def assert_partition(data: Interactions, train: Interactions, test: Interactions) -> None:
    np.testing.assert_array_equal(train.user_ids, data.user_ids)
    np.testing.assert_array_equal(test.item_ids, data.item_ids)
    assert train.nnz + test.nnz == data.nnz
    assert sorted(quads(train) + quads(test)) == quads(data)
    train_pairs = {(u, i) for u, i, _, _ in quads(train)}
    assert not any((u, i) in train_pairs for u, i, _, _ in quads(test))


def per_user_counts(data: Interactions) -> np.ndarray:
    return np.diff(data.csr.indptr)


def test_random_split_is_a_seeded_partition_of_the_requested_size() -> None:
    data = make_data()
    train, test = random_split(data, test_fraction=0.25, random_state=1)
    assert_partition(data, train, test)
    assert test.nnz == round(0.25 * data.nnz)
    _, test2 = random_split(data, test_fraction=0.25, random_state=1)
    assert quads(test2) == quads(test)
    _, test3 = random_split(data, test_fraction=0.25, random_state=2)
    assert quads(test3) != quads(test)


@pytest.mark.parametrize("dtype", [np.int64, np.float64])  # int: the lexsort; float: the per-run sorts
def test_rank_within_user_matches_per_user_sort(dtype: type) -> None:
    data = make_data(3)
    keys: np.ndarray = np.random.default_rng(0).integers(0, 4, data.nnz).astype(dtype)  # many ties
    ranks = _rank_within_user(data, keys)
    indptr = data.csr.indptr
    for u in range(data.n_users):
        run = keys[indptr[u] : indptr[u + 1]]
        # Reference: stable sort inside the user; ties keep CSR (item) order.
        expected = np.empty(run.shape[0], dtype=np.int64)
        expected[np.argsort(run, kind="stable")] = np.arange(run.shape[0])
        np.testing.assert_array_equal(ranks[indptr[u] : indptr[u + 1]], expected)


@pytest.mark.parametrize(("fraction", "min_train"), [(0.2, 1), (0.5, 3), (0.9, 1)])
def test_per_user_split_counts_match_reference(fraction: float, min_train: int) -> None:
    data = make_data(1)
    train, test = per_user_split(data, test_fraction=fraction, min_train=min_train, random_state=0)
    assert_partition(data, train, test)
    n_u = per_user_counts(data)
    for u in range(data.n_users):
        expected_test = min(int(np.floor(fraction * n_u[u] + 0.5)), max(n_u[u] - min_train, 0))
        assert per_user_counts(test)[u] == expected_test
        assert per_user_counts(train)[u] == n_u[u] - expected_test


def test_per_user_split_is_random_within_user_and_seeded() -> None:
    data = make_data(2)
    _, a = per_user_split(data, 0.3, random_state=5)
    _, b = per_user_split(data, 0.3, random_state=5)
    _, c = per_user_split(data, 0.3, random_state=6)
    assert quads(a) == quads(b)
    assert quads(a) != quads(c)
    # Not simply "the first ratings of each user": some held-out item index
    # exceeds a kept one for the same user.
    train_part, test_part = per_user_split(data, 0.3, random_state=5)
    train, test = train_part.csr, test_part.csr
    assert any(
        test[u].indices.size and train[u].indices.size and test[u].indices.max() > train[u].indices.min()
        for u in range(data.n_users)
    )


def temporal_reference(data: Interactions, n_last: int, min_train: int) -> list[tuple[int, int, float, int]]:
    """Textbook loop: sort each user's ratings by (timestamp, item) descending, take the first ones."""
    out = []
    rows, cols, vals = data.to_coo_arrays()
    timestamps = data.timestamps
    assert timestamps is not None
    for u in range(data.n_users):
        idx = np.flatnonzero(rows == u)
        ranked = sorted(idx, key=lambda j: (int(timestamps[j]), int(cols[j])), reverse=True)
        take = min(n_last, max(len(idx) - min_train, 0))
        out += [(u, int(cols[j]), float(vals[j]), int(timestamps[j])) for j in ranked[:take]]
    return sorted(out)


@pytest.mark.parametrize(("n_last", "min_train"), [(1, 1), (3, 1), (5, 4)])
def test_temporal_split_matches_reference(n_last: int, min_train: int) -> None:
    data = make_data(4)
    train, test = temporal_split(data, n_last=n_last, min_train=min_train)
    assert_partition(data, train, test)
    assert quads(test) == temporal_reference(data, n_last, min_train)
    # Each user's test ratings are no older than any of their train ratings.
    for u in range(data.n_users):
        tr = [t for uu, _, _, t in quads(train) if uu == u]
        te = [t for uu, _, _, t in quads(test) if uu == u]
        if tr and te:
            assert min(te) >= max(tr)


def test_temporal_split_needs_timestamps() -> None:
    data = Interactions.from_arrays([1, 1, 2], [1, 2, 1], [3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="timestamps"):
        temporal_split(data)


def test_kfold_folds_are_disjoint_cover_everything_and_balanced() -> None:
    data = make_data(5)
    folds = list(kfold(data, k=4, random_state=0))
    assert len(folds) == 4
    tests = [quads(test) for _, test in folds]
    assert sorted(q for t in tests for q in t) == quads(data)
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert_partition(data, train, test)
    again = [quads(test) for _, test in kfold(data, k=4, random_state=0)]
    assert again == tests


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_invalid_fractions_are_rejected(fraction: float) -> None:
    data = make_data()
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(data, fraction)
    with pytest.raises(ValueError, match="test_fraction"):
        per_user_split(data, fraction)


def test_kfold_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        next(kfold(make_data(), k=1))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fraction=st.floats(0.05, 0.95),
    min_train=st.integers(0, 3),
)
def test_per_user_split_keeps_min_train_property(seed: int, fraction: float, min_train: int) -> None:
    data = make_data(seed, n_users=8, n_items=10, n=60)
    train, test = per_user_split(data, fraction, min_train=min_train, random_state=seed)
    n_u = per_user_counts(data)
    n_train = per_user_counts(train)
    assert np.all(n_train >= np.minimum(n_u, min_train))
    assert train.nnz + test.nnz == data.nnz


def test_selecting_by_mask_is_selecting_by_index() -> None:
    data = make_data(4)
    mask = np.random.default_rng(1).random(data.nnz) < 0.3
    by_mask, by_index = data.select(mask), data.select(np.flatnonzero(mask))
    assert quads(by_mask) == quads(by_index)
    assert (by_mask.csr != by_index.csr).nnz == 0 and (by_mask.csc != by_index.csc).nnz == 0
    np.testing.assert_array_equal(by_mask.csr.indptr, by_index.csr.indptr)
    assert by_mask.timestamps is not None and by_index.timestamps is not None
    np.testing.assert_array_equal(by_mask.timestamps, by_index.timestamps)
