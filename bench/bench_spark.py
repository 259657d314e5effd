"""Spark MLlib's ALS (``local[2]``) beside the engine's ExplicitALS on the synthetic set.

    python -m bench.bench_spark                     # 5M ratings (scale 0.25): fits, then retrain in Postgres
    python -m bench.bench_spark --scale 1 --iterations 3 --driver-memory 8g   # 20M, its own block
    python -m bench.bench_spark --scale 0.02 --iterations 3 --no-retrain --no-write   # a smoke run

Two measurements, each model in its own child process, one after the other in
the same run (the machine is shared: compare the ratio, not the seconds):

* **fit**: seconds per iteration, from two fits on the same data, ``(t_N - t_1) / (N - 1)``
  (Spark has a large fixed cost per fit: the Parquet export, reading it,
  building its blocks, returning the factors; that is reported as "fixed").
  The engine: ``ExplicitALS`` (its defaults, ``track_loss=False``); Spark:
  ``SparkALS`` (baseline residuals, Spark's ALS-WR), same rank and iterations.
  Peak RSS is the child's Python process plus, for Spark, the driver JVM's own
  peak (``VmHWM``; in ``local[N]`` the executors live in that JVM).
* **retrain**: ``manage.py retrain --algorithm explicit_als --backend local|spark``
  end to end (export, holdout fit, evaluate, refit, persist, activate) on the
  same ratings COPYed into a fresh Postgres database; wall seconds and the
  version's stage timings.

Writes the "Spark training backend" block of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import synthetic
from bench.common import (
    command_line,
    load_average,
    manage_env,
    postgres_database,
    postgres_execute,
    run_child,
    write_section,
)

HEADING = "## Spark training backend"
MASTER = "local[2]"
DEFAULT_SCALE = 0.25

FIT_CHILD = r"""
import sys, time
from bench.common import peak_rss_mb, print_result, synthetic_interactions
model, scale, factors, iterations, master, driver_memory = sys.argv[1:7]
scale, factors, iterations = float(scale), int(factors), int(iterations)
data = synthetic_interactions(scale)
out = {"nnz": data.nnz}
if model == "engine":
    from recommender.engine.als import ExplicitALS
    make = lambda n: ExplicitALS(factors=factors, iterations=n, track_loss=False)
    make(1).fit(synthetic_interactions(0.02))  # numba compiles (or loads its cache) outside the timing
    runtime = None
