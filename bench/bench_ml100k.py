"""ML-100K accuracy of every Tastebase model next to scikit-surprise and implicit, tuned on validation only.

Usage (from the repository root)::

    python -m bench.bench_ml100k              # seeded 80/20, writes "## ML-100K accuracy"
    python -m bench.bench_ml100k --folds 5    # seeded 5-fold CV, writes "## ML-100K, 5-fold cross-validation"
    python -m bench.bench_ml100k --only ease,bias_baseline --no-third-party --no-write

Protocol, for every split (the 80/20 split, or each fold): the test part is set
aside; every model's hyperparameters are chosen by
:func:`recommender.engine.tune.tune` on a validation split carved from the
*training part only* (``validation_split(train, 0.1, random_state=0)``: fit on
the other 90 %, score each candidate, keep the best); the chosen configuration
is refitted on the whole training part and scored once on the test part.
Rating models are tuned on validation RMSE, ranking-only models on validation
NDCG@10. The third-party peers go through the same :func:`~recommender.engine.tune.search`
on the same validation split where tuning them is cheap (surprise SVD and
KNNBaseline, implicit's ALS); surprise SVD++ (one fit ~10 s) and BaselineOnly
stay at their library defaults.

* 80/20 split: ``rng = np.random.default_rng(42)``, ``p = rng.permutation(n)``,
  the first 80 % of the rows of ``ml100k_arrays()`` in ``p`` order train, the
  rest test.
* ``--folds K``: ``fold[np.random.default_rng(42).permutation(n)] = np.arange(n) % K``;
  fold ``f`` is the test part once, the other folds its training part.
  Each training part is its own vocabulary (users/items seen in it), as in the
  80/20 split.

RMSE/MAE over the test rows through each library's own ``predict``. Ranking
metrics follow ``recommender.engine.metrics.evaluate_ranking`` (relevant =
test rating >= 4, every unseen train item ranked, binary gains, K = 10) for
all models, so third-party models are scored by exactly the same code.
Third-party ranking scores are computed with vectorized re-implementations of
each library's own ``estimate`` formula from its learned parameters, checked
against the library's ``estimate`` on random pairs (the largest difference is
printed). Every Tastebase model is first fitted once on a small subset so
numba compilation is not counted in ``fit s``.

Adding a model: register it (``recommender.engine.registry``) and give it a
search space in ``recommender.engine.tune.SEARCH_SPACES`` (or ``SPACE_OVERRIDES``
below); the 80/20 run takes every registry name, the K-fold run the names in
``FOLD_MODELS``. A name whose module fails to import is skipped with the reason
printed and listed under the table.

Bench-only dependencies: ``pip install -r bench/requirements.txt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from bench.common import DOCS, command_line, load_average, ml100k_arrays, timed, write_section
from recommender.engine.interactions import Interactions
from recommender.engine.metrics import evaluate_ranking, mae, rmse
from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm, make_model
from recommender.engine.tune import (
    SEARCH_SPACES,
    VALIDATION_FRACTION,
    default_metric,
    format_params,
    grid_candidates,
    search,
    tune,
)

HEADING = "## ML-100K accuracy"
FOLDS_HEADING = "## ML-100K, 5-fold cross-validation"
#: Marker names in docs/benchmarks.md. ``_folds`` (not ``.folds``): the marker
#: pattern ends the name at a word boundary, so the two must not share a prefix
#: followed by punctuation.
SECTION = "bench.bench_ml100k"
FOLDS_SECTION = "bench.bench_ml100k_folds"
K = 10
SPLIT_SEED = 42
#: Seed of the validation carving inside every training part.
VALIDATION_SEED = 0

#: Search spaces that differ from ``recommender.engine.tune.SEARCH_SPACES`` for this benchmark only.
#: The blend's member set is chosen on validation like any hyperparameter: the default
#: (served Bayesian SVD++ and the two kNN models, all core) or the same plus I-AutoRec
#: (the optional PyTorch extra's most accurate model). Member weights are fitted inside
#: ``Blend.fit`` on its own held-out part of the fit part.
SPACE_OVERRIDES: dict[str, dict[str, list[Any]]] = {
    "blend": {
        "members": [
            "bayesian_svdpp_served+item_knn+user_knn",
            "bayesian_svdpp_served+item_knn+user_knn+autorec",
        ]
    },
}
#: ... and for the K-fold run only: one L-BFGS fit alone takes ~25 s on two free cores
#: (200 full-batch iterations), so in the folds it runs at its default, not searched;
#: explicit ALS keeps 128 factors there (a 192-factor fit costs ~2.5x one of 128, and on
#: fold 1 192 won on validation RMSE by less than 5e-5: 0.9133 both).
FOLD_SPACE_OVERRIDES: dict[str, dict[str, list[Any]]] = {
    "lbfgs_mf": {},
    "explicit_als": {"factors": [128], "regularization": [1.0, 1.3, 2.0]},
}

#: The Tastebase models of the K-fold run (every registry name runs in the 80/20 one). The
#: K-fold run fits each search ``K`` times, so it keeps the main models within ~35 minutes
#: on two cores: global_mean, user_knn, blend and lbfgs_mf (one fit ~25 s on two free
#: cores, ~130 s on busy ones; same objective as sgd_mf) are only in the 80/20 table. Of
#: the neural models (optional PyTorch extra; each search ~25 CPU s, 3 candidates) only
#: I-AutoRec, the most accurate, runs in the folds: embedding_mf fits sgd_mf's objective,
#: deep_mf and residual_mf were behind it on validation RMSE.
FOLD_MODELS: tuple[str, ...] = (
    "bias_baseline",
    "explicit_als",
    "sgd_mf",
    "bpmf",
    "bayesian_svdpp_served",
    "item_knn",
    "implicit_als",
    "pure_svd",
    "ease",
    "rank_blend",
    "autorec",
)

#: Models that choose something on a validation split inside their own ``fit`` (from the
#: training part only), reported in the "val." column.
TUNED_IN_FIT: dict[str, str] = {
    "rank_blend": (
        "members (implicit_als, pure_svd, ease, item_knn) fixed; their weights (1, w2, w3, w4), "
        "w in {0, 0.25, 0.5, 1}, chosen in `fit` on validation NDCG@10 of the same kind of split"
    ),
}

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]


def space_for(name: str, *, folds: bool = False) -> dict[str, list[Any]]:
    """The benchmark's search space for a registry name (``{}``: defaults, not searched)."""
    if folds and name in FOLD_SPACE_OVERRIDES:
        return FOLD_SPACE_OVERRIDES[name]
    return SPACE_OVERRIDES.get(name, SEARCH_SPACES.get(name, {}))


