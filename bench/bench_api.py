"""The REST API under load: gunicorn on PostgreSQL and Redis, driven by locust from a second process.

    python -m bench.bench_api                  # about 4-5 minutes; rewrites the "REST API under load" block
    python -m bench.bench_api --duration 10 --mixed-duration 20 --no-write   # a quick look

Setup: a fresh Postgres database, ``migrate``, ``load_demo_data`` (ML-100K),
``retrain`` (the three default models), and a token for every ML-100K user
(``ml1``..``ml943``). The site runs under ``gunicorn config.wsgi -w 2`` with
DEBUG off, Redis database 13 as its cache (its keys deleted before every run,
so each starts with no cached lists), Celery eager (a rating write folds the user in
inside the request) and throttle rates raised so the server, not the
throttle, is measured. Locust (``bench/locustfile_api.py``) runs headless on
loopback in its own process; its users wait for nothing between requests.

1. ``GET /api/v1/health/`` and ``GET /api/v1/me/recommendations/?n=10`` (Token
   auth, a random ML-100K user each request), one run each per concurrency:
   req/s, p50/p99. Goals: recommendations at >= 0.7x health's throughput, p99
   <= 50 ms at 16 users.
2. Mixed: 90 % reads (recommendations, item detail, items list), 10 % rating
   writes ``PUT /api/v1/ratings/{item}/`` by 200 users, each an ML-100K user of
   its own, for 60 s. Goals: no errors, and no lost rating: afterwards every
   acknowledged last write is in the database, the users' rating counts are
   what they were plus the new pairs, and every item's rating count and sum
   match its ratings.

The exit status is non-zero if a request failed or a rating was lost.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    ROOT,
    command_line,
    load_average,
    manage,
    manage_env,
    percentiles_ms,
    postgres_database,
    run_child,
    write_section,
)

HEADING = "## REST API under load"
LOCUSTFILE = Path(__file__).with_name("locustfile_api.py")
#: DRF's rate format; far above anything a loopback run reaches.
UNTHROTTLED = "100000000/minute"
PAGE_SIZE = 25  # REST_FRAMEWORK["PAGE_SIZE"]
DATABASE = "tastebase_bench_api"
#: The site's cache keys start with this (CACHE_KEY_PREFIX), so clearing them leaves other keys alone.
CACHE_PREFIX = "tastebase-bench-api"

CHILD = r"""
import json, random, sys
import django
django.setup()
from django.db import connection
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from bench.common import print_result
from catalog.models import Item
from ratings.models import Rating

mode, path = sys.argv[1], sys.argv[2]
if mode == "setup":
    mixed_users, seed = int(sys.argv[3]), int(sys.argv[4])
    users = list(User.objects.filter(username__regex=r"^ml[0-9]+$").order_by("id"))
    tokens = [[u.username, Token.objects.get_or_create(user=u)[0].key] for u in users]
    if len(tokens) < mixed_users:
        sys.exit(f"{mixed_users} mixed users wanted, only {len(tokens)} ML-100K users")
    mixed = random.Random(seed).sample(tokens, mixed_users)
    initial = {name: [] for name, _ in mixed}
    for name, item in Rating.objects.filter(user__username__in=list(initial)).values_list("user__username", "item_id"):
        initial[name].append(item)
    items = list(Item.objects.order_by("id").values_list("id", flat=True))
    json.dump({"tokens": tokens, "mixed_tokens": mixed, "items": items, "initial": initial}, open(path, "w"))
    print_result({"users": len(tokens), "items": len(items), "ratings": Rating.objects.count()})
