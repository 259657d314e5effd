"""End-to-end retrain (export, fit, evaluate, refit, persist, activate) and fold-in latency.

    python -m bench.bench_pipeline                 # ML-100K on SQLite and Postgres
    python -m bench.bench_pipeline --synthetic 1   # + export and `manage.py retrain` on the synthetic 20M set in Postgres
    python -m bench.bench_pipeline --no-postgres --no-write   # ML-100K on SQLite only

Each database run is a fresh database (a temp SQLite file, or a Postgres
database created and dropped here) driven through manage.py in a subprocess,
so the numbers include what an operator's ``retrain`` pays. Peak memory is the
subprocess's max RSS. Writes the "Training pipeline" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from bench.bench_import import bare_copy, synthetic_csv
from bench.common import (
    command_line,
    manage,
    manage_env,
    postgres_database,
    run_child,
    write_section,
)

HEADING = "## Training pipeline"

CHILD = r"""
import sys, time
import django
django.setup()
from bench.common import peak_rss_mb, percentiles_ms, print_result
from django.contrib.auth.models import User
from recommender.models import ModelVersion
from recommender.services import model_train, user_factors_refresh
from recommender.export import ratings_export
from ratings.models import Rating
from ratings.services import rating_upsert
from catalog.models import Item
out = {}
if sys.argv[1] == "retrain":
    # What an operator runs: `manage.py retrain` with the defaults (the three kinds, one export).
    from django.core.management import call_command
    t = time.perf_counter()
    call_command("retrain")
    out["retrain_s"] = time.perf_counter() - t
    for v in ModelVersion.objects.order_by("pk"):
        out[v.kind] = {"algorithm": v.algorithm, "total_s": sum(v.timings.values()), "timings": v.timings,
                       "metrics": {k: v.metrics.get(k) for k in ("rmse", "ndcg@10")}}
elif sys.argv[1] == "export":
    t = time.perf_counter(); data, _ = ratings_export(); out["export_s"] = time.perf_counter() - t
    out["nnz"] = data.nnz
else:
    for kind in ("rating", "ranking", "similarity"):
        t = time.perf_counter()
        v = model_train(kind=kind)
        out[kind] = {"algorithm": v.algorithm, "total_s": time.perf_counter() - t, "timings": v.timings,
                     "metrics": {k: v.metrics.get(k) for k in ("rmse", "ndcg@10")}}
    # Fold-in latency: one rating change -> both factor versions refreshed.
    user = User.objects.get(username="ml1")
    items = list(Item.objects.order_by("-rating_count")[:50])
    lat = []
    for i, item in enumerate(items):
        t = time.perf_counter()
        rating_upsert(user=user, item=item, score=[1.0, 3.0, 5.0][i % 3])
        lat.append(time.perf_counter() - t)
    out["rating_write_with_fold_in_ms"] = percentiles_ms(lat)
    lat = []
    for _ in range(50):
        t = time.perf_counter(); user_factors_refresh(user.pk); lat.append(time.perf_counter() - t)
    out["fold_in_ms"] = percentiles_ms(lat)
out["peak_rss_mb"] = peak_rss_mb()
print_result(out)
"""


def child(env: dict[str, str], mode: str) -> dict[str, Any]:
    """Run ``CHILD`` in ``mode`` against ``env``'s database; its result."""
    return run_child([sys.executable, "-c", CHILD, mode], env=env)


def run_ml100k(database: str, pg_admin: str) -> dict[str, Any]:
    """Migrate a fresh database, load the demo data, train the three kinds, time fold-in."""

    def measure(url: str) -> dict[str, Any]:
        env = manage_env(url)
        manage(["migrate", "--no-input"], env)
        manage(["load_demo_data"], env)
        return child(env, "train")

    if database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tastebase-bench-pipeline-") as tmp:
            return measure(f"sqlite:///{tmp}/bench.sqlite3")
    with postgres_database(pg_admin, "tastebase_bench_pipeline") as url:
        return measure(url)


