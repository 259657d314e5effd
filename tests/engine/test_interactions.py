"""Interactions: id vocabularies, last-wins dedupe and the O(n) paths that build them."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine import Interactions
from recommender.engine.interactions import stable_order, unique_inverse


@pytest.mark.parametrize(
    "ids",
    [
        np.array([7, 3, 3, 9, 7, 100], dtype=np.int64),  # compact: the counting path
        np.array([5, -2, 5, 0, -2], dtype=np.int32),  # negative ids, int32 kept
        np.array([1, 10**12, 3, 10**12], dtype=np.int64),  # sparse span: np.unique's path
        np.array(["b", "a", "b"]),
        np.array([], dtype=np.int64),
    ],
)
def test_unique_inverse_is_numpys_unique(ids: np.ndarray) -> None:
    vocabulary, inverse = unique_inverse(ids)
    expected_vocabulary, expected_inverse = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(vocabulary, expected_vocabulary)
    assert vocabulary.dtype == expected_vocabulary.dtype
    np.testing.assert_array_equal(inverse, expected_inverse.ravel())
    np.testing.assert_array_equal(vocabulary[inverse], ids)


def test_unique_inverse_of_many_random_database_ids() -> None:
    ids = np.random.default_rng(0).integers(1, 50_000, 200_000)
    vocabulary, inverse = unique_inverse(ids)
    expected_vocabulary, expected_inverse = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(vocabulary, expected_vocabulary)
    np.testing.assert_array_equal(inverse, expected_inverse)


@pytest.mark.parametrize("n_items", [30, 10**7])  # counting sorts; a span too sparse for them
def test_stable_order_is_a_stable_argsort_of_the_pair_key(n_items: int) -> None:
    rng = np.random.default_rng(1)
    n_users = 40
    users = rng.integers(0, n_users, 5_000)
    items = rng.integers(0, 30, 5_000) * (n_items // 30)  # many duplicate pairs: stability matters
    order = stable_order(users, items, n_users, n_items)
    assert order is not None
    np.testing.assert_array_equal(order, np.argsort(users * n_items + items, kind="stable"))


def test_stable_order_only_checks_input_that_is_already_sorted() -> None:
    users = np.array([0, 0, 1, 2, 2])
    items = np.array([1, 4, 0, 2, 3])
    assert stable_order(users, items, 3, 5) is None
    # A repeated pair is not "strictly sorted": it must go through the dedupe.
    assert stable_order(np.array([0, 0]), np.array([1, 1]), 1, 2) is not None


def test_stable_order_rejects_indices_outside_the_vocabulary() -> None:
    with pytest.raises(ValueError, match=r"item indices must be in 0\.\.2"):
        stable_order(np.array([0, 1]), np.array([0, 3]), 2, 3)


def test_from_arrays_keeps_the_last_rating_of_a_repeated_pair_and_owns_its_arrays() -> None:
    users = np.array([10, 20, 10, 10], dtype=np.int64)
    items = np.array([5, 5, 7, 5], dtype=np.int64)
    ratings = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    stamps = np.array([100, 200, 300, 400], dtype=np.int64)
    data = Interactions.from_arrays(users, items, ratings, stamps)
    assert data.csr.toarray().tolist() == [[4.0, 3.0], [2.0, 0.0]]
    assert data.timestamps is not None and data.timestamps.tolist() == [400, 300, 200]
    # Sorted input takes the no-sort path; the matrix must still not alias the caller's arrays.
    sorted_ratings = np.array([1.0, 2.0], dtype=np.float32)
    sorted_data = Interactions.from_arrays(np.array([1, 2]), np.array([1, 1]), sorted_ratings)
    sorted_ratings[:] = 9.0
    assert sorted_data.csr.data.tolist() == [1.0, 2.0]
