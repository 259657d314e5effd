"""``GET /api/v1/me/recommendations/`` on the synthetic ML-20M-shaped catalog, against ``health/``.

    python -m bench.bench_serving                # scale 1 (20M ratings); builds its database once
    python -m bench.bench_serving --scale 0.02 --duration 10 --no-write   # a quick look
    python -m bench.bench_serving --rebuild      # import and train again

The API benchmark (``bench/bench_api.py``: gunicorn with 2 sync workers, DEBUG
off, PostgreSQL, Redis as the cache, Celery eager, throttles raised, locust
from a second process, users waiting for nothing between requests) pointed at
``bench/synthetic.py``'s set, with bench_api's own server, warm-up, locust and
CPU-meter code. Only the data and the report differ:

* Database ``tastebase_bench_serving20m`` (scale 1; other scales get their own
  name), **kept between runs** (``--rebuild`` or ``--drop`` start over): ``migrate``,
  ``import_movielens`` of ``bench.bench_import.synthetic_csv(scale)`` (about 3 min
  at scale 1) and one training run per kind, sharing one export: the large-catalog
  defaults (``explicit_als`` rating, ``implicit_als`` ranking, ``item_knn``
  similarity) with their default hyperparameters, 64 factors, except
  ``--iterations`` ALS sweeps (default 3, against 15) to keep the build short:
  serving cost depends on the factor count and the catalog, not on how well the
  factors converged. Versions are (re)trained only when a kind has no active
  version with these settings.
* Every imported user (``ml1``..``ml138493``) gets an API token (``--pool`` caps
  the number, drawn at random); each recommendations request signs in as a random
  one of them. The list cache is emptied before every run, so at this size nearly
  every request is its user's first: a cache miss that computes the list (the
  report gives the share). ``health/`` runs in the same process at the same
  concurrencies as the baseline; machines differ about 2x, so the ratios count.
* In process (Django's test client in one process, no server, no queueing): the
  same two endpoints for ``--inprocess-users`` distinct users, first requests
  (misses) and second requests (hits).

Writes the "Serving at 20M" section of docs/benchmarks.md (markers ``bench.bench_serving``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench import synthetic
from bench.bench_api import (
    PAGE_SIZE,
    UNTHROTTLED,
    flush_cache,
    gunicorn,
    locust_run,
    warm_up,
)
from bench.bench_import import synthetic_csv
from bench.common import (
    command_line,
    load_average,
    manage,
    manage_env,
    postgres_execute,
    run_child,
    write_section,
)

HEADING = "## Serving at 20M: recommendations under load"
#: The site's cache keys start with this (CACHE_KEY_PREFIX); only they are flushed.
CACHE_PREFIX = "tastebase-bench-serving"
#: The large-catalog defaults (config/settings.py) for each kind.
ALGORITHMS = {"rating": "explicit_als", "ranking": "implicit_als", "similarity": "item_knn"}
ITERATED = ("rating", "ranking")  # the kinds whose ALS sweeps --iterations sets
RECS = "`GET /api/v1/me/recommendations/?n=10`"
HEALTH = "`GET /api/v1/health/`"

CHILD = r"""
import json, random, sys, time
import django
django.setup()
from django.contrib.auth.models import User
from django.db.models import Count
from rest_framework.authtoken.models import Token
from bench.common import print_result
from catalog.models import Item
from ratings.models import Rating
from recommender.models import ModelVersion, UserFactor, VersionStatus

mode = sys.argv[1]
if mode == "status":
    active = {
        v.kind: {"id": v.pk, "algorithm": v.algorithm, "hyperparameters": v.hyperparameters}
        for v in ModelVersion.objects.filter(status=VersionStatus.ACTIVE)
    }
    print_result({"ratings": Rating.objects.count(), "active": active})