else:  # verify: the acknowledged writes of locust's result file against the database
    done, initial = json.load(open(path)), json.load(open(sys.argv[3]))["initial"]
    acked, uncertain = done["acked"], done["uncertain"]
    checked = lost = counts_off = expected = stored = 0
    examples = []
    for name, pairs in initial.items():
        db = dict(Rating.objects.filter(user__username=name).values_list("item_id", "score"))
        sent = {int(i): score for i, score in acked.get(name, {}).items()}
        for item, score in sent.items():
            checked += 1
            if db.get(item) != score:
                lost += 1
                if len(examples) < 5:
                    examples.append(f"{name} item {item}: sent {score}, stored {db.get(item)}")
        want = set(pairs) | set(sent)
        # A write without an answer may or may not have created its rating.
        maybe = want | {int(i) for i in uncertain.get(name, [])}
        if not want <= set(db) <= maybe:
            counts_off += 1
            if len(examples) < 10:
                examples.append(f"{name}: {len(db)} ratings stored, {len(want)} expected")
        expected += len(want)
        stored += len(db)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM catalog_item i LEFT JOIN (SELECT item_id, count(*) n, sum(score) s "
            "FROM ratings_rating GROUP BY item_id) r ON r.item_id = i.id "
            "WHERE i.rating_count <> coalesce(r.n, 0) OR abs(i.rating_sum - coalesce(r.s, 0)) > 1e-6"
        )
        aggregates_off = cursor.fetchone()[0]
    print_result({
        "checked": checked, "lost": lost, "counts_off": counts_off, "examples": examples,
        "uncertain": sum(len(v) for v in uncertain.values()),
        "ratings_expected": expected, "ratings_stored": stored,
        "ratings_before": sum(len(v) for v in initial.values()),
        "aggregates_off": aggregates_off, "ratings_total": Rating.objects.count(),
    })
"""


# ---- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET; (status, body), status 0 when nothing answered."""
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@contextmanager
def gunicorn(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``gunicorn config.wsgi`` on a free loopback port, stopped afterwards; yields (base URL, master)."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi",
        "-w", str(workers), "-b", f"127.0.0.1:{port}",
        "--timeout", "120", "--log-level", "warning", "--error-logfile", str(log),
    ]  # fmt: skip
    with log.open("ab") as output:  # Django's own log (console handler) goes to stderr
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while (status := get(f"{base}/api/v1/health/", timeout=5)[0]) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start:\n{log.read_text()[-3000:] if log.exists() else ''}"
                )
            time.sleep(0.2)
        if status != 200:
            raise RuntimeError(
                f"GET /api/v1/health/ answered {status}: {get(f'{base}/api/v1/health/')[1][:500]!r}"
            )
        yield base, psutil.Process(proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: gunicorn and its workers only
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def cpu_snapshot(master: psutil.Process, database: str = DATABASE) -> dict[str, Any]:
    """CPU seconds so far: per process of gunicorn and of ``database``'s Postgres backends, and the machine's."""
    groups: dict[str, dict[int, float]] = {"gunicorn": {}, "postgres": {}}
    try:
        server = [master, *master.children(recursive=True)]
    except psutil.Error:
        server = []
    backends = [
        p
        for p in psutil.process_iter(["cmdline"])
        if f" {database} " in " ".join(p.info["cmdline"] or [])
        and p.info["cmdline"][0].startswith("postgres")
    ]
    for group, processes in (("gunicorn", server), ("postgres", backends)):
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            groups[group][process.pid] = times.user + times.system
    machine = psutil.cpu_times()
    busy = sum(getattr(machine, f) for f in ("user", "system", "nice", "irq", "softirq", "steal"))
    return {**groups, "machine": busy}


@contextmanager
def cpu_meter(master: psutil.Process, database: str = DATABASE) -> Iterator[dict[str, float]]:
    """Average cores busy during the block: gunicorn, Postgres (``database``), the whole machine.

    Filled in when the block ends, with its wall seconds. Processes are
    sampled every half second, so a backend that exits mid-run
    (``CONN_MAX_AGE`` recycles connections) still counts.
    """
    cores: dict[str, float] = {}
    start = cpu_snapshot(master, database)
    seen: dict[str, dict[int, float]] = {group: dict(start[group]) for group in ("gunicorn", "postgres")}
    stop = threading.Event()

    def sample() -> float:
        snapshot = cpu_snapshot(master, database)
        for group, processes in seen.items():
            processes.update(snapshot[group])
        return snapshot["machine"]

    def poll() -> None:
        while not stop.wait(0.5):
            sample()

    sampler = threading.Thread(target=poll, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield cores
    finally:
        stop.set()
        sampler.join()
        machine = sample()
        wall = time.perf_counter() - started
        for group, processes in seen.items():
            cores[group] = sum(s - start[group].get(pid, 0.0) for pid, s in processes.items()) / wall
        cores["machine"] = (machine - start["machine"]) / wall
        cores["wall"] = wall


def warm_up(base: str, tokens: list[list[str]], items: list[int]) -> dict[str, int]:
    """Load every worker's models and code paths before anything is timed (nothing is written).

    Raises if an endpoint never answers 2xx; returns how many warm-up requests
    of each endpoint failed otherwise.
    """
    urls = (
        [("recommendations", f"{base}/api/v1/me/recommendations/?n=10", key) for _, key in tokens[:100]]
        + [("item detail", f"{base}/api/v1/items/{item}/", None) for item in items[:50]]
        + [("items list", f"{base}/api/v1/items/?page={page}", None) for page in range(1, 21)]
        + [("health", f"{base}/api/v1/health/", None)] * 50
    )
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda u: (u[0], u[1], get(u[1], u[2], timeout=60)[0]), urls))
    sent = Counter(name for name, _, _ in urls)
    failed = Counter(name for name, _, status in answers if not 200 <= status < 300)
    broken = [(url, status) for name, url, status in answers if failed[name] == sent[name]]
    if broken:
        raise RuntimeError(f"warm-up: an endpoint never answered 2xx, e.g. {broken[:3]}")
    return dict(failed)


