"""Metrics: hand-computed examples, properties, kernel vs reference, evaluation and CSV input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.engine import Interactions, Recommender
from recommender.engine.evaluation import RatingsFileError, evaluate_algorithm, read_ratings_csv
from recommender.engine.metrics import (
    average_precision_at_k,
    catalog_coverage,
    evaluate_ranking,
    evaluate_ratings,
    hit_rate_at_k,
    mae,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics_from_hits,
    recall_at_k,
    rmse,
)

# ---- rating error ---------------------------------------------------------


def test_rmse_and_mae_hand_computed() -> None:
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert rmse([4, 4], [3, 5]) == pytest.approx(1.0)
    assert rmse([2.5], [2.5]) == 0.0


def test_rating_errors_reject_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        rmse([1, 2], [1])
    with pytest.raises(ValueError, match="zero ratings"):
        mae([], [])


# ---- ranking metrics, hand computed ----------------------------------------------


def test_ranking_metrics_hand_computed() -> None:
    rec = ["a", "b", "c", "d", "e"]
    rel = {"b", "e", "z"}
    assert precision_at_k(rec, rel, 5) == pytest.approx(2 / 5)
    assert recall_at_k(rec, rel, 5) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(rec, rel, 5) == pytest.approx(dcg / idcg)
    # AP: hits at ranks 2 and 5 -> (1/2 + 2/5) / min(3, 5).
    assert average_precision_at_k(rec, rel, 5) == pytest.approx((1 / 2 + 2 / 5) / 3)
    assert hit_rate_at_k(rec, rel, 5) == 1.0
    assert hit_rate_at_k(rec, rel, 1) == 0.0
    # k = 2: one hit at rank 2.
    assert precision_at_k(rec, rel, 2) == pytest.approx(1 / 2)
    assert ndcg_at_k(rec, rel, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert average_precision_at_k(rec, rel, 2) == pytest.approx((1 / 2) / 2)


def test_short_list_counts_missing_positions_as_misses() -> None:
    assert precision_at_k([1], {1}, 10) == pytest.approx(0.1)
    assert recall_at_k([1], {1}, 10) == 1.0


def test_perfect_list_scores_one() -> None:
    rel = {3, 1, 4}
    assert ndcg_at_k([4, 1, 3, 9, 8], rel, 5) == pytest.approx(1.0)
    assert average_precision_at_k([4, 1, 3, 9], rel, 4) == pytest.approx(1.0)
    # More relevant items than K: a list of K hits is still ideal.
    many = set(range(20))
    assert ndcg_at_k(list(range(10)), many, 10) == pytest.approx(1.0)
    assert average_precision_at_k(list(range(10)), many, 10) == pytest.approx(1.0)


def test_undefined_metrics_raise_for_no_relevant_items() -> None:
    for fn in (recall_at_k, ndcg_at_k, average_precision_at_k):
        with pytest.raises(ValueError, match="no relevant"):
            fn([1, 2], set(), 2)
    assert precision_at_k([1, 2], set(), 2) == 0.0


def test_duplicates_and_bad_k_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        precision_at_k([1, 1], {1}, 2)
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k([1], {1}, 0)


def test_catalog_coverage() -> None:
    assert catalog_coverage([[0, 1], [1, 2]], 6) == pytest.approx(3 / 6)
    assert catalog_coverage([], 4) == 0.0
    assert catalog_coverage([np.arange(4)], 4) == 1.0


# ---- properties (hypothesis) -------------------------------------------------------

ranked_and_relevant = st.integers(min_value=1, max_value=30).flatmap(
    lambda n_items: st.tuples(
        st.permutations(list(range(n_items))).flatmap(lambda p: st.integers(0, len(p)).map(lambda m: p[:m])),
        st.sets(st.integers(0, n_items - 1), min_size=1),
        st.integers(1, 15),
    )
)


@settings(max_examples=100, deadline=None)
@given(ranked_and_relevant)
def test_metric_bounds_and_monotonicity(args: tuple[list[int], set[int], int]) -> None:
    rec, rel, k = args
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k, hit_rate_at_k):
        assert 0.0 <= fn(rec, rel, k) <= 1.0 + 1e-12
    # Recall and hit rate never decrease as the list grows.
    assert recall_at_k(rec, rel, k + 1) >= recall_at_k(rec, rel, k)
    assert hit_rate_at_k(rec, rel, k + 1) >= hit_rate_at_k(rec, rel, k)
    # Nothing after the k-th item matters.
    tail_changed = rec[:k] + list(reversed(rec[k:]))
    assert ndcg_at_k(tail_changed, rel, k) == pytest.approx(ndcg_at_k(rec, rel, k))
    assert average_precision_at_k(rec[:k], rel, k) == pytest.approx(average_precision_at_k(rec, rel, k))
    # Precision is hits / k, recall hits / |R|: they are tied by |R| and k.
    assert precision_at_k(rec, rel, k) * k == pytest.approx(recall_at_k(rec, rel, k) * len(rel))


@settings(max_examples=100, deadline=None)
@given(ranked_and_relevant)
def test_swapping_a_hit_forward_never_lowers_ndcg(args: tuple[list[int], set[int], int]) -> None:
    rec, rel, k = args
    top = rec[:k]
    for i in range(1, len(top)):
        if top[i] in rel and top[i - 1] not in rel:
            swapped = [*top[: i - 1], top[i], top[i - 1], *top[i + 1 :]]
            assert ndcg_at_k(swapped, rel, k) > ndcg_at_k(top, rel, k)
            break


def test_vectorized_kernel_agrees_with_reference_functions() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items, k = 60, 25, 7
    hits = np.zeros((n_users, k), dtype=bool)
    n_rel = np.zeros(n_users, dtype=np.int64)
    refs: dict[str, list[float]] = {"precision": [], "recall": [], "ndcg": [], "map": [], "hit_rate": []}
    for u in range(n_users):
        rec = list(rng.permutation(n_items)[: rng.integers(0, k + 1)])
        rel = set(rng.choice(n_items, size=rng.integers(1, 12), replace=False).tolist())
        hits[u, : min(k, len(rec))] = [x in rel for x in rec[:k]]
        n_rel[u] = len(rel)
        refs["precision"].append(precision_at_k(rec, rel, k))
        refs["recall"].append(recall_at_k(rec, rel, k))
        refs["ndcg"].append(ndcg_at_k(rec, rel, k))
        refs["map"].append(average_precision_at_k(rec, rel, k))
        refs["hit_rate"].append(hit_rate_at_k(rec, rel, k))
    fast = ranking_metrics_from_hits(hits, n_rel)
    for name, values in refs.items():
        np.testing.assert_allclose(fast[name], values, rtol=1e-12, atol=1e-12, err_msg=name)


# ---- evaluation of a model ---------------------------------------------------------------


class TableModel(Recommender):
    """Test double: scores come from a fixed (users x items) table given at construction."""

    def __init__(self, table: np.ndarray | None = None, seed: int = 0) -> None:
        self.table = table
        self.seed = seed

    def _fit(self, data: Interactions) -> None:
        if self.table is None:
            rng = np.random.default_rng(self.seed)
            # Few distinct values: exercises the index tie-break.
            self.table_ = rng.integers(1, 6, (data.n_users, data.n_items)).astype(np.float64)
        else:
            self.table_ = np.asarray(self.table, dtype=np.float64)

    def _predict_indices(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.table_[users, items]


def random_ratings(seed: int, n_users: int = 25, n_items: int = 30, n: int = 400):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n) + 100
    items = rng.integers(0, n_items, n) + 500
    ratings = rng.integers(1, 6, n).astype(np.float64)
    return users, items, ratings


def reference_ranking(model, train: Interactions, test_users, test_items, test_ratings, k, threshold):
    """Textbook per-user loop of the ranking protocol."""
    per_metric: dict[str, list[float]] = {"precision": [], "recall": [], "ndcg": [], "map": []}
    lists = []
    seen_pairs = set(zip(*[a.tolist() for a in train.to_raw_arrays()[:2]], strict=True))
    for user in sorted(set(test_users.tolist())):
        rel = {
            i
            for u, i, r in zip(test_users.tolist(), test_items.tolist(), test_ratings.tolist(), strict=True)
            if u == user and r >= threshold and i in set(train.item_ids.tolist()) and (u, i) not in seen_pairs
        }
        if not rel:
            continue
        u_idx = int(train.user_index([user])[0])
        scores = model.score_items(u_idx) if u_idx >= 0 else model.popularity_
        candidates = [
            (-float(scores[j]), j)
            for j in range(train.n_items)
            if (user, train.item_ids[j].item()) not in seen_pairs
        ]
        top = [train.item_ids[j].item() for _, j in sorted(candidates)[:k]]
        lists.append(top)
        per_metric["precision"].append(precision_at_k(top, rel, k))
        per_metric["recall"].append(recall_at_k(top, rel, k))
        per_metric["ndcg"].append(ndcg_at_k(top, rel, k))
        per_metric["map"].append(average_precision_at_k(top, rel, k))
    out = {f"{m}@{k}": float(np.mean(v)) for m, v in per_metric.items()}
    out["coverage"] = len({i for lst in lists for i in lst}) / train.n_items
    out["n_users"] = float(len(lists))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_ranking_agrees_with_reference_loop(seed: int) -> None:
    users, items, ratings = random_ratings(seed)
    cut = 300
    train = Interactions.from_arrays(users[:cut], items[:cut], ratings[:cut])
    # A test user unknown to train and a test item unknown to train.
    t_users = np.concatenate([users[cut:], [999, users[0]]])
    t_items = np.concatenate([items[cut:], [items[0], 12345]])
    t_ratings = np.concatenate([ratings[cut:], [5.0, 5.0]])
    model = TableModel(seed=seed).fit(train)
    got = evaluate_ranking(model, train, (t_users, t_items, t_ratings), k=5, relevance_threshold=4.0)
    expected = reference_ranking(model, train, t_users, t_items, t_ratings, 5, 4.0)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert 0.0 <= got["hit_rate@5"] <= 1.0


def test_evaluate_ranking_oracle_is_perfect_and_seen_items_are_excluded() -> None:
    users, items, ratings = random_ratings(7)
    train = Interactions.from_arrays(users[:300], items[:300], ratings[:300])
    test = (users[300:], items[300:], ratings[300:])
    # Oracle: huge scores on train-rated items (must be excluded) and on each
    # user's relevant test items, nothing else.
    table = np.zeros((train.n_users, train.n_items))
    rows, cols, _ = train.to_coo_arrays()
    table[rows, cols] = 100.0
    ui, ii = train.user_index(test[0]), train.item_index(test[1])
    ok = (ui >= 0) & (ii >= 0) & (test[2] >= 4.0)
    table[ui[ok], ii[ok]] += 50.0
    model = TableModel(table=table).fit(train)
    res = evaluate_ranking(model, train, test, k=3)
    assert res["ndcg@3"] == pytest.approx(1.0)
    assert res["map@3"] == pytest.approx(1.0)
    assert res["hit_rate@3"] == 1.0


def test_evaluate_ranking_accepts_split_interactions_and_matches_raw_tuple() -> None:
    users, items, ratings = random_ratings(3)
    full = Interactions.from_arrays(users, items, ratings)
    from recommender.engine.split import random_split

    train, test = random_split(full, 0.25, random_state=0)
    model = TableModel(seed=1).fit(train)
    a = evaluate_ranking(model, train, test, k=10)
    b = evaluate_ranking(model, train, test.to_raw_arrays(), k=10)
    assert a == b


def test_evaluate_ranking_rejects_a_model_fitted_on_other_data() -> None:
    users, items, ratings = random_ratings(4)
    train = Interactions.from_arrays(users[:300], items[:300], ratings[:300])
    other = Interactions.from_arrays(users[:50], items[:50], ratings[:50])
    model = TableModel(seed=0).fit(other)
    with pytest.raises(ValueError, match="not fitted on"):
        evaluate_ranking(model, train, (users[300:], items[300:], ratings[300:]))


def test_evaluate_ratings_uses_predict_with_fallbacks() -> None:
    train = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [5.0, 1.0, 4.0])
    table = np.array([[4.5, 2.0], [3.5, 9.0]])
    model = TableModel(table=table).fit(train)
    # (1,20) -> 2.0 (err 1); (2,20) -> 9.0 clipped to the scale max 5 (err 0);
    # unknown user 7 on item 10 -> the documented fallback mu + b_i.
    fallback = model.global_mean_ + float(model.baseline_item_[0])
    got = evaluate_ratings(model, ([1, 2, 7], [20, 20, 10], [3.0, 5.0, 4.0]))
    errors = np.array([1.0, 0.0, 4.0 - fallback])
    assert got["rmse"] == pytest.approx(math.sqrt(np.mean(errors**2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(errors)))


@pytest.mark.parametrize("seed", range(6))
def test_top_k_kernel_matches_rank_items_and_isin(seed: int) -> None:
    """The compiled per-user pass of evaluate_ranking = rank_items (ties by lower
    index, non-finite scores and excluded items skipped) + np.isin for the hits."""
    from recommender.engine.metrics import _top_k_hits
    from recommender.engine.tables import rank_items

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = rng.integers(0, 4, n).astype(np.float64)  # many ties
    scores[rng.random(n) < 0.15] = -np.inf
    scores[rng.random(n) < 0.1] = np.nan
    scores[rng.random(n) < 0.05] = np.inf
    exclude = np.unique(rng.integers(0, n, int(rng.integers(0, n + 1)))).astype(np.int32)
    relevant = np.unique(rng.integers(0, n, 8)).astype(np.int64)
    scratch = np.zeros(n, dtype=bool)
    for k in (1, 3, 10, n + 5):
        out, hits = np.empty(k, dtype=np.int64), np.zeros(k, dtype=bool)
        size = _top_k_hits(scores, exclude, k, relevant, scratch, out, hits)
        expected = rank_items(scores, k, exclude=exclude)
        np.testing.assert_array_equal(out[:size], expected)
        np.testing.assert_array_equal(hits[:size], np.isin(expected, relevant))
        assert not scratch.any()  # the scratch mask is restored


def test_evaluate_ratings_index_path_and_chunks_equal_raw_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    from recommender.engine import metrics
    from recommender.engine.split import random_split

    users, items, ratings = random_ratings(5, n=600)
    train, test = random_split(Interactions.from_arrays(users, items, ratings), 0.3, random_state=0)
    model = TableModel(seed=2).fit(train)
    raw_u, raw_i, raw_r = test.to_raw_arrays()
    pred = model.predict(raw_u, raw_i)
    expected = {"rmse": rmse(raw_r, pred), "mae": mae(raw_r, pred)}
    assert metrics._shares_vocabularies(model, test)
    monkeypatch.setattr(metrics, "PREDICT_CHUNK", 7)  # many chunks, a ragged last one
    calls: list[int] = []
    original = TableModel.predict_indices

    def counting(self: TableModel, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        calls.append(u.shape[0])
        return original(self, u, i)

    monkeypatch.setattr(TableModel, "predict_indices", counting)
    assert evaluate_ratings(model, test) == expected  # exactly: same predictions, same reductions
    assert max(calls) == 7 and sum(calls) == test.nnz
    assert evaluate_ratings(model, (raw_u, raw_i, raw_r)) == expected
    # A model fitted on other vocabularies goes through the raw ids (and its fallbacks).
    other = TableModel(seed=2).fit(Interactions.from_arrays(users[:50], items[:50], ratings[:50]))
    assert not metrics._shares_vocabularies(other, test)
    assert evaluate_ratings(other, test) == evaluate_ratings(other, (raw_u, raw_i, raw_r))


def test_evaluate_ratings_refuses_ranking_only_models() -> None:
    class RankOnly(TableModel):
        ranking_only = True

    train = Interactions.from_arrays([1, 2], [1, 2], [3.0, 4.0])
    with pytest.raises(ValueError, match="ranking-only"):
        evaluate_ratings(RankOnly(table=np.eye(2)).fit(train), ([1], [1], [3.0]))


# ---- CSV input and evaluate_algorithm ----------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ratings_csv_parses_ids_ratings_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", 'user,item,rating,timestamp\nu1,i1,4,100\n\n u2 , "i2" ,3.5,200\n')
    rows = read_ratings_csv(path)
    assert rows.user_ids.tolist() == ["u1", "u2"]
    assert rows.item_ids.tolist() == ["i1", "i2"]
    np.testing.assert_array_equal(rows.ratings, [4.0, 3.5])
    assert rows.timestamps is not None
    np.testing.assert_array_equal(rows.timestamps, [100, 200])
    no_ts = read_ratings_csv(write(tmp_path, "s.csv", "user,item,rating\n1,2,5\n"))
    assert no_ts.timestamps is None


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"r\.csv: file is empty"),
        ("user,item,rating\n", r"r\.csv: no ratings"),
        ("uid,iid,score\n1,2,3\n", r"r\.csv:1: header"),
        ("user,item,rating\n1,2,3\n1,2,x\n", r"r\.csv:3: rating 'x' is not a number"),
        ("user,item,rating\n1,2,3\n\n1,2\n", r"r\.csv:4: expected 3 comma-separated fields"),
        ("user,item,rating\n1,,3\n", r"r\.csv:2: empty item field"),
        ("user,item,rating\n1,2,nan\n", r"r\.csv:2: rating 'nan' is not a finite number"),
        ("user,item,rating,timestamp\n1,2,3,4\n1,2,3,yesterday\n", r"r\.csv:3: timestamp 'yesterday'"),
    ],
)
def test_read_ratings_csv_errors_name_file_and_line(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path, "r.csv", text)
    with pytest.raises(RatingsFileError, match=pattern):
        read_ratings_csv(path)


def test_read_ratings_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RatingsFileError, match="cannot read"):
        read_ratings_csv(tmp_path / "absent.csv")


def test_evaluate_algorithm_report_keys_and_values(tmp_path: Path) -> None:
    users, items, ratings = random_ratings(11, n=600)
    lines = "\n".join(f"{u},{i},{r:g}" for u, i, r in zip(users, items, ratings, strict=True))
    body = lines.split("\n")
    train = read_ratings_csv(write(tmp_path, "train.csv", "user,item,rating\n" + "\n".join(body[:500])))
    test = read_ratings_csv(write(tmp_path, "test.csv", "user,item,rating\n" + "\n".join(body[500:])))
    report = evaluate_algorithm("bias_baseline", {}, train, test)
    assert list(report) == ["rmse", "mae", "precision@10", "recall@10", "ndcg@10", "coverage", "fit_seconds"]
    # Cross-check the rating metrics against a direct fit of the same model.
    from recommender.engine.registry import make_model

    model = make_model("bias_baseline", {}).fit(
        Interactions.from_arrays(train.user_ids, train.item_ids, train.ratings)
    )
    pred = model.predict(test.user_ids, test.item_ids)
    assert report["rmse"] == pytest.approx(rmse(test.ratings, pred))
    assert report["mae"] == pytest.approx(mae(test.ratings, pred))
    for key in ("precision@10", "recall@10", "ndcg@10", "coverage"):
        value = report[key]
        assert value is not None and 0.0 <= value <= 1.0
    fit_seconds = report["fit_seconds"]
    assert fit_seconds is not None and fit_seconds >= 0.0


def test_evaluate_algorithm_ranking_only_has_null_rating_metrics() -> None:
    users, items, ratings = random_ratings(12, n=500)
    report = evaluate_algorithm(
        "ease",
        {"regularization": "10"},
        (users[:400], items[:400], ratings[:400]),
        (users[400:], items[400:], ratings[400:]),
    )
    assert report["rmse"] is None and report["mae"] is None
    assert report["ndcg@10"] is not None and 0.0 <= report["ndcg@10"] <= 1.0


def test_evaluate_algorithm_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"valid names: .*bias_baseline"):
        evaluate_algorithm("nope", {}, ([1], [1], [1.0]), ([1], [1], [1.0]))