# ---- data --------------------------------------------------------------------
@dataclass
class Split:
    """One train/test split of ML-100K: train as Interactions (its own vocabulary), test as raw triples."""

    label: str
    train: Interactions
    test: Triples


def _split(rows: np.ndarray, test_rows: np.ndarray, label: str) -> Split:
    users, items, ratings, timestamps = ml100k_arrays()
    train = Interactions.from_arrays(users[rows], items[rows], ratings[rows], timestamps[rows])
    test = (users[test_rows], items[test_rows], ratings[test_rows].astype(np.float64))
    return Split(label, train, test)


def holdout_split() -> Split:
    """The project's 80/20 split: ``p = default_rng(42).permutation(n)``, train ``p[:0.8n]``."""
    n = ml100k_arrays()[2].shape[0]
    p = np.random.default_rng(SPLIT_SEED).permutation(n)
    return _split(p[: int(0.8 * n)], p[int(0.8 * n) :], "80/20")


def fold_splits(k: int) -> list[Split]:
    """Seeded K-fold: ``fold[default_rng(42).permutation(n)] = arange(n) % k``; fold f tests once."""
    n = ml100k_arrays()[2].shape[0]
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(SPLIT_SEED).permutation(n)] = np.arange(n) % k
    return [_split(np.flatnonzero(fold != f), np.flatnonzero(fold == f), f"fold {f + 1}") for f in range(k)]


# ---- adapters for third-party models ----------------------------------------------------
class ScoreAdapter:
    """Presents a foreign model to ``evaluate_ranking``: ``score_items`` over Tastebase item indices."""

    ranking_only = True

    def __init__(self, score_row: Callable[[int], np.ndarray], popularity: np.ndarray) -> None:
        self._score_row = score_row
        self.popularity_ = popularity

    def score_items(self, user: int) -> np.ndarray:
        return self._score_row(user)


