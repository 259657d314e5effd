"""Which "similar items" lists does a person recognise? Leave-one-liked-out on ML-100K.

Usage (from the repository root)::

    python -m bench.bench_similar              # full grid, writes docs/benchmarks.md
    python -m bench.bench_similar --no-write   # print only

Protocol (``recommender.engine.item_similarity_eval``; N = 10):

* **Test split**: every user with >= 2 ratings >= 4 has one of them hidden
  (``leave_one_liked_out(data, random_state=0)``); what is left is ``train``.
* **Validation splits**, carved from ``train`` only: the same again with
  ``random_state=1, 2, 3``. Every configuration of a family's grid is fitted
  on each validation training part and scored on its hidden items; the family
  keeps the configuration with the best mean validation popularity-stratified
  hit rate@10 (gamma = 0.5), which is then refitted on ``train`` and scored
  once on the test hidden items. The served winner is the family with the
  best validation score. The test split never informs a choice.
* Lists are what the site shows: the first 10 of ``ItemKNN.export_tables()``
  (positive neighbours, best first), or the cosine of ``FactorTables``'
  ``unit_vectors`` (the selector's fallback).
* ``genre overlap``: mean Jaccard overlap of ML-100K genres between an item
  and its listed items, a check against what a person sees (no model uses genres).
* ``site NDCG@10``: what the retrain promotion gate would measure for an
  ``item_knn`` configuration (``recommender.services.training``: per-user 10 %
  holdout with seed 0, For-you ranking from the stored top 30 neighbours).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from bench.common import DOCS, command_line, load_average, ml100k_arrays, ml100k_folder, timed, write_section
from recommender.engine.interactions import Interactions
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
)
from recommender.engine.metrics import evaluate_ranking
from recommender.engine.readers import ItemTable, read_dataset
from recommender.engine.registry import make_model
from recommender.engine.similarity import SIMILARITIES
from recommender.engine.split import per_user_split
from recommender.engine.tables import FactorTables, NeighborTableRanker, NeighborTables

HEADING = "## Similar items: offline quality"
N = 10
GAMMA = 0.5
TEST_SEED, VALIDATION_SEEDS = 0, (1, 2, 3)
#: What ``recommender.services.training`` uses: ``HOLDOUT_SEED``, ``TASTEBASE_HOLDOUT_FRACTION``
#: and ``TASTEBASE_NEIGHBORS`` (defaults).
SITE_SEED, SITE_FRACTION, SITE_NEIGHBORS = 0, 0.1, 30
#: The items the site issue complained about (ML-100K ids).
SHOWCASE = {1: "Toy Story (1995)", 183: "Alien (1979)"}

SHRINKAGES = (10.0, 50.0, 100.0, 250.0)
MIN_SUPPORTS = (1, 5, 20)
IMPLICIT_GRID = [
    {"factors": f, "regularization": r} for f, r in product((16, 32, 64, 128), (10.0, 50.0, 200.0))
]
EXPLICIT_GRID = [{"factors": f, "regularization": r} for f, r in product((16, 64, 128), (0.5, 1.3, 4.0))]
OLD_DEFAULT: dict[str, Any] = {}  # ItemKNN's constructor defaults, as served before this study


@dataclass
class Family:
    """One row of the table: a method and the grid its configuration is tuned over."""

    name: str
    kind: str  # "item_knn", "factor", "popularity", "random"
    algorithm: str | None = None
    grid: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    tuned: bool = True


def families() -> list[Family]:
    out = [
        Family("most popular (floor)", "popularity", tuned=False),
        Family("random (floor)", "random", tuned=False),
        Family("item_knn old default", "item_knn", "item_knn", [OLD_DEFAULT], tuned=False),
    ]
    for sim in SIMILARITIES:
        shrunk = [
            {"similarity": sim, "shrinkage": s, "min_support": m}
            for s, m in product(SHRINKAGES, MIN_SUPPORTS)
        ]
        plain = [{"similarity": sim, "shrinkage": 0.0, "min_support": m} for m in MIN_SUPPORTS]
        out.append(Family(f"item_knn {sim}, shrinkage", "item_knn", "item_knn", shrunk))
        out.append(Family(f"item_knn {sim}, no shrinkage", "item_knn", "item_knn", plain))
    out.append(Family("implicit_als factor cosine", "factor", "implicit_als", IMPLICIT_GRID))
    out.append(Family("explicit_als factor cosine", "factor", "explicit_als", EXPLICIT_GRID))
    return out


# ---- lists -------------------------------------------------------------------
def fit_lists(family: Family, params: dict[str, Any], train: Interactions) -> tuple[NDArray[np.int64], float]:
    """(top-N lists of every item, fit seconds) of ``family`` with ``params`` fitted on ``train``."""
    if family.kind == "popularity":
        with timed() as fit:
            lists = popularity_lists(train, N)
        return lists, fit.wall
    if family.kind == "random":
        return random_lists(train.n_items, N, random_state=0), 0.0
    assert family.algorithm is not None
    model = make_model(family.algorithm, params)
    with timed() as fit:
        model.fit(train)
    tables = model.export_tables()
    if isinstance(tables, NeighborTables):
        return lists_from_neighbor_tables(tables, train.item_ids, N), fit.wall
    assert isinstance(tables, FactorTables)
    return factor_cosine_lists(tables, N), fit.wall


def warm_up(train: Interactions) -> None:
    """Compile every numba kernel once on a small subset, so fit times exclude compilation."""
    small = train.select(np.arange(train.nnz) % 40 == 0)
    for algorithm in ("item_knn", "implicit_als", "explicit_als"):
        for sim in SIMILARITIES if algorithm == "item_knn" else ("",):
            make_model(algorithm, {"similarity": sim} if sim else {}).fit(small)


def site_ndcg(data: Interactions, params: dict[str, Any]) -> float:
    """NDCG@10 of an ``item_knn`` configuration as the retrain promotion gate measures it."""
    train, test = per_user_split(data, test_fraction=SITE_FRACTION, random_state=SITE_SEED)
    model = make_model("item_knn", params).fit(train)
    tables = model.export_tables()
    assert isinstance(tables, NeighborTables)
    ranker = NeighborTableRanker(tables.top(SITE_NEIGHBORS), train, model.popularity_)
    return float(evaluate_ranking(ranker, train, test, k=10)["ndcg@10"])  # type: ignore[arg-type]


# ---- the study -----------------------------------------------------------------
def describe(params: dict[str, Any]) -> str:
    if not params:
        return "defaults"
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def tune(
    family: Family, validations: list[LikedHoldout], log: Callable[[str], None]
) -> tuple[dict[str, Any], float]:
    """``family``'s configuration with the best mean validation stratified hit rate@10, and that mean."""
    best: tuple[float, dict[str, Any]] | None = None
    for params in family.grid:
        scores = [
            similar_list_quality(fit_lists(family, params, v.train)[0], v, gamma=GAMMA)["stratified_hit_rate"]
            for v in validations
        ]
        score = float(np.mean(scores))
        log(f"  val {family.name:38s} {describe(params):55s} PS-HR@{N} {score:.4f}")
        if best is None or score > best[0]:
            best = (score, params)
    assert best is not None
    return best[1], best[0]


