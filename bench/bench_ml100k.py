"""ML-100K accuracy of every Tastebase model next to scikit-surprise and implicit.

Usage (from the repository root)::

    python -m bench.bench_ml100k              # all models, writes docs/benchmarks.md
    python -m bench.bench_ml100k --only ease,bias_baseline --no-third-party --no-write

Split (the project's evaluation split): ``rng = np.random.default_rng(42)``,
``p = rng.permutation(n)``, the first 80 % of the rows of
``ml100k_arrays()`` in ``p`` order train, the rest test. RMSE/MAE over the
test rows through each library's own ``predict``. Ranking metrics follow
``recommender.engine.metrics.evaluate_ranking`` (relevant = test rating >= 4,
every unseen train item ranked, binary gains, K = 10) for all models, so
third-party models are scored by exactly the same code.

Third-party ranking scores are computed with vectorized re-implementations of
each library's own ``estimate`` formula from its learned parameters (scoring
1.5 M user-item pairs through Python ``estimate`` calls would take minutes);
each is checked against the library's ``estimate`` on random pairs and the
largest difference is printed. Every Tastebase model is first fitted once on
a small subset so numba compilation is not counted in ``fit s``.

Bench-only dependencies: ``pip install -r bench/requirements.txt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.common import DOCS, command_line, load_average, ml100k_arrays, timed, write_section
from recommender.engine.interactions import Interactions
from recommender.engine.metrics import evaluate_ranking, mae, rmse
from recommender.engine.registry import ALGORITHM_PATHS, make_model

HEADING = "## ML-100K accuracy"
K = 10

#: Hyperparameters for the benchmark; ``{}`` means the model's defaults, which
#: the model authors sized for ML-100K. Nothing here was tuned on the test split.
BENCH_PARAMS: dict[str, dict[str, Any]] = {name: {} for name in ALGORITHM_PATHS}

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]


# ---- data --------------------------------------------------------------------
def brief_split() -> tuple[Interactions, Triples, Triples]:
    """(train Interactions, train raw triples, test raw triples) of the project split."""
    users, items, ratings, timestamps = ml100k_arrays()
    n = ratings.shape[0]
    rng = np.random.default_rng(42)
    p = rng.permutation(n)
    tr, te = p[: int(0.8 * n)], p[int(0.8 * n) :]
    train = Interactions.from_arrays(users[tr], items[tr], ratings[tr], timestamps[tr])
    return train, (users[tr], items[tr], ratings[tr]), (users[te], items[te], ratings[te].astype(np.float64))


# ---- scoring adapters for third-party models ---------------------------------------
class ScoreAdapter:
    """Presents a foreign model to ``evaluate_ranking``: ``score_items`` over Tastebase item indices."""

    def __init__(self, score_row: Callable[[int], np.ndarray], popularity: np.ndarray) -> None:
        self._score_row = score_row
        self.popularity_ = popularity

    def score_items(self, user: int) -> np.ndarray:
        return self._score_row(user)


def ranking_row(
    name: str,
    model: Any,
    train: Interactions,
    test: Triples,
    fit_seconds: float,
    predictions: np.ndarray | None,
) -> dict[str, Any]:
    ranking = evaluate_ranking(model, train, test, k=K)
    return {
        "model": name,
        "rmse": None if predictions is None else rmse(test[2], predictions),
        "mae": None if predictions is None else mae(test[2], predictions),
        "precision": ranking[f"precision@{K}"],
        "recall": ranking[f"recall@{K}"],
        "ndcg": ranking[f"ndcg@{K}"],
        "coverage": ranking["coverage"],
        "fit_seconds": fit_seconds,
    }


# ---- Tastebase ------------------------------------------------------------------
def tastebase_rows(names: list[str], train: Interactions, test: Triples) -> list[dict[str, Any]]:
    rows = []
    warm = train.select(np.arange(train.nnz) % 40 == 0)  # ~2 000 ratings, same vocabularies
    for name in names:
        label = f"tastebase {name}"
        try:
            make_model(name, BENCH_PARAMS[name]).fit(warm)  # numba compilation, not timed
            model = make_model(name, BENCH_PARAMS[name])
            with timed() as fit:
                model.fit(train)
            pred = None if model.ranking_only else model.predict(test[0], test[1])
            rows.append(ranking_row(label, model, train, test, fit.wall, pred))
        except Exception as exc:  # report and keep benchmarking the others
            traceback.print_exc()
            rows.append({"model": label, "error": f"{type(exc).__name__}: {exc}"})
        print(format_row(rows[-1]), flush=True)
    return rows


# ---- scikit-surprise ---------------------------------------------------------------
def surprise_rows(train: Interactions, train_raw: Triples, test: Triples) -> list[dict[str, Any]]:
    import surprise

    # Rows grouped by user (stable): surprise numbers users in order of first
    # appearance and lists each item's raters in file order, so both orders
    # agree and heapq's tie order in KNNBaseline matches a stable argsort below.
    by_user = np.argsort(train_raw[0], kind="stable")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.tsv"
        np.savetxt(
            path,
            np.column_stack([a[by_user] for a in train_raw]),
            fmt=["%d", "%d", "%g"],
            delimiter="\t",
        )
        reader = surprise.Reader(line_format="user item rating", sep="\t", rating_scale=(1, 5))
        trainset = surprise.Dataset.load_from_file(str(path), reader=reader).build_full_trainset()
    testset = [
        (str(u), str(i), float(r))
        for u, i, r in zip(test[0].tolist(), test[1].tolist(), test[2].tolist(), strict=True)
    ]
    # Tastebase index -> surprise inner id (every train user/item is known to both).
    uid = np.array([trainset.to_inner_uid(str(u)) for u in train.user_ids.tolist()])
    iid = np.array([trainset.to_inner_iid(str(i)) for i in train.item_ids.tolist()])
    popularity = np.diff(train.csc.indptr).astype(np.float64)

    algorithms: dict[str, Any] = {
        "surprise SVD": surprise.SVD(random_state=0),
        "surprise SVDpp": surprise.SVDpp(random_state=0),
        "surprise BaselineOnly": surprise.BaselineOnly(verbose=False),
        "surprise KNNBaseline": surprise.KNNBaseline(verbose=False),
    }
    rows = []
    for label, algo in algorithms.items():
        try:
            with timed() as fit:
                algo.fit(trainset)
            # The library's own per-rating predict (clipped, with its unknown-id fallbacks).
            pred = np.array([p.est for p in algo.test(testset)])
            score_inner = surprise_scorer(algo, trainset)
            check_against_estimate(label, algo, score_inner, trainset)
            model = ScoreAdapter(lambda u, f=score_inner: f(int(uid[u]))[iid], popularity)
            rows.append(ranking_row(label, model, train, test, fit.wall, pred))
        except Exception as exc:
            traceback.print_exc()
            rows.append({"model": label, "error": f"{type(exc).__name__}: {exc}"})
        print(format_row(rows[-1]), flush=True)
    return rows


def surprise_scorer(algo: Any, trainset: Any) -> Callable[[int], np.ndarray]:
    """Unclipped ``algo.estimate(u, i)`` for one inner user and every inner item, vectorized."""
    import surprise

    mu = trainset.global_mean
    if isinstance(algo, surprise.SVDpp):
        # r̂_ui = mu + b_u + b_i + q_i · (p_u + |I_u|^-1/2 sum_{j in I_u} y_j)   (Koren 2008)
        def score(u: int) -> np.ndarray:
            rated = np.array([j for j, _ in trainset.ur[u]], dtype=np.int64)
            implicit = algo.yj[rated].sum(axis=0) / np.sqrt(rated.shape[0])
            return mu + algo.bu[u] + algo.bi + algo.qi @ (algo.pu[u] + implicit)

        return score
    if isinstance(algo, surprise.SVD):
        # r̂_ui = mu + b_u + b_i + q_i · p_u
        return lambda u: mu + algo.bu[u] + algo.bi + algo.qi @ algo.pu[u]
    if isinstance(algo, surprise.BaselineOnly):
        return lambda u: mu + algo.bu[u] + algo.bi
    if isinstance(algo, surprise.KNNBaseline):
        return knn_baseline_scorer(algo, trainset)
    raise TypeError(f"no vectorized scorer for {type(algo).__name__}")


def knn_baseline_scorer(algo: Any, trainset: Any) -> Callable[[int], np.ndarray]:
    """KNNBaseline (user-based, the default) for all items of one user.

    r̂_ui = b_ui + sum_{v in N_i^k(u), s_uv > 0} s_uv (r_vi - b_vi) / sum s_uv, with
    N_i^k(u) the k users most similar to u among those who rated i (Koren, TKDD
    2010, eq. 3). Sorting all users by similarity once, a column-wise cumulative
    count of raters picks each item's k nearest raters without a per-item loop.
    """
    if not algo.sim_options.get("user_based", True):
        raise ValueError("only the default user-based KNNBaseline is vectorized here")
    n_users, n_items = trainset.n_users, trainset.n_items
    mu, bu, bi = trainset.global_mean, algo.bu, algo.bi
    rows, cols, vals = [], [], []
    for u, ratings in trainset.ur.items():
        rows.append(np.full(len(ratings), u))
        cols.append(np.array([i for i, _ in ratings]))
        vals.append(np.array([r for _, r in ratings]))
    r_, c_, v_ = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    rated = np.zeros((n_users, n_items), dtype=bool)
    rated[r_, c_] = True
    residual = np.zeros((n_users, n_items))
    residual[r_, c_] = v_ - (mu + bu[r_] + bi[c_])

    def score(u: int) -> np.ndarray:
        sim = algo.sim[u]
        order = np.argsort(-sim, kind="stable")
        m = rated[order]
        nearest = m & (np.cumsum(m, axis=0) <= algo.k) & (sim[order] > 0)[:, None]
        w = np.where(nearest, sim[order][:, None], 0.0)
        sum_sim = w.sum(axis=0)
        sum_dev = (w * residual[order]).sum(axis=0)
        ok = (nearest.sum(axis=0) >= algo.min_k) & (sum_sim > 0)
        return mu + bu[u] + bi + np.where(ok, sum_dev / np.where(ok, sum_sim, 1.0), 0.0)

    return score


def check_against_estimate(label: str, algo: Any, score: Callable[[int], np.ndarray], trainset: Any) -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, trainset.n_users, 30)
    worst = 0.0
    for u in users.tolist():
        row = score(u)
        for i in rng.integers(0, trainset.n_items, 20).tolist():
            est = algo.estimate(u, i)
            est = est[0] if isinstance(est, tuple) else est
            worst = max(worst, abs(float(est) - float(row[i])))
    print(f"  {label}: vectorized scores vs library estimate on 600 pairs: max |diff| = {worst:.2e}")


# ---- implicit ----------------------------------------------------------------------
def implicit_row(train: Interactions, test: Triples) -> dict[str, Any]:
    label = "implicit ALS"
    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # Library defaults; the ratings are the confidence values r_ui (Hu, Koren & Volinsky 2008).
        model = AlternatingLeastSquares(random_state=0)
        matrix = sp.csr_matrix(train.csr, dtype=np.float32)
        # implicit runs its own threads; a BLAS thread pool on top only oversubscribes.
        with timed() as fit, threadpool_limits(1, "blas"):
            model.fit(matrix, show_progress=False)
        users = np.asarray(model.user_factors)
        items = np.asarray(model.item_factors)
        popularity = np.diff(train.csc.indptr).astype(np.float64)
        adapter = ScoreAdapter(lambda u: items @ users[u], popularity)
        row = ranking_row(label, adapter, train, test, fit.wall, None)
    except Exception as exc:
        traceback.print_exc()
        row = {"model": label, "error": f"{type(exc).__name__}: {exc}"}
    print(format_row(row), flush=True)
    return row


def popularity_row(train: Interactions, test: Triples) -> dict[str, Any]:
    with timed() as fit:
        counts = np.diff(train.csc.indptr).astype(np.float64)  # number of train ratings per item
    row = ranking_row(
        "most popular (count)", ScoreAdapter(lambda u: counts, counts), train, test, fit.wall, None
    )
    print(format_row(row), flush=True)
    return row


# ---- output ------------------------------------------------------------------------
COLUMNS = [
    ("model", "model"),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("precision", f"P@{K}"),
    ("recall", f"R@{K}"),
    ("ndcg", f"NDCG@{K}"),
    ("coverage", "coverage"),
    ("fit_seconds", "fit s"),
]


def format_row(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"| {row['model']} | failed: {row['error']} |" + " |" * (len(COLUMNS) - 2)
    cells = [row["model"]]
    for key, _ in COLUMNS[1:]:
        value = row[key]
        if value is None:
            cells.append("–")
        elif key == "fit_seconds":
            cells.append(f"{value:.2f}")
        else:
            cells.append(f"{value:.4f}")
    return "| " + " | ".join(cells) + " |"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    align = "|---|" + "---:|" * (len(COLUMNS) - 1)
    return "\n".join([header, align, *(format_row(r) for r in rows)])


def library_versions() -> str:
    parts = []
    for module in ("scipy", "numba", "surprise", "implicit"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            parts.append(f"{module} not installed")
    return ", ".join(parts)


def section(table: str, n_train: int, n_test: int, total_seconds: float, load: float) -> str:
    """The body of the ``## ML-100K accuracy`` section (``write_section`` adds the command line)."""
    return f"""Whole run {total_seconds:.0f} s; {library_versions()}.

* Data: MovieLens 100K, rows in the order of `ratings.demo_data.ml100k_arrays()`; split
  `rng = np.random.default_rng(42); p = rng.permutation(n)`, train = `p[:int(0.8*n)]`
  ({n_train} ratings), test = `p[int(0.8*n):]` ({n_test} ratings).
* RMSE/MAE: every test rating, predicted by the model's own `predict` (with its own
  fallbacks for ids unseen in train); "–" for ranking-only models.
* P@{K}, R@{K}, NDCG@{K}: `recommender.engine.metrics.evaluate_ranking` for every row —
  users with at least one test rating >= 4 are evaluated, every train item the user
  did not rate in train is ranked, binary gains, NDCG discount log2(rank + 1) normalized
  by the ideal DCG over min(#relevant, {K}). Coverage: distinct items in the top-{K}
  lists / train catalog.
* Hyperparameters: Tastebase models use their defaults (`BENCH_PARAMS` in the script);
  scikit-surprise and implicit use their library defaults with `random_state=0`;
  implicit ALS gets the rating matrix as confidences. Nothing was tuned on the test split.
  Relevant test items outside the train catalog (or rated by the user in train) cannot
  be recommended and are left out of every model's relevant set.
* fit s: wall-clock `fit` only, on this machine (1-minute load average {load:.1f} when the
  run started; other jobs shared the CPUs, so compare times within one run only);
  Tastebase models are fitted once on a small subset first so numba compilation is excluded.
* surprise's KNNBaseline ranks with its unclipped `estimate`, which puts items rated
  by one or two close neighbours first — hence its near-zero ranking scores. The
  vectorized scores used for ranking are checked against the library's `estimate`.

{table}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated Tastebase registry names (default: all)")
    parser.add_argument("--no-third-party", action="store_true", help="skip surprise, implicit, popularity")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args(argv)

    names = sorted(ALGORITHM_PATHS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in ALGORITHM_PATHS]
    if unknown:
        parser.error(f"unknown algorithms {unknown}; valid: {', '.join(sorted(ALGORITHM_PATHS))}")

    load = load_average()
    with timed() as run:
        train, train_raw, test = brief_split()
        print(
            f"train {train.nnz} ratings ({train.n_users} users x {train.n_items} items), "
            f"test {test[2].shape[0]}"
        )
        print(markdown_table([]), flush=True)
        rows = tastebase_rows(names, train, test)
        if not args.no_third_party:
            rows.append(popularity_row(train, test))
            rows += surprise_rows(train, train_raw, test)
            rows.append(implicit_row(train, test))
    table = markdown_table(rows)
    print()
    print(table)
    if not args.no_write:
        body = section(table, train.nnz, test[2].shape[0], run.wall, load)
        command = command_line("bench.bench_ml100k", argv)
        write_section("bench.bench_ml100k", HEADING, body, command=command, path=args.docs)
        print(f"\nwrote the '{HEADING}' section of {args.docs}")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