def _popularity(data: Interactions) -> np.ndarray:
    return np.diff(data.csc.indptr).astype(np.float64)  # number of train ratings per item


class SurpriseModel:
    """A scikit-surprise algorithm fitted on an Interactions, with the Tastebase scoring interface.

    ``predict`` is the library's own per-rating ``predict`` (clipped, with its
    unknown-id fallbacks); ``score_items`` its unclipped ``estimate`` for
    every item, vectorized (:func:`surprise_scorer`).
    """

    ranking_only = False

    def __init__(self, algo: Any, data: Interactions) -> None:
        self.algo = algo
        self.trainset = surprise_trainset(data)
        algo.fit(self.trainset)
        self.popularity_ = _popularity(data)
        # Tastebase index -> surprise inner id, -1 for an id without a rating in ``data``
        # (a validation fit part keeps the whole training vocabulary).
        users = self.trainset._raw2inner_id_users
        items = self.trainset._raw2inner_id_items
        self._uid = np.array([users.get(str(u), -1) for u in data.user_ids.tolist()], dtype=np.int64)
        self._iid = np.array([items.get(str(i), -1) for i in data.item_ids.tolist()], dtype=np.int64)
        self.score_inner = surprise_scorer(algo, self.trainset)

    def predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        return np.array(
            [
                self.algo.predict(str(u), str(i)).est
                for u, i in zip(np.asarray(user_ids).tolist(), np.asarray(item_ids).tolist(), strict=True)
            ]
        )

    def score_items(self, user: int) -> np.ndarray:
        """The library's scores; an item it never saw ranks last, a user it never saw gets popularity."""
        inner = int(self._uid[user])
        if inner < 0:
            return self.popularity_
        row = self.score_inner(inner)
        return np.where(self._iid >= 0, row[np.maximum(self._iid, 0)], row.min() - 1.0)


def surprise_trainset(data: Interactions) -> Any:
    """surprise's ``Trainset`` of ``data``, rows grouped by user.

    Grouped by user (stable): surprise numbers users in order of first
    appearance and lists each item's raters in file order, so both orders
    agree and heapq's tie order in KNNBaseline matches a stable argsort in
    :func:`knn_baseline_scorer`.
    """
    import surprise

    users, items, ratings = data.to_raw_arrays()
    by_user = np.argsort(users, kind="stable")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.tsv"
        np.savetxt(
            path,
            np.column_stack([users[by_user], items[by_user], ratings[by_user]]),
            fmt=["%d", "%d", "%g"],
            delimiter="\t",
        )
        reader = surprise.Reader(line_format="user item rating", sep="\t", rating_scale=(1, 5))
        return surprise.Dataset.load_from_file(str(path), reader=reader).build_full_trainset()


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


def check_against_estimate(label: str, model: SurpriseModel) -> None:
    """Print the largest |vectorized score - library estimate| over 600 random pairs."""
    algo, trainset = model.algo, model.trainset
    rng = np.random.default_rng(0)
    worst = 0.0
    for u in rng.integers(0, trainset.n_users, 30).tolist():
        row = model.score_inner(u)
        for i in rng.integers(0, trainset.n_items, 20).tolist():
            est = algo.estimate(u, i)
            est = est[0] if isinstance(est, tuple) else est
            worst = max(worst, abs(float(est) - float(row[i])))
    print(f"  {label}: vectorized scores vs library estimate on 600 pairs: max |diff| = {worst:.2e}")


def implicit_als_model(params: Mapping[str, Any], data: Interactions) -> ScoreAdapter:
    """implicit's ``AlternatingLeastSquares`` on ``data`` with the ratings as confidences.

    implicit weights a rated pair by ``c_ui = alpha r_ui`` (Hu, Koren & Volinsky 2008).
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    model = AlternatingLeastSquares(random_state=0, **params)
    matrix = sp.csr_matrix(data.csr, dtype=np.float32)
    # implicit runs its own threads; a BLAS thread pool on top only oversubscribes.
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return ScoreAdapter(lambda u: items @ users[u], _popularity(data))


def most_popular(params: Mapping[str, Any], data: Interactions) -> ScoreAdapter:
    """Every user gets the items with the most training ratings (no parameters)."""
    counts = _popularity(data)
    return ScoreAdapter(lambda u: counts, counts)


# ---- the models of one run ------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One row of the tables: how to fit it on training data given params, and what to search.

    ``space`` ``{}`` = not searched (library / estimator defaults). ``fit``
    returns an object with ``predict`` (unless ``ranking_only``) and
    ``score_items`` + ``popularity_``.
    """

    label: str
    fit: Callable[[dict[str, Any], Interactions], Any]
    space: Mapping[str, Sequence[Any]]
    metric: str
    ranking_only: bool
    registry_name: str | None = None
    check: Callable[[str, Any], None] | None = None