elif mode == "train":
    from recommender.export import ratings_export_shared
    from recommender.services import model_train
    jobs = json.loads(sys.argv[2])
    out = {}
    with ratings_export_shared():  # one export for every kind, as `manage.py retrain` does
        for kind, algorithm, params in jobs:
            t = time.perf_counter()
            v = model_train(kind=kind, algorithm=algorithm, params=params, force=True)
            out[kind] = {"id": v.pk, "status": v.status, "seconds": time.perf_counter() - t,
                         "timings": v.timings}
    print_result(out)
elif mode == "setup":
    path, pool_size, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    users = list(User.objects.filter(username__regex=r"^ml[0-9]+$").order_by("id").values_list("id", "username"))
    if pool_size and pool_size < len(users):
        users = sorted(random.Random(seed).sample(users, pool_size))
    ids = [pk for pk, _ in users]
    keys = dict(Token.objects.filter(user_id__in=ids).values_list("user_id", "key"))
    new = [Token(key=Token.generate_key(), user_id=pk) for pk in ids if pk not in keys]
    Token.objects.bulk_create(new, batch_size=5000)
    keys.update({t.user_id: t.key for t in new})
    tokens = [[name, keys[pk]] for pk, name in users]
    counts = dict(Rating.objects.filter(user_id__in=ids).values("user_id").annotate(n=Count("id")).values_list("user_id", "n"))
    versions = ModelVersion.objects.filter(status=VersionStatus.ACTIVE, kind__in=["rating", "ranking"])
    with_factors = {v.kind: UserFactor.objects.filter(version=v, user_id__in=ids).count() for v in versions}
    items = list(Item.objects.order_by("id").values_list("id", flat=True))
    json.dump({"tokens": tokens, "items": items, "rated": [counts.get(pk, 0) for pk in ids]}, open(path, "w"))
    print_result({"users": len(tokens), "new_tokens": len(new), "items": len(items),
                  "with_factors": with_factors})
else:  # inprocess: the test client in this one process, first (miss) and second (hit) requests
    import numpy as np
    from django.test import Client
    tokens, n = json.load(open(sys.argv[2]))["tokens"], int(sys.argv[3])
    picked = random.Random(int(sys.argv[4])).sample(tokens, min(n, len(tokens)))
    client = Client()
    def timed(url, key=None):
        headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
        t = time.perf_counter()
        response = client.get(url, **headers)
        seconds = time.perf_counter() - t
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.content[:300]!r}")
        return seconds
    recs = "/api/v1/me/recommendations/?n=10"
    for _, key in picked[:5]:  # warm the process (tables, code paths); those users are not timed
        timed(recs, key)
    timed("/api/v1/health/")
    picked = picked[5:]
    out = {
        "health": [timed("/api/v1/health/") for _ in picked],
        "miss": [timed(recs, key) for _, key in picked],
        "hit": [timed(recs, key) for _, key in picked],
    }
    print_result({"users": len(picked), **out})
"""


# ---- the database, kept between runs --------------------------------------------------------


def database_name(scale: float) -> str:
    """``tastebase_bench_serving20m`` at scale 1, ``tastebase_bench_serving_s0p02`` at 0.02."""
    if scale == 1:
        return "tastebase_bench_serving20m"
    return "tastebase_bench_serving_s" + f"{scale:g}".replace(".", "p")


@contextmanager
def kept_database(admin_url: str, name: str, *, rebuild: bool, drop: bool) -> Iterator[str]:
    """Database ``name`` on ``admin_url``'s server, created if missing (dropped first with
    ``rebuild``) and left in place afterwards unless ``drop``; yields its URL."""
    import psycopg

    if rebuild:
        postgres_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if not exists:
        postgres_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", admin_url)
    finally:
        if drop:
            postgres_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wanted_jobs(iterations: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, algorithm, params) of each kind's training run."""
    return [
        (kind, algorithm, {"iterations": iterations} if kind in ITERATED else {})
        for kind, algorithm in ALGORITHMS.items()
    ]


def child(env: dict[str, str], *args: str) -> dict[str, Any]:
    return run_child([sys.executable, "-c", CHILD, *args], env=env)


