"""End-to-end retrain (export, fit, evaluate, refit, persist, activate) and fold-in latency.

    python bench/bench_pipeline.py                 # ML-100K on SQLite and Postgres
    python bench/bench_pipeline.py --synthetic 1   # + export and retrain on the synthetic 20M set in Postgres

Each database run is a fresh database (a temp SQLite file, or a Postgres
database created and dropped here) driven through manage.py in a subprocess,
so the numbers include what an operator's ``retrain`` pays. Peak memory is the
subprocess's max RSS. Writes the "Training pipeline" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SECTION = "## Training pipeline"

CHILD = r"""
import json, resource, sys, time
import django
django.setup()
import numpy as np
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
    out["rating_write_with_fold_in_ms"] = {"p50": 1000 * float(np.median(lat)), "p99": 1000 * float(np.quantile(lat, 0.99))}
    lat = []
    for _ in range(50):
        t = time.perf_counter(); user_factors_refresh(user.pk); lat.append(time.perf_counter() - t)
    out["fold_in_ms"] = {"p50": 1000 * float(np.median(lat)), "p99": 1000 * float(np.quantile(lat, 0.99))}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def child(env: dict[str, str], mode: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])  # type: ignore[no-any-return]


def base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DATABASE_URL": database_url,
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    return env


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run_ml100k(database: str) -> dict:  # type: ignore[type-arg]
    if database == "sqlite":
        tmp = tempfile.mkdtemp()
        env = base_env(f"sqlite:///{tmp}/bench.sqlite3")
    else:
        psql("DROP DATABASE IF EXISTS tastebase_bench_pipeline")
        psql("CREATE DATABASE tastebase_bench_pipeline")
        env = base_env("postgres://postgres@127.0.0.1:5432/tastebase_bench_pipeline")
    try:
        manage(env, "migrate", "--no-input")
        manage(env, "load_demo_data")
        return child(env, "train")
    finally:
        if database == "postgres":
            psql("DROP DATABASE IF EXISTS tastebase_bench_pipeline")


def run_synthetic(scale: float) -> dict:  # type: ignore[type-arg]
    """bench/synthetic.py's ML-20M-shaped set COPYed into a fresh Postgres database, then
    exported and retrained end to end (rating, ranking and similarity models)."""
    import numpy as np
    import psycopg

    sys.path.insert(0, str(ROOT / "bench"))
    from synthetic import load

    arrays = load(scale)
    n_users, n_items = (int(x) for x in arrays["shape"])
    db = "tastebase_bench_synthetic"
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql(f"CREATE DATABASE {db}")
    env = base_env(f"postgres://postgres@127.0.0.1:5432/{db}")
    try:
        manage(env, "migrate", "--no-input")
        t = time.perf_counter()
        psql(
            "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined) SELECT g, '!', false, 'syn' || g, '', '', '', false, true, now() "
            f"FROM generate_series(1, {n_users}) g",
            db,
        )
        psql(
            "INSERT INTO catalog_item (id, title, source, external_id, rating_count, rating_sum, created_at) "
            f"SELECT g, 'Item ' || g, 'synthetic', g::text, 0, 0, now() FROM generate_series(1, {n_items}) g",
            db,
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
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as conn, conn.cursor() as cur:
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
    finally:
        psql(f"DROP DATABASE IF EXISTS {db}")


def fmt_timings(t: dict) -> str:  # type: ignore[type-arg]
    return ", ".join(f"{k} {v:.2f}" for k, v in t.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--synthetic",
        type=float,
        default=0.0,
        help="also retrain on bench/synthetic.py's set at this scale (1 = 20M ratings) in Postgres",
    )
    parser.add_argument("--skip-ml100k", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = [
        SECTION,
        "",
        f"Command: `python bench/bench_pipeline.py{f' --synthetic {args.synthetic:g}' if args.synthetic else ''}` "
        f"({time.strftime('%Y-%m-%d')}, 2-core machine). Default algorithms; holdout = 10% per user; refit on all data.",
        "",
    ]
    lines += [
        "| database | kind | algorithm | total s | stages (s) | holdout metric |",
        "|---|---|---|---|---|---|",
    ]
    extra = []
    for database in () if args.skip_ml100k else ("sqlite", "postgres"):
        result = run_ml100k(database)
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
        r = run_synthetic(args.synthetic)
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
    section = "\n".join([*lines, "", *extra]) + "\n"
    print(section)
    if not args.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
        path.write_text(text)


if __name__ == "__main__":
    main()
