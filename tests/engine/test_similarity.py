"""Similarity kernels: sparse products and blocked top-k vs the per-pair reference, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.engine.similarity import (
    SIMILARITIES,
    similarity_matrix,
    similarity_reference,
    top_k_neighbors,
)


def random_ratings(
    n_rows: int = 30, n_cols: int = 18, density: float = 0.4, seed: int = 0, integer: bool = True
) -> tuple[np.ndarray, sp.csr_matrix]:
    """(dense with NaN for missing, the same as CSR) random ratings in [1, 5]."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    values = (
        rng.integers(1, 6, (n_rows, n_cols)).astype(float) if integer else rng.uniform(1, 5, (n_rows, n_cols))
    )
    dense = np.where(mask, values, np.nan)
    rows, cols = np.nonzero(mask)
    return dense, sp.csr_matrix((values[rows, cols], (rows, cols)), shape=mask.shape)


def random_baseline(n_rows: int, n_cols: int, seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 100)
    return 3.2, rng.normal(0, 0.4, n_rows), rng.normal(0, 0.4, n_cols)


@pytest.mark.parametrize("kind", SIMILARITIES)
@pytest.mark.parametrize(("min_support", "shrinkage"), [(1, 0.0), (3, 0.0), (2, 25.0)])
def test_sparse_products_match_per_pair_reference(kind: str, min_support: int, shrinkage: float) -> None:
    dense, x = random_ratings(seed=3)
    base = random_baseline(*x.shape)
    got = similarity_matrix(x, kind, min_support=min_support, shrinkage=shrinkage, baseline=base)
    want = similarity_reference(dense, kind, min_support=min_support, shrinkage=shrinkage, baseline=base)
    np.testing.assert_allclose(got, want, atol=1e-10)


@pytest.mark.parametrize("kind", ["adjusted_cosine", "pearson"])
def test_user_side_similarity_on_transpose(kind: str) -> None:
    # User-user adjusted cosine centres by the *item* mean: the co-raters are items.
    dense, x = random_ratings(25, 12, 0.5, seed=4)
    got = similarity_matrix(x.T.tocsr(), kind)
    np.testing.assert_allclose(got, similarity_reference(dense.T, kind), atol=1e-10)


@pytest.mark.parametrize("kind", SIMILARITIES)
@pytest.mark.parametrize("block_size", [1, 7, None])
def test_blocked_top_k_matches_reference_rows(kind: str, block_size: int | None) -> None:
    dense, x = random_ratings(40, 23, 0.3, seed=5, integer=False)
    base = random_baseline(*x.shape)
    k, min_support, shrinkage = 6, 2, 10.0
    nb, sc = top_k_neighbors(
        x, kind, k, min_support=min_support, shrinkage=shrinkage, baseline=base, block_size=block_size
    )
    full = similarity_reference(dense, kind, min_support=min_support, shrinkage=shrinkage, baseline=base)
    observed = (~np.isnan(dense)).astype(float)
    support = observed.T @ observed
    assert nb.shape == sc.shape == (x.shape[1], k)
    for i in range(x.shape[1]):
        candidates = np.flatnonzero((support[i] >= min_support) & (np.arange(x.shape[1]) != i))
        best = np.sort(full[i, candidates])[::-1][:k]
        valid = nb[i] >= 0
        assert valid.sum() == best.shape[0]
        assert np.all(valid[: valid.sum()])  # padding only at the end
        np.testing.assert_array_equal(sc[i, ~valid], 0.0)
        np.testing.assert_allclose(sc[i, valid], best, atol=1e-5)
        # Each listed neighbour really has the listed score, is not i and is supported.
        np.testing.assert_allclose(full[i, nb[i, valid]], sc[i, valid], atol=1e-5)
        assert i not in nb[i, valid]
        assert np.all(support[i, nb[i, valid]] >= min_support)
        assert np.all(np.diff(sc[i, valid]) <= 0)