def flush_cache(redis_url: str, prefix: str = CACHE_PREFIX) -> None:
    """Delete the site's keys (cached lists, generations, throttles, health probes), only those."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


# ---- locust ----------------------------------------------------------------------------


def locust_run(
    user_class: str,
    *,
    users: int,
    seconds: int,
    base: str,
    config: dict[str, Any],
    tmp: Path,
    master: psutil.Process,
    database: str = DATABASE,
) -> dict[str, Any]:
    """One headless locust run of ``user_class``; per request name: count, req/s, latencies, errors."""
    label = f"{user_class}-{users}"
    out = tmp / f"{label}.json"
    config_path = tmp / f"{label}-config.json"
    config_path.write_text(json.dumps({**config, "out": str(out)}), encoding="utf-8")
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", base,
        "--stop-timeout", "30", "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        user_class,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_API_CONFIG": str(config_path)}
    with cpu_meter(master, database) as cores:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120
        )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"locust {user_class} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    raw = json.loads(out.read_text(encoding="utf-8"))
    cores["locust"] = raw["cpu_s"] / cores["wall"]
    cores["other"] = max(cores["machine"] - cores["gunicorn"] - cores["postgres"] - cores["locust"], 0.0)
    rows = {}
    for name, r in raw["requests"].items():
        statuses = {int(k): v for k, v in r["statuses"].items()}
        count = sum(statuses.values())
        start, end = r["window"]
        rows[name] = {
            "count": count,
            "rps": count / (end - start),
            "errors": sum(v for k, v in statuses.items() if not 200 <= k < 300),
            "statuses": statuses,
            "window": (start, end),
            **percentiles_ms(r["latencies_s"]),
        }
    if not rows:
        raise RuntimeError(f"locust {user_class} sent no request:\n{done.stderr[-3000:]}")
    start = min(row["window"][0] for row in rows.values())
    end = max(row["window"][1] for row in rows.values())
    all_latencies = [s for r in raw["requests"].values() for s in r["latencies_s"]]
    total = sum(row["count"] for row in rows.values())
    rows["all"] = {
        "count": total,
        "rps": total / (end - start),
        "errors": sum(row["errors"] for row in rows.values()),
        **percentiles_ms(all_latencies),
    }
    cpu_note = "CPU usage above" in done.stderr
    return {
        "rows": rows,
        "raw": raw,
        "out": out,
        "cpu": cores,
        "locust_cpu_warning": cpu_note,
        "error_samples": raw["error_samples"],
    }


# ---- the runs ----------------------------------------------------------------------------


def prepare(env: dict[str, str], tmp: Path, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Migrate, load ML-100K, train, hand out tokens; (setup file, locust config)."""
    for step in (["migrate", "--no-input"], ["load_demo_data"], ["retrain"]):
        seconds, _ = manage(step, env)
        print(f"manage.py {' '.join(step)}: {seconds:.1f} s", flush=True)
    path = tmp / "setup.json"
    command = [sys.executable, "-c", CHILD, "setup", str(path), str(args.mixed_users), str(args.seed)]
    print(f"setup: {run_child(command, env=env)}", flush=True)
    data = json.loads(path.read_text(encoding="utf-8"))
    config = {
        "tokens": data["tokens"],
        "mixed_tokens": data["mixed_tokens"],
        "items": data["items"],
        "item_pages": max(1, math.ceil(len(data["items"]) / PAGE_SIZE)),
        "seed": args.seed,
    }
    return path, config


@dataclass
class Measured:
    """What :func:`measure` saw."""

    runs: list[tuple[str, int, dict[str, Any]]]  # (scenario, users, locust_run's result)
    mixed: dict[str, Any]
    server_log: str
    warm_failures: dict[str, int]  # endpoint -> failed warm-up requests
    load_before: float  # 1-minute load average when gunicorn was up


