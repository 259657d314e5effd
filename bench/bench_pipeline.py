"""End-to-end retrain (export, fit, evaluate, refit, persist, activate) and fold-in latency.

    python -m bench.bench_pipeline                 # ML-100K on SQLite and Postgres
    python -m bench.bench_pipeline --synthetic 1   # + export and retrain on the synthetic 20M set in Postgres
    python -m bench.bench_pipeline --no-postgres --no-write   # ML-100K on SQLite only

Each database run is a fresh database (a temp SQLite file, or a Postgres
database created and dropped here) driven through manage.py in a subprocess,
so the numbers include what an operator's ``retrain`` pays. Peak memory is the
subprocess's max RSS. Writes the "Training pipeline" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bench import synthetic
from bench.common import (
    command_line,
    manage,
    manage_env,
    postgres_database,
    postgres_execute,
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
if sys.argv[1] == "train-only":
    for kind in ("rating", "ranking", "similarity"):
        t = time.perf_counter()
        v = model_train(kind=kind)
        out[kind] = {"algorithm": v.algorithm, "total_s": time.perf_counter() - t, "timings": v.timings,
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
    """bench/synthetic.py's ML-20M-shaped set COPYed into a fresh Postgres database, then
    exported and retrained end to end (rating, ranking and similarity models)."""
    import psycopg

    arrays = synthetic.load(scale)
    n_users, n_items = (int(x) for x in arrays["shape"])
    with postgres_database(pg_admin, "tastebase_bench_synthetic") as url:
        env = manage_env(url)
        manage(["migrate", "--no-input"], env)
        t = time.perf_counter()
        postgres_execute(
            url,
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) SELECT g, '!', false, 'syn' || g, '', '', '', false, true, now() "
            f"FROM generate_series(1, {n_users}) g",
        )
        postgres_execute(
            url,
            "INSERT INTO catalog_item (id, title, source, external_id, rating_count, rating_sum, created_at) "
            f"SELECT g, 'Item ' || g, 'synthetic', g::text, 0, 0, now() FROM generate_series(1, {n_items}) g",
        )
        # Binary COPY built by numpy: one structured record per rating, no text formatting.
        row = np.dtype(
            [
                ("n", ">i2"),
                ("lu", ">i4"),
                ("u", ">i4"),
                ("li", ">i4"),
                ("i", ">i8"),
                ("ls", ">i4"),
                ("s", ">f8"),
                ("lc", ">i4"),
                ("c", ">i8"),
                ("lm", ">i4"),
                ("m", ">i8"),
            ]
        )
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            copy_sql = "COPY ratings_rating (user_id, item_id, score, created_at, updated_at) FROM STDIN (FORMAT BINARY)"
            with cur.copy(copy_sql) as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
                for s in range(0, arrays["users"].shape[0], 1_000_000):
                    n = min(1_000_000, arrays["users"].shape[0] - s)
                    rec = np.empty(n, dtype=row)
                    rec["n"], rec["lu"], rec["li"], rec["ls"], rec["lc"], rec["lm"] = 5, 4, 8, 8, 8, 8
                    rec["u"] = arrays["users"][s : s + n] + 1
                    rec["i"] = arrays["items"][s : s + n] + 1
                    rec["s"] = arrays["ratings"][s : s + n]
                    rec["c"] = rec["m"] = 631_152_000_000_000  # 2020-01-01 in microseconds since 2000-01-01
                    copy.write(rec.tobytes())
                copy.write(b"\xff\xff")
            conn.commit()
        n_rows = arrays["users"].shape[0]
        fill_s = time.perf_counter() - t
        print(f"filled {n_rows:,} ratings in {fill_s:.0f} s", flush=True)
        result = child(env, "export")
        result["train"] = child(env, "train-only")
        result["fill_s"] = fill_s
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
        extra.append(
            f"- {label}: export of {r['nnz']:,} ratings (binary COPY into numpy) {r['export_s']:.1f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB; full retrain of the three kinds peak RSS "
            f"{r['train']['peak_rss_mb']:.0f} MB (table loaded with COPY in {r['fill_s']:.0f} s)."
        )
        print(extra[-1], flush=True)
    body = "\n".join([*lines, "", *extra])
    print(body)
    if not args.no_write:
        write_section("bench.bench_pipeline", HEADING, body, command=command_line("bench.bench_pipeline"))


if __name__ == "__main__":
    main()