def tastebase_entries(names: Sequence[str], skipped: list[str], *, folds: bool = False) -> list[Entry]:
    entries = []
    for name in names:
        try:
            cls = get_algorithm(name)
            make_model(name)  # raises ImportError too if an optional extra (PyTorch) is missing
        except ImportError as exc:  # e.g. an optional dependency of a neural model
            print(f"skipping {name}: import failed: {exc}", flush=True)
            skipped.append(f"{name} ({type(exc).__name__}: {exc})")
            continue
        entries.append(
            Entry(
                label=f"tastebase {name}",
                fit=lambda params, data, name=name: make_model(name, params).fit(data),
                space=space_for(name, folds=folds),
                metric=default_metric(cls),
                ranking_only=bool(getattr(cls, "ranking_only", False)),
                registry_name=name,
            )
        )
    return entries


def _surprise(cls_name: str, **fixed: Any) -> Callable[[dict[str, Any], Interactions], SurpriseModel]:
    def fit(params: dict[str, Any], data: Interactions) -> SurpriseModel:
        import surprise

        kwargs = {**fixed, **params}
        if "similarity" in kwargs:  # KNNBaseline: a flat name for the sim_options dict
            kwargs["sim_options"] = {"name": kwargs.pop("similarity"), "user_based": True}
        return SurpriseModel(getattr(surprise, cls_name)(**kwargs), data)

    return fit


def peer_entries() -> list[Entry]:
    """The third-party rows: tuned where one fit is cheap, library defaults otherwise."""
    return [
        Entry(
            "most popular (count)",
            most_popular,
            {},
            "ndcg@10",
            ranking_only=True,
        ),
        Entry(
            "surprise SVD",
            _surprise("SVD", random_state=0),
            {"reg_all": [0.02, 0.05, 0.1], "n_epochs": [20, 40]},
            "rmse",
            ranking_only=False,
            check=check_against_estimate,
        ),
        Entry(
            "surprise SVDpp",
            _surprise("SVDpp", random_state=0),
            {},
            "rmse",
            False,
            check=check_against_estimate,
        ),
        Entry("surprise BaselineOnly", _surprise("BaselineOnly", verbose=False), {}, "rmse", False),
        Entry(
            "surprise KNNBaseline",
            _surprise("KNNBaseline", verbose=False),
            {"k": [40, 80], "similarity": ["msd", "pearson_baseline"]},
            "rmse",
            ranking_only=False,
            check=check_against_estimate,
        ),
        Entry(
            "implicit ALS",
            implicit_als_model,
            # The 2026-12-02 run chose 128, 50, 3: the top of {64, 128} x {5, 50} x {1, 3}.
            {"factors": [128, 256], "regularization": [50.0, 150.0], "alpha": [3.0, 10.0]},
            "ndcg@10",
            ranking_only=True,
        ),
    ]


# ---- one split ----------------------------------------------------------------------------
def score_on_test(model: Any, entry: Entry, train: Interactions, test: Triples) -> dict[str, Any]:
    """Score a model fitted on ``train`` once on the test triples."""
    ranking = evaluate_ranking(model, train, test, k=K)
    pred = None if entry.ranking_only else np.asarray(model.predict(test[0], test[1]), dtype=np.float64)
    return {
        "rmse": None if pred is None else rmse(test[2], pred),
        "mae": None if pred is None else mae(test[2], pred),
        "precision": ranking[f"precision@{K}"],
        "recall": ranking[f"recall@{K}"],
        "ndcg": ranking[f"ndcg@{K}"],
        "coverage": ranking["coverage"],
    }


def _tuned_value(metrics: Mapping[str, Any], metric: str) -> float | None:
    return metrics["rmse"] if metric == "rmse" else metrics["ndcg"]