def build(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Migrate, import the synthetic CSV and train what is missing; the active versions."""
    seconds, _ = manage(["migrate", "--no-input"], env)
    print(f"manage.py migrate: {seconds:.1f} s", flush=True)
    csv, expected = synthetic_csv(args.scale)
    status = child(env, "status")
    if status["ratings"] != expected:
        seconds, _ = manage(["import_movielens", str(csv)], env)
        print(f"manage.py import_movielens {csv}: {seconds:.0f} s", flush=True)
        status = child(env, "status")
        if status["ratings"] != expected:
            raise RuntimeError(f"imported {status['ratings']:,} ratings, the CSV has {expected:,}")
    jobs = [
        (kind, algorithm, params)
        for kind, algorithm, params in wanted_jobs(args.iterations)
        if not _trained_as(status["active"].get(kind), algorithm, params)
    ]
    if jobs:
        started = time.perf_counter()
        trained = child(env, "train", json.dumps(jobs))
        print(f"trained {', '.join(trained)} in {time.perf_counter() - started:.0f} s: {trained}", flush=True)
        status = child(env, "status")
        missing = [kind for kind in ALGORITHMS if kind not in status["active"]]
        if missing:
            raise RuntimeError(f"no active version of {missing} after training: {trained}")
    else:
        print("database ready (ratings imported, versions trained): reused", flush=True)
    return status


def analyze(url: str) -> dict[str, Any]:
    """``ANALYZE`` the whole database, as autovacuum would have after the import; whether it is on.

    ``import_movielens`` analyzes the ratings table it bulk-loads, not the catalog
    tables; with autovacuum off (as on the machine this ran on) their planner
    statistics would stay missing and the item-card join reads every item's genres.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
        started = time.perf_counter()
        conn.execute("ANALYZE")
    return {"autovacuum": row[0] if row else "?", "seconds": time.perf_counter() - started}


def _trained_as(active: dict[str, Any] | None, algorithm: str, params: dict[str, Any]) -> bool:
    """Whether the active version ``active`` is ``algorithm`` with (at least) ``params``."""
    if active is None or active["algorithm"] != algorithm:
        return False
    stored = active["hyperparameters"]
    return all(str(stored.get(k)) == str(v) for k, v in params.items())


# ---- the runs ----------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of latencies in seconds, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    p50, p95, p99 = np.quantile(ms, [0.5, 0.95, 0.99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(ms.max())}


def measure(
    env: dict[str, str], tmp: Path, args: argparse.Namespace, config: dict[str, Any], database: str
) -> tuple[list[dict[str, Any]], str, float]:
    """Serve, warm up, run health and recommendations at each concurrency; (runs, server log, load before)."""
    runs: list[dict[str, Any]] = []
    log = tmp / "gunicorn.log"
    with gunicorn(env, args.workers, log) as (base, master):
        load_before = load_average()
        failures = warm_up(base, config["tokens"], config["items"])
        print(f"warm-up failures: {failures or 'none'}", flush=True)
        for users in args.users:
            for scenario, user_class in (
                ("health", "HealthUser"),
                ("recommendations", "RecommendationsUser"),
            ):
                flush_cache(args.redis_url, CACHE_PREFIX)
                load = load_average()
                result = locust_run(
                    user_class,
                    users=users,
                    seconds=args.duration,
                    base=base,
                    config=config,
                    tmp=tmp,
                    master=master,
                    database=database,
                )
                latencies = [s for r in result["raw"]["requests"].values() for s in r["latencies_s"]]
                run = {
                    "scenario": scenario,
                    "users": users,
                    "load": load,
                    "row": result["rows"]["all"],
                    "ms": percentiles(latencies),
                    "cpu": result["cpu"],
                    "distinct": result["raw"].get("distinct_recommendation_users", 0),
                    "warning": result["locust_cpu_warning"],
                    "errors_seen": result["error_samples"],
                }
                runs.append(run)
                print(table_row(run), flush=True)
    server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return runs, server_log, load_before


# ---- the report ----------------------------------------------------------------------------


def table_row(run: dict[str, Any]) -> str:
    r, ms, cpu = run["row"], run["ms"], run["cpu"]
    misses = (
        f"{run['distinct'] / r['count']:.0%}" if run["scenario"] == "recommendations" and r["count"] else ""
    )
    cores = " / ".join(f"{cpu[k]:.2f}" for k in ("gunicorn", "postgres", "locust", "other"))
    label = RECS if run["scenario"] == "recommendations" else HEALTH
    return (
        f"| {label} | {run['users']} | {r['count']:,} | {r['rps']:.0f} | {ms['p50']:.1f} | {ms['p95']:.1f} | "
        f"**{ms['p99']:.1f}** | {ms['max']:.1f} | {r['errors']} | {misses} | {cores} | {run['load']:.1f} |"
    )


def report(
    args: argparse.Namespace,
    status: dict[str, Any],
    stats: dict[str, Any],
    setup: dict[str, Any],
    rated: list[int],
    runs: list[dict[str, Any]],
    inprocess: dict[str, Any],
    server_log: str,
    load_before: float,
) -> tuple[str, bool]:
    """The markdown for docs/benchmarks.md, and whether every request succeeded."""
    from importlib.metadata import version

    n_users, n_items = (int(x) for x in synthetic.load(args.scale)["shape"])
    models = "; ".join(
        f"{kind} `{a['algorithm']}` #{a['id']} ({_params_text(a['hyperparameters'])})"
        for kind, a in sorted(status["active"].items())
    )
    counts = np.asarray(rated, dtype=np.float64)
    lines = [
        f"`bench/synthetic.py` scale {args.scale:g}: {n_users:,} users x {n_items:,} items, "
        f"{status['ratings']:,} ratings, imported by `import_movielens` into PostgreSQL, then `ANALYZE` "
        f"(autovacuum is {stats['autovacuum']} on this server). Active versions: "
        f"{models}. Factor models trained with {args.iterations} ALS sweeps instead of 15 to keep the build "
        "short (64 factors, as the defaults: the factor count and the catalog set what serving costs).",
        "",
        f"The API benchmark's setup (`bench/bench_api.py`): gunicorn `config.wsgi`, {args.workers} sync "
        f"workers, DEBUG off, PostgreSQL and Redis (cache) on the same machine, throttles raised; Locust "
        f"{version('locust')} headless on loopback in its own process, users waiting for nothing between "
        f"requests (a closed loop). Each recommendations request signs in with the token of a random one of "
        f"{setup['users']:,} users (ratings each: median {np.median(counts):.0f}, p99 "
        f"{np.quantile(counts, 0.99):.0f}, max {counts.max():.0f}; stored factors: "
        f"{', '.join(f'{k} {v:,}' for k, v in sorted(setup['with_factors'].items()))}). The list cache is "
        "emptied before every run; *first* = the share of requests that were their user's first in the run "
        "(a cache miss: the list is computed), the rest are hits. Latencies are the client's. CPU: average "
        "cores busy in gunicorn / this database's Postgres backends / locust / everything else; load = the "
        f"1-minute load average before the run ({load_before:.1f} when the server was up).",
        "",
        "| endpoint | users | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | first | CPU | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        *(table_row(run) for run in runs),
        "",
    ]
    by = {(run["scenario"], run["users"]): run for run in runs}
    for users in args.users:
        health, recs = by[("health", users)], by[("recommendations", users)]
        p99, base = recs["ms"]["p99"], health["ms"]["p99"]
        lines.append(
            f"- {users} users: recommendations p99 **{p99:.1f} ms** (goal <= 50 ms: "
            f"{'met' if p99 <= 50 else 'missed'}), **{p99 / base:.2f}x** health's p99 ({base:.1f} ms) in the "
            f"same run; throughput {recs['row']['rps'] / health['row']['rps']:.2f}x health's."
        )
    ip = {name: percentiles(inprocess[name]) for name in ("health", "miss", "hit")}
    lines.append(
        f"- In process (Django test client, one process, no server), {inprocess['users']} users: "
        + "; ".join(
            f"{label} p50 {ip[name]['p50']:.1f} / p95 {ip[name]['p95']:.1f} / p99 {ip[name]['p99']:.1f} ms"
            for name, label in (
                ("miss", "recommendations, first request (miss)"),
                ("hit", "second request (hit)"),
                ("health", "health/"),
            )
        )
        + "."
    )
    errors = sum(run["row"]["errors"] for run in runs)
    lines.append(f"- Errors (non-2xx or no answer): **{errors}**.")
    samples = list(dict.fromkeys(s for run in runs for s in run["errors_seen"]))
    if samples:
        lines.append(f"- Distinct errors seen first: {'; '.join(samples[:5])}")
    if any(run["warning"] for run in runs):
        lines.append("- Locust warned that its CPU use went above 90 % in at least one run.")
    if tracebacks := server_log.count("Traceback"):
        lines.append(f"- gunicorn logged {tracebacks} traceback(s).")
    return "\n".join(lines), errors == 0


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="bench/synthetic.py scale (1 = 20M ratings)")
    parser.add_argument(
        "--iterations", type=int, default=3, help="ALS sweeps of the rating and ranking models"
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds of each run")
    parser.add_argument(
        "--users",
        type=lambda text: [int(u) for u in text.split(",")],
        default=[2, 16],
        help="concurrent locust users, comma-separated (default 2,16: one per worker, and bench_api's 16)",
    )
    parser.add_argument("--pool", type=int, default=0, help="users with tokens to draw from (0: every user)")
    parser.add_argument("--inprocess-users", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="Redis for the site's cache")
    parser.add_argument("--rebuild", action="store_true", help="drop the kept database and build it again")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    # A plain kill would skip the clean-up below (gunicorn, the Redis keys).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.perf_counter()
    database = database_name(args.scale)
    with (
        tempfile.TemporaryDirectory(prefix="tastebase-bench-serving-") as tmp_name,
        kept_database(args.pg_url, database, rebuild=args.rebuild, drop=args.drop) as url,
    ):
        tmp = Path(tmp_name)
        env = manage_env(
            url,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1,testserver",
            REDIS_URL=args.redis_url,
            CACHE_KEY_PREFIX=CACHE_PREFIX,
            CELERY_TASK_ALWAYS_EAGER="1",
            TASTEBASE_API_USER_RATE=UNTHROTTLED,
            TASTEBASE_API_ANON_RATE=UNTHROTTLED,
        )
        try:
            flush_cache(args.redis_url, CACHE_PREFIX)
            status = build(env, args)
            stats = analyze(url)
            print(f"ANALYZE: {stats['seconds']:.1f} s (autovacuum {stats['autovacuum']})", flush=True)
            setup_path = tmp / "setup.json"
            setup = child(env, "setup", str(setup_path), str(args.pool), str(args.seed))
            print(f"setup: {setup}", flush=True)
            data = json.loads(setup_path.read_text(encoding="utf-8"))
            config = {
                "tokens": data["tokens"],
                "mixed_tokens": [],
                "items": data["items"],
                "item_pages": max(1, math.ceil(len(data["items"]) / PAGE_SIZE)),
                "seed": args.seed,
            }
            flush_cache(args.redis_url, CACHE_PREFIX)
            inprocess = child(
                env, "inprocess", str(setup_path), str(args.inprocess_users + 5), str(args.seed)
            )
            print(
                "in process: "
                + ", ".join(
                    f"{k} p99 {percentiles(inprocess[k])['p99']:.1f} ms" for k in ("miss", "hit", "health")
                ),
                flush=True,
            )
            runs, server_log, load_before = measure(env, tmp, args, config, database)
        finally:
            flush_cache(args.redis_url, CACHE_PREFIX)
    body, ok = report(args, status, stats, setup, data["rated"], runs, inprocess, server_log, load_before)
    print(body)
    print(f"({time.perf_counter() - started:.0f} s in all; load average now {os.getloadavg()[0]:.1f})")
    if not args.no_write:
        write_section("bench.bench_serving", HEADING, body, command=command_line("bench.bench_serving"))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