def measure(env: dict[str, str], tmp: Path, args: argparse.Namespace, config: dict[str, Any]) -> Measured:
    """Serve, warm up, run every scenario."""
    runs: list[tuple[str, int, dict[str, Any]]] = []
    log = tmp / "gunicorn.log"
    with gunicorn(env, args.workers, log) as (base, master):
        load_before = load_average()
        warm_failures = warm_up(base, config["tokens"], config["items"])
        print(f"warm-up failures: {warm_failures or 'none'}", flush=True)

        def run(user_class: str, users: int, seconds: int) -> dict[str, Any]:
            flush_cache(args.redis_url)
            return locust_run(
                user_class, users=users, seconds=seconds, base=base, config=config, tmp=tmp, master=master
            )

        for users in args.users:
            for scenario, user_class in SCENARIOS.items():
                result = run(user_class, users, args.duration)
                runs.append((scenario, users, result))
                print(row(scenario, users, result["rows"]["all"], result["cpu"]), flush=True)
        mixed = run("MixedUser", args.mixed_users, args.mixed_duration)
        print(row("mixed", args.mixed_users, mixed["rows"]["all"], mixed["cpu"]), flush=True)
    server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return Measured(runs, mixed, server_log, warm_failures, load_before)


# ---- the report ----------------------------------------------------------------------------

SCENARIOS = {"health": "HealthUser", "recommendations": "RecommendationsUser"}
LABELS = {
    "health": "`GET /api/v1/health/`",
    "recommendations": "`GET /api/v1/me/recommendations/?n=10`",
    "item detail": "`GET /api/v1/items/{id}/`",
    "items list": "`GET /api/v1/items/?page=k`",
    "rating write": "`PUT /api/v1/ratings/{item}/`",
}


def row(scenario: str, users: int, r: dict[str, Any], cpu: dict[str, float] | None) -> str:
    cores = " / ".join(f"{cpu[k]:.2f}" for k in ("gunicorn", "postgres", "locust", "other")) if cpu else ""
    return (
        f"| {scenario} | {users} | {r['count']:,} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
        f"{r['errors']} | {cores} |"
    )