def paired_difference(
    a: NDArray[np.float64], b: NDArray[np.float64], weights: NDArray[np.float64]
) -> tuple[float, float]:
    """Weighted mean of ``a - b`` over the same users and its standard error (ratio estimator)."""
    d = a - b
    mean = float((weights * d).sum() / weights.sum())
    n = d.shape[0]
    se = np.sqrt(n / (n - 1) * (weights**2 * (d - mean) ** 2).sum()) / weights.sum()
    return mean, float(se)


def movie_table() -> ItemTable:
    return read_dataset(ml100k_folder()).items


def titles_by_id(items: ItemTable) -> dict[int, str]:
    return {
        int(i): f"{t} ({y})" if y else t
        for i, t, y in zip(items.ids.tolist(), items.titles, items.years, strict=True)
    }


def genre_matrix(items: ItemTable, data: Interactions) -> sp.csr_matrix:
    """0/1 (data's items x genres) matrix of the ML-100K genres."""
    names = sorted({g for genres in items.genres for g in genres})
    column = {g: c for c, g in enumerate(names)}
    pos = data.item_index(items.ids)
    rows = [p for p, genres in zip(pos.tolist(), items.genres, strict=True) for _ in genres if p >= 0]
    cols = [column[g] for p, genres in zip(pos.tolist(), items.genres, strict=True) for g in genres if p >= 0]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(data.n_items, len(names)))