def run_entry(entry: Entry, split: Split, *, defaults: bool, warm: Interactions) -> dict[str, Any]:
    """Tune ``entry`` on a validation split of ``split.train``, refit on all of it, test once."""
    row: dict[str, Any] = {"model": entry.label, "split": split.label}
    train, test = split.train, split.test
    if entry.registry_name is not None:
        name = entry.registry_name
        entry.fit({}, warm)  # numba compilation, not timed
        with timed() as whole:
            result = tune(
                train,
                name,
                entry.space,
                metric=entry.metric,
                validation_fraction=VALIDATION_FRACTION,
                random_state=VALIDATION_SEED,
            )
        model, params, val = result.model, result.params, result.validation_score
        fit_seconds = result.fit_seconds
        search_seconds = None if result.search is None else whole.wall - fit_seconds
    else:
        val, params, search_seconds = None, {}, None
        candidates = grid_candidates(entry.space)
        if len(candidates) > 1:
            with timed() as took:
                found = search(
                    candidates,
                    train,
                    entry.fit,
                    metric=entry.metric,
                    validation_fraction=VALIDATION_FRACTION,
                    random_state=VALIDATION_SEED,
                )
            val, params, search_seconds = found.best_score, found.best_params, took.wall
        with timed() as fit:
            model = entry.fit(dict(params), train)
        fit_seconds = fit.wall
        if entry.check is not None:
            entry.check(entry.label, model)
    row.update(score_on_test(model, entry, train, test))
    tuned_on = entry.metric if val is not None else "– (defaults)"
    # RankBlend chooses its member weights on a validation split inside fit.
    inner: Any = getattr(model, "validation_ndcg_", None)
    inner_tuned = val is None and isinstance(inner, Mapping) and inner.get("blend") is not None
    if inner_tuned:
        val, tuned_on = inner["blend"], f"{entry.metric} (in fit)"
        blend: Any = model
        params = {**params, "weights": [float(w) for w in blend.weights_]}
    row.update(
        params=params,
        searched=val is not None,
        tuned_on=tuned_on,
        validation=val,
        fit_seconds=fit_seconds,
        search_seconds=search_seconds,
    )
    if defaults:
        if row["searched"] and not inner_tuned and not _are_defaults(entry, params):
            default_model = entry.fit({}, train)
            row["at_defaults"] = _tuned_value(score_on_test(default_model, entry, train, test), entry.metric)
        else:
            row["at_defaults"] = _tuned_value(row, entry.metric)
    return row


def _are_defaults(entry: Entry, params: Mapping[str, Any]) -> bool:
    """True if ``params`` are the estimator's defaults (its test metric is then already known)."""
    if entry.registry_name is None:
        return False
    defaults = make_model(entry.registry_name).get_params()
    return all(defaults.get(key) == value for key, value in params.items())


def run_split(entries: Sequence[Entry], split: Split, *, defaults: bool) -> list[dict[str, Any]]:
    print(
        f"\n{split.label}: train {split.train.nnz} ratings ({split.train.n_users} users x "
        f"{split.train.n_items} items), test {split.test[2].shape[0]}",
        flush=True,
    )
    warm = split.train.select(np.arange(split.train.nnz) % 40 == 0)  # ~2 000 ratings, same vocabularies
    rows = []
    for entry in entries:
        try:
            rows.append(run_entry(entry, split, defaults=defaults, warm=warm))
        except Exception as exc:  # report and keep benchmarking the others
            traceback.print_exc()
            rows.append({"model": entry.label, "split": split.label, "error": f"{type(exc).__name__}: {exc}"})
        print(format_row(rows[-1], HOLDOUT_COLUMNS), flush=True)
    return rows


# ---- output ------------------------------------------------------------------------
HOLDOUT_COLUMNS = [
    ("model", "model"),
    ("tuned_on", "tuned on"),
    ("params", "chosen params"),
    ("validation", "val."),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("precision", f"P@{K}"),
    ("recall", f"R@{K}"),
    ("ndcg", f"NDCG@{K}"),
    ("coverage", "coverage"),
    ("fit_seconds", "fit s"),
    ("search_seconds", "search s"),
    ("at_defaults", "test at defaults"),
]
FOLD_COLUMNS = [
    ("model", "model"),
    ("tuned_on", "tuned on"),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("precision", f"P@{K}"),
    ("recall", f"R@{K}"),
    ("ndcg", f"NDCG@{K}"),
    ("coverage", "coverage"),
    ("fit_seconds", "fit s"),
    ("search_seconds", "search s"),
]
_SECONDS = {"fit_seconds", "search_seconds"}