def run_synthetic(scale: float, pg_admin: str) -> dict[str, Any]:
    """bench/synthetic.py's ML-20M-shaped set imported into a fresh Postgres database by
    ``import_movielens`` (the cached ml-latest CSV of bench/bench_import.py), then
    exported and retrained end to end (rating, ranking and similarity models)."""
    csv, _ = synthetic_csv(scale)
    with postgres_database(pg_admin, "tastebase_bench_synthetic") as url:
        env = manage_env(url, DEBUG="0")
        manage(["migrate", "--no-input"], env)
        fill_s, _ = manage(["import_movielens", str(csv)], env)
        print(f"imported {csv} in {fill_s:.0f} s", flush=True)
        # The yardstick, in the same run: a bare `psql \copy` of the same ratings plus one index.
        result: dict[str, Any] = {
            "bare_copy_s": bare_copy(url, csv / "ratings.csv", 3600.0),
            "load_before": os.getloadavg()[0],
        }
        print(f"bare COPY {result['bare_copy_s']:.1f} s", flush=True)
        result.update(child(env, "export"))
        started = time.perf_counter()
        result["train"] = child(env, "retrain")
        result["train"]["wall_s"] = time.perf_counter() - started  # Django start-up included
        result["fill_s"] = fill_s
        result["load_after"] = os.getloadavg()[0]
        return result


def fmt_timings(t: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in t.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--synthetic",
        type=float,
        default=0.0,
        help="also retrain on bench/synthetic.py's set at this scale (1 = 20M ratings) in Postgres",
    )
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--no-postgres", action="store_true", help="ML-100K on SQLite only")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    lines = [
        "Default algorithms; holdout = 10% per user; refit on all data.",
        "",
        "| database | kind | algorithm | total s | stages (s) | holdout metric |",
        "|---|---|---|---|---|---|",
    ]
    extra = []
    databases = () if args.skip_ml100k else ("sqlite",) if args.no_postgres else ("sqlite", "postgres")
    for database in databases:
        result = run_ml100k(database, args.pg_url)
        for kind in ("rating", "ranking", "similarity"):
            r = result[kind]
            metric = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items() if v is not None)
            lines.append(
                f"| ML-100K {database} | {kind} | {r['algorithm']} | {r['total_s']:.1f} | "
                f"{fmt_timings(r['timings'])} | {metric} |"
            )
        extra.append(
            f"- ML-100K {database}: peak RSS {result['peak_rss_mb']:.0f} MB; fold-in of one user into both "
            f"factor versions p50 {result['fold_in_ms']['p50']:.1f} ms, p99 {result['fold_in_ms']['p99']:.1f} ms; "
            f"a rating write including fold-in p50 {result['rating_write_with_fold_in_ms']['p50']:.1f} ms, "
            f"p99 {result['rating_write_with_fold_in_ms']['p99']:.1f} ms."
        )
        print(lines[-3:], extra[-1], flush=True)
    if args.synthetic:
        r = run_synthetic(args.synthetic, args.pg_url)
        label = f"synthetic x{args.synthetic:g} postgres"
        for kind in ("rating", "ranking", "similarity"):
            t = r["train"][kind]
            metric = ", ".join(f"{k} {v:.4f}" for k, v in t["metrics"].items() if v is not None)
            lines.append(
                f"| {label} | {kind} | {t['algorithm']} | {t['total_s']:.1f} | "
                f"{fmt_timings(t['timings'])} | {metric} |"
            )
        train = r["train"]
        extra.append(
            f"- {label}: `manage.py retrain` (defaults: the three kinds, one export shared) "
            f"**{train['wall_s']:.1f} s wall = {train['wall_s'] / r['bare_copy_s']:.1f}× a bare `psql \\copy` "
            f"of the same ratings.csv + one (user, item) index** ({r['bare_copy_s']:.1f} s, same run), "
            f"peak RSS {train['peak_rss_mb']:.0f} MB; 1-minute load average {r['load_before']:.1f} before, "
            f"{r['load_after']:.1f} after on 2 CPUs. Export of {r['nnz']:,} ratings alone "
            f"{r['export_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB (table filled by `import_movielens` in "
            f"{r['fill_s']:.0f} s)."
        )
        print(extra[-1], flush=True)
    body = "\n".join([*lines, "", *extra])
    print(body)
    if not args.no_write:
        write_section("bench.bench_pipeline", HEADING, body, command=command_line("bench.bench_pipeline"))


if __name__ == "__main__":
    main()