else:
    from pyspark.sql import SparkSession
    from recommender.engine.spark_als import SparkALS, spark_runtime
    t = time.perf_counter()
    session = (SparkSession.builder.master(master).config("spark.driver.memory", driver_memory)
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    out["session_start_s"] = time.perf_counter() - t
    make = lambda n: SparkALS(factors=factors, iterations=n)
    runtime = spark_runtime(lambda: session)
    runtime.__enter__()
    # The JVM's first ALS job pays for class loading and JIT: warm up outside the timing.
    t = time.perf_counter(); make(2).fit(synthetic_interactions(0.02)); out["warmup_s"] = time.perf_counter() - t
walls = {}
for n in (1, iterations):
    t = time.perf_counter(); make(n).fit(data); walls[n] = time.perf_counter() - t
out["per_iteration_s"] = (walls[iterations] - walls[1]) / (iterations - 1)
out["fixed_s"] = walls[1] - out["per_iteration_s"]
out["fit_s"] = walls[iterations]
out["python_rss_mb"] = peak_rss_mb()
out["jvm_rss_mb"] = 0.0
if runtime is not None:
    pid = session.sparkContext._gateway.proc.pid
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            out["jvm_rss_mb"] = int(line.split()[1]) / 1024.0
print_result(out)
"""

RETRAIN_CHILD = r"""
import sys, time
import django
django.setup()
from django.core.management import call_command
from bench.common import peak_rss_mb, print_result
from recommender.models import ModelVersion
backend, factors, iterations = sys.argv[1:4]
t = time.perf_counter()
call_command("retrain", "--algorithm", "explicit_als", "--backend", backend, "--force",
             "--param", f"factors={factors}", "--param", f"iterations={iterations}")
out = {"retrain_s": time.perf_counter() - t}
v = ModelVersion.objects.latest("pk")
out.update(algorithm=v.algorithm, status=v.status, timings=v.timings, rmse=v.metrics.get("rmse"))
out["python_rss_mb"] = peak_rss_mb()
out["jvm_rss_mb"] = 0.0
from recommender import spark
if spark._session is not None:
    pid = spark._session.sparkContext._gateway.proc.pid
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            out["jvm_rss_mb"] = int(line.split()[1]) / 1024.0
print_result(out)
"""


def fit_child(model: str, scale: float, factors: int, iterations: int, driver_memory: str) -> dict[str, Any]:
    command = [sys.executable, "-c", FIT_CHILD, model, str(scale), str(factors), str(iterations), MASTER]
    return run_child([*command, driver_memory], env={**os.environ, "PYTHONPATH": str(Path.cwd())})


def fill_postgres(url: str, scale: float) -> int:
    """The synthetic set's users, items and ratings in ``url``'s fresh schema (binary COPY).

    The same fill as ``bench/bench_pipeline.py``'s synthetic run, kept here so
    each benchmark runs alone.
    """
    import psycopg

    arrays = synthetic.load(scale)
    n_users, n_items = (int(x) for x in arrays["shape"])
    postgres_execute(
        url,
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) SELECT g, '!', false, 'syn' || g, '', '', '', false, true, now() "
        f"FROM generate_series(1, {n_users}) g",
    )
    postgres_execute(
        url,
        "INSERT INTO catalog_item (id, title, search_text, source, external_id, rating_count, rating_sum, "
        "created_at) SELECT g, 'Item ' || g, 'item ' || g, 'synthetic', g::text, 0, 0, now() "
        f"FROM generate_series(1, {n_items}) g",
    )
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
    n_rows = int(arrays["users"].shape[0])
    copy_sql = (
        "COPY ratings_rating (user_id, item_id, score, created_at, updated_at) FROM STDIN (FORMAT BINARY)"
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(copy_sql) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
            for s in range(0, n_rows, 1_000_000):
                n = min(1_000_000, n_rows - s)
                rec = np.empty(n, dtype=row)
                rec["n"], rec["lu"], rec["li"], rec["ls"], rec["lc"], rec["lm"] = 5, 4, 8, 8, 8, 8
                rec["u"] = arrays["users"][s : s + n] + 1
                rec["i"] = arrays["items"][s : s + n] + 1
                rec["s"] = arrays["ratings"][s : s + n]
                rec["c"] = rec["m"] = 631_152_000_000_000  # 2020-01-01 in microseconds since 2000-01-01
                copy.write(rec.tobytes())
            copy.write(b"\xff\xff")
        conn.commit()
    return n_rows


def run_retrain(
    scale: float, factors: int, iterations: int, pg_admin: str, driver_memory: str
) -> dict[str, Any]:
    from bench.common import manage

    results: dict[str, Any] = {}
    with postgres_database(pg_admin, "tastebase_bench_spark") as url:
        env = manage_env(url, SPARK_MASTER=MASTER, PYTHONPATH=str(Path.cwd()))
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
        manage(["migrate", "--no-input"], env)
        results["n_ratings"] = fill_postgres(url, scale)
        for backend in ("local", "spark"):
            command = [sys.executable, "-c", RETRAIN_CHILD, backend, str(factors), str(iterations)]
            results[backend] = run_child(command, env=env)
            print(backend, results[backend], flush=True)
    return results


def fmt_rss(r: dict[str, Any]) -> str:
    total = r["python_rss_mb"] + r["jvm_rss_mb"]
    return f"{total:,.0f} MB" + (
        f" ({r['python_rss_mb']:,.0f} Python + {r['jvm_rss_mb']:,.0f} JVM)" if r["jvm_rss_mb"] else ""
    )


def report(
    args: argparse.Namespace, fits: dict[str, Any], retrain: dict[str, Any] | None, loads: tuple[float, float]
) -> str:
    engine, spark = fits["engine"], fits["spark"]
    lines = [
        f"Synthetic set at scale {args.scale:g} ({engine['nnz']:,} ratings), rank {args.factors}, "
        f"{args.iterations} iterations, Spark `{MASTER}` (driver memory {args.driver_memory}); "
        f"load average {loads[0]:.1f} before, {loads[1]:.1f} after.",
        "",
        "| model | s / iteration | fixed per fit | fit total | peak RSS |",
        "|---|---|---|---|---|",
        f"| engine `explicit_als` | {engine['per_iteration_s']:.2f} | {engine['fixed_s']:.1f} s | "
        f"{engine['fit_s']:.1f} s | {fmt_rss(engine)} |",
        f"| Spark `spark_als` | {spark['per_iteration_s']:.2f} | {spark['fixed_s']:.1f} s | "
        f"{spark['fit_s']:.1f} s | {fmt_rss(spark)} |",
        "",
        f"Spark / engine per iteration: **{spark['per_iteration_s'] / engine['per_iteration_s']:.1f}x**; "
        f"starting the Spark session (JVM) took {spark['session_start_s']:.1f} s more, and its first "
        f"(warm-up) fit on 400K ratings {spark['warmup_s']:.0f} s.",
    ]
    if retrain:
        lines += [
            "",
            f"End-to-end `manage.py retrain --algorithm explicit_als --backend ...` on the same "
            f"{retrain['n_ratings']:,} ratings in Postgres (holdout fit + refit on all, `--force`):",
            "",
            "| backend | algorithm | retrain wall | fit | refit | persist | holdout RMSE | peak RSS |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for backend in ("local", "spark"):
            r = retrain[backend]
            t = r["timings"]
            lines.append(
                f"| {backend} | `{r['algorithm']}` | {r['retrain_s']:.0f} s | {t.get('fit', 0):.0f} s | "
                f"{t.get('refit', 0):.0f} s | {t.get('persist', 0):.1f} s | {r['rmse']:.4f} | {fmt_rss(r)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=DEFAULT_SCALE, help="bench/synthetic.py scale (0.25 = 5M ratings)"
    )
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--driver-memory", default="3g", help="the Spark driver JVM's heap")
    parser.add_argument(
        "--pg", default="postgres://postgres@127.0.0.1:5432/postgres", help="Postgres admin URL"
    )
    parser.add_argument("--no-retrain", action="store_true", help="only the fits (no Postgres)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = parser.parse_args()
    if args.iterations < 2:
        parser.error("--iterations must be >= 2 (per-iteration time is a difference of two fits)")
    before = load_average()
    fits = {}
    for model in ("engine", "spark"):
        fits[model] = fit_child(model, args.scale, args.factors, args.iterations, args.driver_memory)
        print(model, fits[model], flush=True)
    retrain = (
        None
        if args.no_retrain
        else run_retrain(args.scale, args.factors, args.iterations, args.pg, args.driver_memory)
    )
    body = report(args, fits, retrain, (before, load_average()))
    print(body)
    if not args.no_write:
        # Each scale keeps its own block (and heading), so a 20M run does not replace the 5M figures.
        name, heading = (
            ("bench.bench_spark", HEADING)
            if args.scale == DEFAULT_SCALE
            else (f"bench.bench_spark scale {args.scale:g}", f"{HEADING} (scale {args.scale:g})")
        )
        write_section(name, heading, body, command=command_line("bench.bench_spark"))


if __name__ == "__main__":
    main()