def _cell(key: str, value: Any, row: Mapping[str, Any]) -> str:
    if key == "params":
        return format_params(value) if row.get("searched") else "defaults"
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):  # (mean, std) over folds
        mean, std = value
        digits = 2 if key in _SECONDS else 4
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{value:.2f}" if key in _SECONDS else f"{value:.4f}"


def format_row(row: Mapping[str, Any], columns: Sequence[tuple[str, str]]) -> str:
    if "error" in row:
        return f"| {row['model']} | failed: {row['error']} |" + " |" * (len(columns) - 2)
    return "| " + " | ".join(_cell(key, row.get(key), row) for key, _ in columns) + " |"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    header = "| " + " | ".join(title for _, title in columns) + " |"
    align = (
        "|"
        + "|".join("---" if key in {"model", "tuned_on", "params"} else "---:" for key, _ in columns)
        + "|"
    )
    return "\n".join([header, align, *(format_row(r, columns) for r in rows)])


def summarize_folds(per_fold: Sequence[Sequence[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(one mean ± std row per model, "chosen params per fold" lines); std is the sample std (ddof=1)."""
    labels = [row["model"] for row in per_fold[0]]
    summary, chosen = [], []
    for label in labels:
        rows = [next(r for r in fold if r["model"] == label) for fold in per_fold]
        failed = [r for r in rows if "error" in r]
        if failed:
            summary.append({"model": label, "error": failed[0]["error"]})
            continue
        out: dict[str, Any] = {"model": label, "tuned_on": rows[0]["tuned_on"]}
        for key, _ in FOLD_COLUMNS[2:]:
            values = [r[key] for r in rows]
            out[key] = None if values[0] is None else (float(np.mean(values)), float(np.std(values, ddof=1)))
        summary.append(out)
        if rows[0]["searched"]:
            counts = Counter(format_params(r["params"]) for r in rows)
            folds = {
                p: [str(i + 1) for i, r in enumerate(rows) if format_params(r["params"]) == p] for p in counts
            }
            vals = ", ".join(f"{r['validation']:.4f}" for r in rows)
            picks = "; ".join(f"{p} (fold {', '.join(folds[p])})" for p, _ in counts.most_common())
            chosen.append(f"| {label} | {picks} | {vals} |")
    return summary, chosen


def library_versions() -> str:
    parts = []
    for module in ("scipy", "numba", "surprise", "implicit"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            parts.append(f"{module} not installed")
    return ", ".join(parts)


def _spaces_text(entries: Sequence[Entry]) -> str:
    lines = []
    for e in entries:
        if e.space:
            grid = " × ".join(f"{k} ∈ {{{', '.join(str(v) for v in vals)}}}" for k, vals in e.space.items())
            lines.append(f"  * {e.label} ({e.metric}): {grid}")
        elif e.registry_name in TUNED_IN_FIT:
            lines.append(f"  * {e.label}: {TUNED_IN_FIT[e.registry_name]}")
        else:
            lines.append(f"  * {e.label}: not searched (defaults)")
    return "\n".join(lines)


def _common_notes(entries: Sequence[Entry], skipped: Sequence[str]) -> str:
    skipped_text = (
        f"\n* Registry names skipped because their module failed to import: {'; '.join(skipped)}."
        if skipped
        else ""
    )
    return f"""* What was tuned on what: inside every training part, `recommender.engine.tune`
  holds out {VALIDATION_FRACTION:.0%} of the training ratings (`validation_split(train,
  {VALIDATION_FRACTION}, random_state={VALIDATION_SEED})`), fits every candidate of the model's grid on the
  other {1 - VALIDATION_FRACTION:.0%} and keeps the best on validation **RMSE** (models that predict
  ratings) or validation **NDCG@{K}** (ranking-only models; as on the test part, only
  items with a rating in the fit part are ranked or count as relevant); the winner is refitted on the
  whole training part and scored **once** on the test part. No test rating is seen
  before that. Grids (tie: the earlier candidate wins):
{_spaces_text(entries)}
* The grids are centred on the estimator defaults, and those defaults were chosen before
  this protocol, with the 80/20 *test* split below in view (the estimator docstrings
  say which); the search only lets validation move away from them.
* Peers: scikit-surprise SVD and KNNBaseline and implicit's ALS are tuned by the same
  search on the same validation split (about a second a fit); SVD++ (ten times that)
  and BaselineOnly run at their library defaults, not searched; all with
  `random_state=0` where they take one. implicit gets the rating matrix as confidences.
* RMSE/MAE: every test rating, predicted by the model's own `predict` (with its own
  fallbacks for ids unseen in train); "–" for ranking-only models.
* P@{K}, R@{K}, NDCG@{K}: `recommender.engine.metrics.evaluate_ranking` for every row —
  users with at least one test rating >= 4 are evaluated, every train item the user
  did not rate in train is ranked, binary gains, NDCG discount log2(rank + 1) normalized
  by the ideal DCG over min(#relevant, {K}). Relevant test items outside the train catalog
  (or rated by the user in train) cannot be recommended and are left out of every
  model's relevant set. Coverage: distinct items in the top-{K} lists / train catalog.
* fit s: wall-clock `fit` of the chosen configuration on the whole training part;
  search s: the whole search (every candidate's fit on the fit part and its validation
  score). Tastebase models are fitted once on a small subset first so numba compilation
  is excluded. Other jobs shared the CPUs: compare times within one run only.
* surprise's KNNBaseline ranks with its unclipped `estimate`, which puts items rated
  by one or two close neighbours first — hence its near-zero ranking scores. The
  vectorized scores used for ranking are checked against the library's `estimate`.{skipped_text}"""


def holdout_section(
    rows: list[dict[str, Any]],
    split: Split,
    entries: Sequence[Entry],
    skipped: list[str],
    total: float,
    load: float,
) -> str:
    """The body of the ``## ML-100K accuracy`` section (``write_section`` adds the command line)."""
    return f"""Whole run {total:.0f} s (1-minute load average {load:.1f} at the start); {library_versions()}.

* Data: MovieLens 100K, rows in the order of `ratings.demo_data.ml100k_arrays()`; split
  `rng = np.random.default_rng({SPLIT_SEED}); p = rng.permutation(n)`, train = `p[:int(0.8*n)]`
  ({split.train.nnz} ratings), test = `p[int(0.8*n):]` ({split.test[2].shape[0]} ratings).
{_common_notes(entries, skipped)}
* val.: the chosen candidate's validation score (RMSE or NDCG@{K}, per "tuned on").
  test at defaults: the same test metric for the estimator's (or library's) default
  hyperparameters, for comparison only — for Tastebase models it is not a clean
  number, since those defaults were picked looking at this test split.

{markdown_table(rows, HOLDOUT_COLUMNS)}
"""


def _fold_overrides_text(entries: Sequence[Entry]) -> str:
    names = [e.registry_name for e in entries if e.registry_name in FOLD_SPACE_OVERRIDES]
    unsearched = [n for n in names if n and not FOLD_SPACE_OVERRIDES[n]]
    narrowed = [n for n in names if n and FOLD_SPACE_OVERRIDES[n]]
    text = ""
    if unsearched:
        text += (
            f"\n* Not searched in the folds, for time (one fit of L-BFGS MF alone takes ~25 s): "
            f"{', '.join(unsearched)}; they run at their estimator defaults."
        )
    if narrowed:
        text += (
            f"\n* A smaller grid in the folds than in the 80/20 run, for time (see the grids below): "
            f"{', '.join(narrowed)} (a 192-factor explicit ALS fit costs ~2.5x one of 128 factors)."
        )
    return text


def folds_section(
    summary: list[dict[str, Any]],
    chosen: list[str],
    k: int,
    splits: Sequence[Split],
    entries: Sequence[Entry],
    skipped: list[str],
    total: float,
    load: float,
) -> str:
    """The body of the ``## ML-100K, 5-fold cross-validation`` section."""
    sizes = ", ".join(f"{s.train.nnz}/{s.test[2].shape[0]}" for s in splits)
    models = ", ".join(e.registry_name for e in entries if e.registry_name)
    return f"""Whole run {total:.0f} s (1-minute load average {load:.1f} at the start); {library_versions()}.

* Data: MovieLens 100K, rows in the order of `ratings.demo_data.ml100k_arrays()`; folds
  `fold[np.random.default_rng({SPLIT_SEED}).permutation(n)] = np.arange(n) % {k}`; fold f is the test
  part once and the other {k - 1} folds its training part (train/test ratings per fold: {sizes}).
  Every model and peer sees the same folds. Each cell is the mean ± sample standard
  deviation (ddof = 1) of the {k} per-fold test values.
* Tastebase models in this run: {models} (the others of the 80/20 table are left out to
  keep the run within ~35 minutes on two shared cores; L-BFGS MF, one fit of which takes
  ~25 s on two free cores, minimizes the same objective as SGD MF).{_fold_overrides_text(entries)}
{_common_notes(entries, skipped)}

{markdown_table(summary, FOLD_COLUMNS)}

Chosen hyperparameters per fold (validation score of the winner, folds 1–{k}):

| model | chosen (folds) | validation score per fold |
|---|---|---|
{chr(10).join(chosen)}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--only", help="comma-separated Tastebase registry names (default: all / FOLD_MODELS)"
    )
    parser.add_argument(
        "--folds", type=int, default=0, help="K-fold cross-validation instead of the 80/20 split"
    )
    parser.add_argument(
        "--first-folds", type=int, help="run only the first N folds (development; never written)"
    )
    parser.add_argument("--exclude", help="comma-separated Tastebase registry names to leave out")
    parser.add_argument("--no-third-party", action="store_true", help="skip surprise, implicit, popularity")
    parser.add_argument(
        "--no-defaults", action="store_true", help="80/20: skip the 'test at defaults' column"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    if args.folds and args.folds < 2:
        parser.error("--folds needs at least 2")

    if args.only:
        names = [n.strip() for n in args.only.split(",")]
    else:
        # Spark-trained models need a Spark session: bench/bench_spark.py measures them.
        names = (
            list(FOLD_MODELS)
            if args.folds
            else sorted(n for n in ALGORITHM_PATHS if not n.startswith("spark_"))
        )
    excluded = {n.strip() for n in (args.exclude or "").split(",") if n.strip()}
    names = [n for n in names if n not in excluded]
    unknown = [n for n in names + sorted(excluded) if n not in ALGORITHM_PATHS]
    if unknown:
        parser.error(f"unknown algorithms {unknown}; valid: {', '.join(sorted(ALGORITHM_PATHS))}")
    skipped: list[str] = []
    entries = tastebase_entries(names, skipped, folds=bool(args.folds))
    if not args.no_third_party:
        entries += peer_entries()

    load = load_average()
    if not args.folds:
        with timed() as run:
            split = holdout_split()
            print(markdown_table([], HOLDOUT_COLUMNS), flush=True)
            rows = run_split(entries, split, defaults=not args.no_defaults)
        table = markdown_table(rows, HOLDOUT_COLUMNS)
        print(f"\n{table}\n\nwhole run {run.wall:.0f} s")
        if not args.no_write:
            body = holdout_section(rows, split, entries, skipped, run.wall, load)
            write_section(SECTION, HEADING, body, command=command_line(SECTION, argv), path=args.docs)
            print(f"wrote the '{HEADING}' section of {args.docs}")
        return 0 if all("error" not in r for r in rows) else 1

    with timed() as run:
        splits = fold_splits(args.folds)[: args.first_folds]
        per_fold = [run_split(entries, s, defaults=False) for s in splits]
    summary, chosen = summarize_folds(per_fold)
    table = markdown_table(summary, FOLD_COLUMNS)
    print(f"\n{table}\n")
    print("\n".join(chosen))
    print(f"\nwhole run {run.wall:.0f} s")
    if not args.no_write and args.first_folds is None:
        body = folds_section(summary, chosen, args.folds, splits, entries, skipped, run.wall, load)
        heading = FOLDS_HEADING.replace("5-fold", f"{args.folds}-fold")
        write_section(FOLDS_SECTION, heading, body, command=command_line(SECTION, argv), path=args.docs)
        print(f"wrote the '{heading}' section of {args.docs}")
    return 0 if all("error" not in r for fold in per_fold for r in fold) else 1


if __name__ == "__main__":
    sys.exit(main())
