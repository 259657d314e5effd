"""Benchmark: ItemKNN top-50 neighbours for every item on MovieLens-20M-shaped data.

Usage::

    python -m bench.bench_knn                  # full size: 138,493 x 26,744, 20M ratings
    python -m bench.bench_knn --scale 0.25,1   # one row per scale (users, items and ratings scaled)
    python -m bench.bench_knn --scale 0.02 --no-write   # a smoke run

Targets (full size, 2 cores): fit <= 120 s, peak RSS <= 4 GB. Each scale runs in
its own child process, so its peak resident set size is that scale's alone;
data from ``bench/synthetic.py`` (cached), ``ItemKNN(similarity, k, n_neighbors=k)``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import numpy as np
from numba import get_num_threads

from bench import synthetic
from bench.common import (
    command_line,
    load_average,
    peak_rss_mb,
    print_result,
    run_child,
    synthetic_interactions,
    timed,
    write_section,
)
from recommender.engine.knn import ItemKNN

HEADING = "## ItemKNN neighbours on the synthetic ML-20M-shaped set"


def worker(scale: float, seed: int, similarity: str, k: int) -> dict[str, Any]:
    """Build the data and fit ItemKNN in this process; timings and this process's peak memory."""
    with timed() as build:
        data = synthetic_interactions(scale, seed)
    rss_after_data = peak_rss_mb()
    model = ItemKNN(similarity=similarity, k=k, n_neighbors=k)
    with timed() as fit:
        model.fit(data)
    return {
        "scale": scale,
        "users": data.n_users,
        "items": data.n_items,
        "ratings": data.nnz,
        "sum_user_sq": float(np.square(np.diff(data.csr.indptr).astype(np.float64)).sum()),
        "load_s": round(build.wall, 2),
        "fit_s": round(fit.wall, 2),
        "fit_cpu_s": round(fit.cpu, 2),
        "threads": get_num_threads(),
        "neighbor_fill": round(float((model.neighbors_ >= 0).mean()), 4),
        "peak_rss_mb_after_data": round(rss_after_data),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scale | users × items | ratings | fit wall s | fit CPU s | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scale']:g} | failed: {r['error']} | | | | |")
        else:
            lines.append(
                f"| {r['scale']:g} | {r['users']:,} × {r['items']:,} | {r['ratings']:,} | {r['fit_s']:.1f} | "
                f"{r['fit_cpu_s']:.1f} | {r['peak_rss_mb']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1", help="comma-separated scales; 1 = ML-20M's size")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--similarity", default="pearson_baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per scale")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scales = [float(s) for s in args.scale.split(",")]
    if args.worker:
        print_result(worker(scales[0], args.seed, args.similarity, args.k))
        return

    load = load_average()
    rows = []
    for scale in scales:
        synthetic.load(scale, args.seed)  # build the cache outside the measured child
        command = [
            sys.executable, "-m", "bench.bench_knn", "--worker", "--scale", str(scale),
            "--seed", str(args.seed), "--similarity", args.similarity, "--k", str(args.k),
        ]  # fmt: skip
        try:
            rows.append(run_child(command, timeout=args.timeout))
        except subprocess.TimeoutExpired:
            rows.append({"scale": scale, "error": f"timed out after {args.timeout:.0f} s"})
        except RuntimeError as exc:
            rows.append({"scale": scale, "error": str(exc).strip().splitlines()[-1]})
        print(rows[-1], file=sys.stderr, flush=True)
    summary = (
        f"`ItemKNN(similarity={args.similarity!r}, k={args.k}, n_neighbors={args.k})`: top-{args.k} "
        f"neighbours for every item by blocked sparse products; data `bench/synthetic.py` (seed {args.seed}); "
        f"each scale in its own process; 1-minute load average {load:.1f} when the run started."
    )
    table = markdown_table(rows)
    print(f"\n{summary}\n\n{table}")
    if not args.no_write:
        write_section(
            "bench.bench_knn", HEADING, f"{summary}\n\n{table}", command=command_line("bench.bench_knn")
        )


if __name__ == "__main__":
    main()