def test_top_k_pads_when_too_few_neighbours() -> None:
    # Item 2 shares no rater with anybody: no neighbours at all.
    x = sp.csr_matrix(np.array([[5.0, 4.0, 0.0], [3.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
    nb, sc = top_k_neighbors(x, "cosine", 4)
    assert nb.shape == (3, 4)
    assert list(nb[0]) == [1, -1, -1, -1]
    assert list(nb[2]) == [-1, -1, -1, -1]
    np.testing.assert_array_equal(sc[2], 0.0)


def test_known_correlations() -> None:
    # Item 1 = 2 * item 0 + 1 (Pearson 1, not cosine 1); item 2 reverses item 0 (Pearson -1).
    col0 = np.array([1.0, 2.0, 4.0, 5.0])
    x = sp.csr_matrix(np.column_stack([col0, 2 * col0 + 1, 6 - col0]))
    pearson = similarity_matrix(x, "pearson")
    assert pearson[0, 1] == pytest.approx(1.0)
    assert pearson[0, 2] == pytest.approx(-1.0)
    cosine = similarity_matrix(x, "cosine")
    expected = col0 @ (2 * col0 + 1) / np.linalg.norm(col0) / np.linalg.norm(2 * col0 + 1)
    assert cosine[0, 1] == pytest.approx(expected)
    assert cosine[0, 1] < 1.0


def test_unknown_similarity_and_bad_k() -> None:
    _, x = random_ratings()
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity_matrix(x, "euclid")
    with pytest.raises(ValueError):
        top_k_neighbors(x, "cosine", 0)
    with pytest.raises(ValueError, match="baseline"):
        similarity_matrix(x, "pearson_baseline")


# ---- property tests ------------------------------------------------------------------
@st.composite
def rating_matrices(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, int]:
    n_rows = draw(st.integers(2, 12))
    n_cols = draw(st.integers(2, 9))
    seed = draw(st.integers(0, 10_000))
    density = draw(st.floats(0.2, 0.9))
    dense, x = random_ratings(n_rows, n_cols, density, seed=seed, integer=draw(st.booleans()))
    return dense, x, seed


@settings(max_examples=40, deadline=None)
@given(data=rating_matrices(), kind=st.sampled_from(SIMILARITIES), shrinkage=st.sampled_from([0.0, 5.0]))
def test_symmetric_unit_diagonal_bounded(
    data: tuple[np.ndarray, sp.csr_matrix, int], kind: str, shrinkage: float
) -> None:
    _, x, seed = data
    base = random_baseline(*x.shape, seed=seed)
    sim = similarity_matrix(x, kind, shrinkage=shrinkage, baseline=base)
    np.testing.assert_allclose(sim, sim.T, atol=1e-12)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    lower = 0.0 if kind == "jaccard" else -1.0
    assert np.all(sim >= lower - 1e-12) and np.all(sim <= 1.0 + 1e-12)
    # Shrinkage only pulls towards 0.
    plain = similarity_matrix(x, kind, baseline=base)
    assert np.all(np.abs(sim) <= np.abs(plain) + 1e-12)


@settings(max_examples=30, deadline=None)
@given(data=rating_matrices(), min_support=st.integers(1, 5))
def test_min_support_zeroes_exactly_the_thin_pairs(
    data: tuple[np.ndarray, sp.csr_matrix, int], min_support: int
) -> None:
    dense, x, _ = data
    observed = (~np.isnan(dense)).astype(float)
    support = observed.T @ observed
    plain = similarity_matrix(x, "jaccard")
    sim = similarity_matrix(x, "jaccard", min_support=min_support)
    off = ~np.eye(x.shape[1], dtype=bool)
    thin = (support < min_support) & off
    assert np.all(sim[thin] == 0.0)
    np.testing.assert_array_equal(sim[~thin], plain[~thin])


@settings(max_examples=30, deadline=None)
@given(data=rating_matrices(), scale=st.floats(0.2, 3.0), shift=st.floats(-2.0, 2.0))
def test_pearson_invariant_to_affine_rescaling_of_an_item(
    data: tuple[np.ndarray, sp.csr_matrix, int], scale: float, shift: float
) -> None:
    # Centring by the co-rater mean and normalizing make Pearson blind to a*r+b (a>0).
    _, x, _ = data
    y = x.tocsc(copy=True)
    y.data[y.indptr[0] : y.indptr[1]] = scale * y.data[y.indptr[0] : y.indptr[1]] + shift
    np.testing.assert_allclose(
        similarity_matrix(y.tocsr(), "pearson"), similarity_matrix(x, "pearson"), atol=1e-8
    )


@settings(max_examples=30, deadline=None)
@given(data=rating_matrices(), shifts_seed=st.integers(0, 1000))
def test_adjusted_cosine_invariant_to_user_offsets(
    data: tuple[np.ndarray, sp.csr_matrix, int], shifts_seed: int
) -> None:
    # Adjusted cosine subtracts each user's mean, so a per-user offset cancels.
    _, x, _ = data
    shifts = np.random.default_rng(shifts_seed).normal(0, 1, x.shape[0])
    y = x.copy()
    y.data += np.repeat(shifts, np.diff(y.indptr))
    np.testing.assert_allclose(
        similarity_matrix(y, "adjusted_cosine"), similarity_matrix(x, "adjusted_cosine"), atol=1e-8
    )


@settings(max_examples=25, deadline=None)
@given(data=rating_matrices(), kind=st.sampled_from(SIMILARITIES), k=st.integers(1, 4))
def test_top_k_scores_are_the_row_maxima(
    data: tuple[np.ndarray, sp.csr_matrix, int], kind: str, k: int
) -> None:
    dense, x, seed = data
    base = random_baseline(*x.shape, seed=seed)
    full = similarity_matrix(x, kind, baseline=base)
    observed = (~np.isnan(dense)).astype(float)
    support = observed.T @ observed
    nb, sc = top_k_neighbors(x, kind, k, baseline=base, block_size=3)
    for i in range(x.shape[1]):
        cand = (support[i] >= 1) & (np.arange(x.shape[1]) != i)
        best = np.sort(full[i, cand])[::-1][:k]
        valid = nb[i] >= 0
        np.testing.assert_allclose(sc[i, valid], best, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("min_support", "shrinkage"), [(1, 0.0), (1, 250.0), (3, 5.0)])
def test_jaccard_counts_kernel_equals_the_general_kernel(
    seed: int, min_support: int, shrinkage: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jaccard runs through the int32 counts kernel: the same table as the general one,
    bit for bit, on rows that list touched entities (few co-ratings) and rows that scan."""
    from recommender.engine import similarity

    rng = np.random.default_rng(seed)
    n_rows, n_cols = 300, 400
    # Zipf-like popularity: a few items share many raters (scan rows), most are rare (listing rows).
    popularity = 1.0 / np.arange(1, n_cols + 1) ** 1.1
    mask = rng.random((n_rows, n_cols)) < np.minimum(1.0, 0.9 * popularity / popularity[9])
    rows, cols = np.nonzero(mask)
    x = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=mask.shape)
    visits = mask.T.astype(np.int64) @ mask.sum(axis=1)  # per item: its co-raters' row lengths
    assert (visits >= n_cols).any() and (visits[visits > 0] < n_cols).any()
    for block_size in (None, 37):
        fast = top_k_neighbors(
            x, "jaccard", 25, min_support=min_support, shrinkage=shrinkage, block_size=block_size
        )
        monkeypatch.setattr(similarity, "_GENERAL_JACCARD", True)
        general = top_k_neighbors(
            x, "jaccard", 25, min_support=min_support, shrinkage=shrinkage, block_size=block_size
        )
        monkeypatch.setattr(similarity, "_GENERAL_JACCARD", False)
        np.testing.assert_array_equal(fast[0], general[0])
        np.testing.assert_array_equal(fast[1], general[1])