def report(args: argparse.Namespace, measured: Measured, check: dict[str, Any]) -> tuple[str, bool]:
    """The markdown for docs/benchmarks.md, and whether every correctness goal held."""
    runs, mixed = measured.runs, measured.mixed
    lines = [
        f"gunicorn `config.wsgi`, {args.workers} sync workers, DEBUG off, PostgreSQL 15 and Redis (cache) on "
        "the same machine, Celery eager (a rating write folds the user in inside the request), throttles "
        f"raised; ML-100K, the 3 default models trained. Locust {_locust_version()} headless on loopback in "
        "its own process; users wait for nothing between requests (a closed loop: req/s is the server's "
        "capacity at that concurrency, and latency includes waiting for a free worker). The list cache starts "
        "empty in every run. Latencies are the client's, over every request. CPU: average cores busy during "
        "the run in gunicorn (master and workers), this database's Postgres backends, locust, and everything "
        f"else on the machine (Redis, other jobs); 1-minute load average before the runs {measured.load_before:.2f}.",
        "",
        "| scenario | users | requests | req/s | p50 ms | p99 ms | errors | CPU: gunicorn / Postgres / locust / other |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario, users, result in runs:
        lines.append(row(LABELS[scenario], users, result["rows"]["all"], result["cpu"]))
    for name in ("recommendations", "item detail", "items list", "rating write"):
        if name in mixed["rows"]:
            lines.append(row(f"mixed: {LABELS[name]}", args.mixed_users, mixed["rows"][name], None))
    lines += [row("**mixed: all**", args.mixed_users, mixed["rows"]["all"], mixed["cpu"]), ""]
    by = {(scenario, users): result["rows"]["all"] for scenario, users, result in runs}
    for users in args.users:
        health, recs = by[("health", users)], by[("recommendations", users)]
        ratio = recs["rps"] / health["rps"]
        goal = f" (goal <= 50 ms: {'met' if recs['p99'] <= 50 else 'missed'})" if users == 16 else ""
        lines.append(
            f"- {users} users: recommendations/health throughput **{ratio:.2f}** "
            f"(goal >= 0.7: {'met' if ratio >= 0.7 else 'missed'}); recommendations p99 {recs['p99']:.1f} ms{goal}."
        )
    errors = sum(result["rows"]["all"]["errors"] for _, _, result in runs) + mixed["rows"]["all"]["errors"]
    writes = mixed["rows"].get("rating write", {}).get("count", 0)
    lines.append(
        f"- Mixed run: {writes:,} rating writes by {args.mixed_users} users; the last acknowledged write of each "
        f"of {check['checked']:,} (user, item) pairs checked in the database afterwards: "
        f"**lost: {check['lost']}** (unanswered: {check['uncertain']}). Those users' ratings "
        f"{check['ratings_before']:,} -> {check['ratings_stored']:,} ({check['ratings_expected']:,} expected, "
        f"users off: {check['counts_off']}); items whose rating count or sum disagrees with their ratings: "
        f"{check['aggregates_off']}."
    )
    lines.append(f"- Errors (non-2xx or no answer) over all runs: **{errors}**.")
    failed = [
        f"{LABELS[name]} at {users} users: " + ", ".join(f"{n} x {k or 'no answer'}" for k, n in bad.items())
        for _, users, result in [*runs, ("mixed", args.mixed_users, mixed)]
        for name, r in result["rows"].items()
        if name != "all" and (bad := {k: n for k, n in sorted(r["statuses"].items()) if not 200 <= k < 300})
    ]
    if failed:
        lines.append(f"- Failed requests by status: {'; '.join(failed)}.")
    samples = list(
        dict.fromkeys(s for _, _, result in [*runs, ("", 0, mixed)] for s in result["error_samples"])
    )
    if samples:
        lines.append(f"- Distinct errors seen first: {'; '.join(samples[:5])}")
    if check["examples"]:
        lines.append(f"- Lost, e.g.: {'; '.join(check['examples'])}")
    if any(result["locust_cpu_warning"] for _, _, result in [*runs, ("", 0, mixed)]):
        lines.append("- Locust warned that its CPU use went above 90 % in at least one run.")
    if measured.warm_failures:
        warm = ", ".join(f"{name} {n}" for name, n in measured.warm_failures.items())
        lines.append(f"- Warm-up (8 threads, not counted above) requests that failed: {warm}.")
    if tracebacks := measured.server_log.count("Traceback"):
        lines.append(f"- gunicorn logged {tracebacks} traceback(s).")
    ok = not (errors or check["lost"] or check["counts_off"] or check["aggregates_off"])
    return "\n".join(lines), ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of each health/recommendations run")
    parser.add_argument(
        "--users",
        type=lambda text: [int(u) for u in text.split(",")],
        default=[16, 64],
        help="concurrent users of the health/recommendations runs, comma-separated (default 16,64)",
    )
    parser.add_argument("--mixed-users", type=int, default=200)
    parser.add_argument("--mixed-duration", type=int, default=60, help="seconds of the mixed run")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="Redis for the site's cache")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    # A plain kill would skip the clean-up below (gunicorn, the database, the Redis database).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="tastebase-bench-api-") as tmp_name,
        postgres_database(args.pg_url, DATABASE) as url,
    ):
        tmp = Path(tmp_name)
        env = manage_env(
            url,
            DEBUG="0",
            ALLOWED_HOSTS="127.0.0.1",
            REDIS_URL=args.redis_url,
            CACHE_KEY_PREFIX=CACHE_PREFIX,
            # REDIS_URL would otherwise become the broker too: keep tasks in-process.
            CELERY_TASK_ALWAYS_EAGER="1",
            TASTEBASE_API_USER_RATE=UNTHROTTLED,
            TASTEBASE_API_ANON_RATE=UNTHROTTLED,
        )
        try:
            flush_cache(args.redis_url)
            setup_path, config = prepare(env, tmp, args)
            measured = measure(env, tmp, args, config)
            command = [sys.executable, "-c", CHILD, "verify", str(measured.mixed["out"]), str(setup_path)]
            check = run_child(command, env=env)
        finally:
            flush_cache(args.redis_url)
    body, ok = report(args, measured, check)
    print(body)
    print(f"({time.perf_counter() - started:.0f} s in all)")
    if not args.no_write:
        write_section("bench.bench_api", HEADING, body, command=command_line("bench.bench_api"))
    if not ok:
        sys.exit(1)


def _locust_version() -> str:
    from importlib.metadata import version

    return version("locust")


if __name__ == "__main__":
    main()
