"""Leave-one-liked-out quality of similar-items lists: vectorized metric vs a slow reference,
a hand-computed case, planted structure, list builders, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import Interactions
from recommender.engine.item_similarity_eval import (
    LikedHoldout,
    factor_cosine_lists,
    feature_overlap,
    leave_one_liked_out,
    lists_from_neighbor_tables,
    popularity_lists,
    random_lists,
    similar_list_hits,
    similar_list_quality,
    similar_list_quality_reference,
)
from recommender.engine.knn import ItemKNN
from recommender.engine.tables import FactorTables, rank_items


def random_data(n_users: int = 40, n_items: int = 25, density: float = 0.3, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    ratings = rng.integers(1, 6, users.shape[0]).astype(np.float32)
    return Interactions.from_arrays(users, items, ratings)


def ragged_random_lists(n_items: int, n: int, seed: int) -> np.ndarray:
    """Random lists, some shorter than ``n`` (padded with -1), never listing the item itself."""
    lists = random_lists(n_items, n, random_state=seed)
    lengths = np.random.default_rng(seed + 1).integers(0, n + 1, n_items)
    lists[np.arange(n)[None, :] >= lengths[:, None]] = -1
    return lists


def planted_clusters(seed: int = 0) -> tuple[Interactions, np.ndarray]:
    """Six clusters of 10 items; each user loves 8 items of one cluster and shrugs at 6 random
    items. Cluster 0 is 1.5 times as likely to be picked, so its items are the most popular."""
    rng = np.random.default_rng(seed)
    n_clusters, size, n_users = 6, 10, 300
    cluster = np.repeat(np.arange(n_clusters), size)
    p = np.full(n_clusters, 1.0)
    p[0] = 1.5
    users, items, ratings = [], [], []
    for u in range(n_users):
        c = rng.choice(n_clusters, p=p / p.sum())
        loved = rng.choice(np.flatnonzero(cluster == c), 8, replace=False)
        shrug = rng.choice(np.flatnonzero(cluster != c), 6, replace=False)
        users += [u] * 14
        items += [*loved, *shrug]
        ratings += [5.0] * 8 + [2.0] * 6
    data = Interactions.from_arrays(np.array(users), np.array(items), np.array(ratings, dtype=np.float32))
    return data, cluster


# ---- the metric ------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_vectorized_metric_matches_slow_reference(seed: int, gamma: float) -> None:
    data = random_data(seed=seed)
    holdout = leave_one_liked_out(data, random_state=seed)
    for lists in (
        ragged_random_lists(data.n_items, 5, seed),
        popularity_lists(holdout.train, 5),
        random_lists(data.n_items, 3, random_state=seed),
    ):
        got = similar_list_quality(lists, holdout, gamma=gamma)
        want = similar_list_quality_reference(lists, holdout, gamma=gamma)
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), key


def test_hand_computed_example() -> None:
    # Items 0..3. User 0 liked 0, 1, 2; user 1 liked 1, 3 and rated 0 low; user 2 liked only 0.
    data = Interactions.from_arrays(
        [0, 0, 0, 1, 1, 1, 2],
        [0, 1, 2, 1, 3, 0, 0],
        np.array([5, 4, 5, 4, 5, 2, 5], dtype=np.float32),
    )
    # CSR order: (0,0) (0,1) (0,2) (1,0) (1,1) (1,3) (2,0); hide (0, 2) and (1, 3).
    train = data.select(np.array([True, True, False, True, True, False, True]))
    holdout = LikedHoldout(
        train=train,
        users=np.array([0, 1]),
        items=np.array([2, 3]),
        liked_counts=np.array([2, 2, 1, 1]),
        threshold=4.0,
    )
    lists = np.array([[2, 1], [3, -1], [0, 1], [1, 0]])
    q = similar_list_quality(lists, holdout, gamma=1.0)
    # User 0: Q = {0, 1}; 2 is in L_0 only -> hit 1/2. Borda: a(2) = 2 (L_0 rank 1), a(3) = 2 (L_1 rank 1);
    # tie broken by the lower index -> [2, 3]: aggregated hit. Union: hit.
    # User 1: Q = {1}; L_1 = [3] -> hit 1. Borda over unrated items: 3 alone -> hit.
    assert q["hit_rate"] == pytest.approx(0.75)
    assert q["stratified_hit_rate"] == pytest.approx(0.75)  # both hidden items have n+ = 1
    assert q["union_hit_rate"] == 1.0
    assert q["aggregated_hit_rate"] == 1.0
    assert q["coverage"] == 1.0
    # Train ratings per item: 0 -> 3, 1 -> 2, 2 -> 0, 3 -> 0; listed: 2,1,3,0,1,1,0.
    assert q["mean_popularity"] == pytest.approx((0 + 2 + 0 + 3 + 2 + 2 + 3) / 7)
    assert q["mean_list_length"] == pytest.approx(7 / 4)
    assert q["n_users"] == 2.0


def test_stratification_discounts_hits_on_popular_items() -> None:
    data = random_data(seed=4)
    holdout = leave_one_liked_out(data, random_state=4)
    hits = similar_list_hits(popularity_lists(holdout.train, 5), holdout)
    q0 = similar_list_quality(popularity_lists(holdout.train, 5), holdout, gamma=0.0)
    q1 = similar_list_quality(popularity_lists(holdout.train, 5), holdout, gamma=1.0)
    assert q0["hit_rate"] == q0["stratified_hit_rate"] == pytest.approx(hits.hit_rate.mean())
    # The popularity list hits popular hidden items; weighting them down lowers its score.
    assert q1["stratified_hit_rate"] < q0["hit_rate"]


def test_planted_clusters_true_similarity_beats_random_and_popularity() -> None:
    data, cluster = planted_clusters()
    holdout = leave_one_liked_out(data, random_state=0)
    knn = ItemKNN(similarity="jaccard", shrinkage=0.0).fit(holdout.train)
    knn_lists = lists_from_neighbor_tables(knn.export_tables(), holdout.train.item_ids, 9)
    same_cluster = np.array(
        [np.flatnonzero((cluster == cluster[i]) & (np.arange(60) != i)) for i in range(60)]
    )
    scores = {
        name: similar_list_quality(lists, holdout)
        for name, lists in {
            "truth": same_cluster,
            "knn": knn_lists,
            "popularity": popularity_lists(holdout.train, 9),
            "random": random_lists(60, 9, random_state=0),
        }.items()
    }
    # The true neighbours hold every hidden item: each user's hidden item shares the cluster.
    assert scores["truth"]["hit_rate"] == 1.0
    assert scores["knn"]["hit_rate"] > 0.9
    for floor in ("popularity", "random"):
        assert scores["knn"]["hit_rate"] > 3 * scores[floor]["hit_rate"]
        assert scores["knn"]["stratified_hit_rate"] > 3 * scores[floor]["stratified_hit_rate"]
        assert scores["knn"]["aggregated_hit_rate"] > 2 * scores[floor]["aggregated_hit_rate"]
    # The popularity list only ever shows cluster 0; the guards say so.
    assert scores["popularity"]["coverage"] <= 10 / 60
    assert scores["popularity"]["mean_popularity"] > scores["knn"]["mean_popularity"]


def test_metrics_are_deterministic_given_the_seed() -> None:
    data = random_data(60, 30, seed=5)
    a = leave_one_liked_out(data, random_state=7)
    b = leave_one_liked_out(data, random_state=7)
    c = leave_one_liked_out(data, random_state=8)
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    assert not np.array_equal(a.items, c.items)
    lists_a = random_lists(data.n_items, 4, random_state=3)
    np.testing.assert_array_equal(lists_a, random_lists(data.n_items, 4, random_state=3))
    assert similar_list_quality(lists_a, a) == similar_list_quality(lists_a, b)


# ---- the holdout -----------------------------------------------------------------
def test_one_liked_rating_is_hidden_per_user_with_two_or_more() -> None:
    data = random_data(80, 30, seed=6)
    holdout = leave_one_liked_out(data, random_state=1)
    full = data.csr.toarray()
    liked_per_user = (full >= 4).sum(axis=1)
    np.testing.assert_array_equal(holdout.users, np.flatnonzero(liked_per_user >= 2))
    assert np.all(full[holdout.users, holdout.items] >= 4)
    train = holdout.train.csr.toarray()
    assert np.all(train[holdout.users, holdout.items] == 0)
    assert holdout.train.nnz == data.nnz - holdout.users.shape[0]
    np.testing.assert_array_equal(holdout.train.item_ids, data.item_ids)
    np.testing.assert_array_equal(holdout.liked_counts, (full >= 4).sum(axis=0))


def test_hidden_item_is_uniform_among_the_users_liked_items() -> None:
    # One user who liked items 0..3: over many seeds each is hidden about a quarter of the time.
    data = Interactions.from_arrays([0] * 5, [0, 1, 2, 3, 4], np.array([5, 4, 5, 4, 1], dtype=np.float32))
    picks = np.array([leave_one_liked_out(data, random_state=s).items[0] for s in range(2000)])
    counts = np.bincount(picks, minlength=5)
    assert counts[4] == 0
    assert np.all(np.abs(counts[:4] / 2000 - 0.25) < 0.04)


# ---- the list builders -----------------------------------------------------------
def test_neighbor_lists_are_the_stored_tables_by_rank() -> None:
    data = random_data(60, 20, 0.4, seed=7)
    model = ItemKNN(similarity="cosine", shrinkage=5.0).fit(data)
    tables = model.export_tables()
    lists = lists_from_neighbor_tables(tables, data.item_ids, 4)
    top = tables.top(4)
    for i, item in enumerate(data.item_ids):
        mine = top.ranks[top.item_ids == item].argsort()
        want = data.item_index(top.neighbor_ids[top.item_ids == item][mine])
        got = lists[i][lists[i] >= 0]
        np.testing.assert_array_equal(got, want)


def test_factor_cosine_lists_match_the_selectors_formula() -> None:
    rng = np.random.default_rng(8)
    vectors = rng.normal(size=(50, 6)).astype(np.float32)
    vectors[7] = 0.0  # a zero vector: every cosine 0, ties to the lower index
    vectors[9] = vectors[3]  # an exact tie with item 3
    tables = FactorTables(
        item_ids=np.arange(50),
        item_vectors=vectors,
        item_bias=np.zeros(50),
        global_mean=0.0,
        rating_scale=(1, 5),
    )
    lists = factor_cosine_lists(tables, 10)
    unit = tables.unit_vectors
    for pos in range(50):
        sims = (unit @ unit[pos]).astype(np.float64)
        np.testing.assert_array_equal(lists[pos], rank_items(sims, 10, exclude=np.array([pos])))


def test_popularity_and_random_lists_never_list_the_item_itself() -> None:
    data = random_data(50, 20, seed=9)
    counts = np.diff(data.csc.indptr)
    pop = popularity_lists(data, 5)
    best = rank_items(counts.astype(np.float64), 6)
    for i in range(data.n_items):
        np.testing.assert_array_equal(pop[i], best[best != i][:5])
    rnd = random_lists(data.n_items, 5, random_state=0)
    for i in range(data.n_items):
        assert i not in rnd[i]
        assert np.unique(rnd[i]).shape[0] == 5


def test_feature_overlap_hand_computed() -> None:
    features = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]]))
    lists = np.array([[1, 2], [0, -1], [3, -1], [0, -1]])
    # Pairs: (0,1) 1/2, (0,2) 0, (1,0) 1/2, (2,3) 0/1 = 0, (3,0) 0/2 = 0.
    assert feature_overlap(lists, features) == pytest.approx((0.5 + 0 + 0.5 + 0 + 0) / 5)


def test_lists_of_the_wrong_shape_are_refused() -> None:
    data = random_data(seed=10)
    holdout = leave_one_liked_out(data, random_state=0)
    with pytest.raises(ValueError, match="n_items"):
        similar_list_quality(np.zeros((3, 2), dtype=np.int64), holdout)