def showcase(
    data: Interactions, configs: list[tuple[str, Family, dict[str, Any]]], titles: dict[int, str]
) -> str:
    """Markdown tables: each showcase item's top-10 under each configuration, fitted on all ratings."""
    lists = {label: fit_lists(family, params, data)[0] for label, family, params in configs}
    counts = np.diff(data.csc.indptr)
    blocks = []
    for raw, name in SHOWCASE.items():
        pos = int(data.item_index([raw])[0])
        header = "| # | " + " | ".join(label for label, _, _ in configs) + " |"
        lines = [f"**{name}** (number of ratings in brackets)", "", header, "|---|" + "---|" * len(configs)]
        for rank in range(N):
            cells = []
            for label, _, _ in configs:
                j = int(lists[label][pos, rank])
                cells.append("–" if j < 0 else f"{titles[int(data.item_ids[j])]} [{counts[j]}]")
            lines.append(f"| {rank + 1} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


COLUMNS = (
    "method",
    "configuration (tuned on validation)",
    f"val PS-HR@{N}",
    f"test PS-HR@{N} ± SE",
    f"test HR@{N} ± SE",
    f"test PS-HR@{N} (γ = 1)",
    f"test agg. HR@{N}",
    "test union HR",
    "coverage",
    "mean pop.",
    "genre overlap",
    "fit s",
    "site NDCG@10",
)


def format_row(row: dict[str, Any]) -> str:
    site = "–" if row.get("site_ndcg") is None else f"{row['site_ndcg']:.4f}"
    val = "–" if row["val_score"] is None else f"{row['val_score']:.4f}"
    name = f"**{row['name']}**" if row.get("winner") else row["name"]
    return (
        f"| {name} | {row['config']} | {val} | "
        f"{row['stratified_hit_rate']:.4f} ± {row['stratified_hit_rate_se']:.4f} | "
        f"{row['hit_rate']:.4f} ± {row['hit_rate_se']:.4f} | {row['uniform_hit_rate']:.4f} | "
        f"{row['aggregated_hit_rate']:.4f} | "
        f"{row['union_hit_rate']:.4f} | {row['coverage']:.3f} | {row['mean_popularity']:.0f} | "
        f"{row['genre_overlap']:.3f} | {row['fit_seconds']:.2f} | {site} |"
    )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(COLUMNS) + " |"
    align = "|---|---|" + "---:|" * (len(COLUMNS) - 2)
    return "\n".join([header, align, *(format_row(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args(argv)

    load = load_average()
    with timed() as run:
        users, items, ratings, timestamps = ml100k_arrays()
        data = Interactions.from_arrays(users, items, ratings, timestamps)
        test = leave_one_liked_out(data, random_state=TEST_SEED)
        validations = [leave_one_liked_out(test.train, random_state=seed) for seed in VALIDATION_SEEDS]
        print(
            f"{data.nnz} ratings, {data.n_users} users x {data.n_items} items; {test.users.shape[0]} test "
            f"and {' + '.join(str(v.users.shape[0]) for v in validations)} validation hidden items",
            flush=True,
        )
        movies = movie_table()
        genres = genre_matrix(movies, data)
        warm_up(validations[0].train)
        rows: list[dict[str, Any]] = []
        hits: dict[str, NDArray[np.float64]] = {}
        chosen: dict[str, tuple[Family, dict[str, Any]]] = {}
        for family in families():
            if family.tuned:
                params, val_score = tune(family, validations, print)
            else:
                params, val_score = family.grid[0], None
            lists, fit_seconds = fit_lists(family, params, test.train)
            quality = similar_list_quality(lists, test, gamma=GAMMA)
            hits[family.name] = similar_list_hits(lists, test).hit_rate
            chosen[family.name] = (family, params)
            row = {
                "name": family.name,
                "kind": family.kind,
                "config": describe(params) if family.kind in ("item_knn", "factor") else "–",
                "params": params,
                "val_score": val_score,
                "fit_seconds": fit_seconds,
                "genre_overlap": feature_overlap(lists, genres),
                "uniform_hit_rate": similar_list_quality(lists, test, gamma=1.0)["stratified_hit_rate"],
                "site_ndcg": site_ndcg(data, params) if family.kind == "item_knn" else None,
                **quality,
            }
            rows.append(row)
            print(format_row(row), flush=True)

        tuned = [r for r in rows if r["val_score"] is not None]
        winner = max(tuned, key=lambda r: r["val_score"])
        winner["winner"] = True
        old = next(r for r in rows if r["name"] == "item_knn old default")
        test_hits = similar_list_hits(popularity_lists(test.train, N), test)  # users and hidden items
        weights = np.maximum(test.liked_counts[test_hits.items], 1).astype(np.float64) ** -GAMMA
        diffs = {
            "stratified": paired_difference(hits[winner["name"]], hits[old["name"]], weights),
            "plain": paired_difference(hits[winner["name"]], hits[old["name"]], np.ones_like(weights)),
        }
        other_kind = max((r for r in tuned if r["kind"] != winner["kind"]), key=lambda r: r["val_score"])
        configs = [
            ("old default", *chosen[old["name"]]),
            (f"served: {winner['name']}", *chosen[winner["name"]]),
            (f"best {other_kind['name']}", *chosen[other_kind["name"]]),
        ]
        lists_md = showcase(data, configs, titles_by_id(movies))
    table = markdown_table(rows)
    print()
    print(table)
    print(f"\nwinner (by validation): {winner['name']} ({winner['config']})")
    for label, (d, se) in diffs.items():
        print(f"test {label} HR@{N} winner - old default: {d:+.4f} ± {se:.4f} (paired SE)")
    print()
    print(lists_md)
    if not args.no_write:
        body = section(rows, table, lists_md, data, test, validations, winner, old, diffs, run.wall, load)
        command = command_line("bench.bench_similar", argv)
        write_section("bench.bench_similar", HEADING, body, command=command, path=args.docs)
        print(f"\nwrote the '{HEADING}' section of {args.docs}")
    return 0


def section(
    rows: list[dict[str, Any]],
    table: str,
    lists_md: str,
    data: Interactions,
    test: LikedHoldout,
    validations: list[LikedHoldout],
    winner: dict[str, Any],
    old: dict[str, Any],
    diffs: dict[str, tuple[float, float]],
    total_seconds: float,
    load: float,
) -> str:
    """The body of the section (``write_section`` adds the command line)."""
    knn_grid = (
        f"similarity ∈ {{{', '.join(SIMILARITIES)}}} × shrinkage ∈ "
        f'{{{", ".join(f"{s:g}" for s in SHRINKAGES)}}} (or 0 for the "no shrinkage" rows) × '
        f"min_support ∈ {{{', '.join(str(m) for m in MIN_SUPPORTS)}}}"
    )
    implicit = "factors ∈ {16, 32, 64, 128} × regularization ∈ {10, 50, 200}"
    explicit = "factors ∈ {16, 64, 128} × regularization ∈ {0.5, 1.3, 4}"
    (sd, sse), (pd, pse) = diffs["stratified"], diffs["plain"]
    n_val = " + ".join(str(v.users.shape[0]) for v in validations)
    pop = next(r for r in rows if r["kind"] == "popularity")
    return f"""Whole run {total_seconds:.0f} s (1-minute load average {load:.1f} at the start; fit times
are wall clock of one `fit` on shared CPUs: compare within this run only).

* Data: MovieLens 100K, {data.nnz} ratings ({data.n_users} users × {data.n_items} items).
  "Liked" = rating ≥ 4. N = {N}.
* Protocol (`recommender.engine.item_similarity_eval`): each user with ≥ 2 liked items has
  one of them (`h_u`) hidden, uniformly at random; the model is fitted on the rest;
  `Q_u` = the user's other liked items, `L_q` = the top-{N} similar list the site would show
  for `q` (stored positive neighbours by rank, or the factor-cosine fallback).
  `hit_u = 1/|Q_u| Σ_q [h_u ∈ L_q]`: the chance that one of your liked items' similar lists
  shows another item you liked that the model never saw you rate.
  * **HR@{N}** = mean of `hit_u` over users. Hidden items are drawn per liked *rating*, so it
    is dominated by blockbusters: the same ten most popular items on every page score
    {pop["hit_rate"]:.4f} on it, {pop["hit_rate"] / old["hit_rate"]:.1f} × the old default.
  * **PS-HR@{N}** (the selection criterion) = `Σ_u w_u hit_u / Σ_u w_u` with
    `w_u = n⁺(h_u)^-{GAMMA:g}`, `n⁺` = the hidden item's number of liked ratings: Steck's
    popularity-stratified recall (RecSys 2011), between the plain hit rate (exponent 0) and
    every item counting equally (**PS-HR γ = 1**). Steck's user study found people want at
    most a small tilt away from popular items, hence the middle exponent.
  * **agg. HR@{N}**: the hidden item is in the top {N} of a Borda vote over the user's lists
    (weights {N}..1, items the user rated excluded); **union HR**: any of the user's lists
    shows it (grows with list diversity and the user's number of liked items).
  * **coverage** = distinct listed items / catalogue; **mean pop.** = mean number of training
    ratings of a listed item (catalogue mean {data.nnz / data.n_items:.0f}); **genre overlap** = mean
    Jaccard overlap of ML-100K genres between an item and its listed items (no model sees
    genres: a check against what a person notices).
* What was tuned on what: test split = `leave_one_liked_out(data, random_state={TEST_SEED})`
  ({test.users.shape[0]} hidden items). Three validation splits carved from the test split's
  training part only (`random_state` ∈ {{{", ".join(str(s) for s in VALIDATION_SEEDS)}}}, {n_val} hidden items). Every
  configuration of a family's grid (item_knn: {knn_grid}; implicit_als: {implicit};
  explicit_als: {explicit}; other hyperparameters at their defaults) is fitted on each
  validation training part; the family keeps the configuration with the best mean validation
  PS-HR@{N}, refitted on the test split's training part and scored **once** on the test items.
  The served winner (bold) is the family with the best validation PS-HR@{N}. The floors and
  the old default (`ItemKNN()`: pearson_baseline, shrinkage 100, min_support 1) are not tuned.
  ± SE: standard error over users.
* Winner minus old default on the same test users (paired SE): PS-HR@{N} {sd:+.4f} ± {sse:.4f},
  HR@{N} {pd:+.4f} ± {pse:.4f}.
* site NDCG@10: the retrain promotion gate's metric for an item_knn configuration
  (per-user 10 % holdout, seed 0, For-you ranking from the stored top {SITE_NEIGHBORS} neighbours);
  the gate refuses a candidate more than `TASTEBASE_PROMOTION_MARGIN` (0.01) below the live one.

{table}

### Toy Story and Alien: top {N} similar items

Fitted on all ratings, as the site refits before serving. "old default" is what the site
served (`item_knn` with `ItemKNN()`'s defaults); "served" is the winner above; the third
column is the best family of the other kind (item_knn vs factor cosine).

{lists_md}
"""


if __name__ == "__main__":
    sys.exit(main())
