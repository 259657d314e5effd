"""Latency of ``recommend`` for one user over the full synthetic ML-20M-shaped catalog.

    python -m bench.bench_recommend [--scale 1.0] [--users 2000]
    python -m bench.bench_recommend --scale 0.02 --users 50 --no-write   # a smoke run

Fits ExplicitALS (k=64) and ImplicitALS on the cached synthetic set
(``bench/synthetic.py``), then times ``model.recommend(user, n=10)`` in process for
random users (seen items excluded) and prints p50/p99/max.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import command_line, percentiles_ms, synthetic_interactions, write_section
from recommender.engine import ExplicitALS, ImplicitALS

HEADING = "## recommend latency on the synthetic ML-20M-shaped catalog"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    data = synthetic_interactions(args.scale)
    print(f"{data.n_users:,} users x {data.n_items:,} items, {data.nnz:,} ratings", flush=True)
    rng = np.random.default_rng(0)
    users = rng.choice(data.user_ids, size=min(args.users, data.n_users), replace=False)
    rows = []
    for model in (
        ExplicitALS(factors=64, iterations=5, solver="cg", track_loss=False),
        ImplicitALS(factors=64, iterations=5),
    ):
        model.fit(data)
        for u in users[:50]:  # warm-up
            model.recommend(u, n=10)
        latencies = []
        for u in users:  # perf_counter directly: a context manager would add to sub-millisecond calls
            start = time.perf_counter()
            model.recommend(u, n=10, exclude_seen=True)
            latencies.append(time.perf_counter() - start)
        rows.append((type(model).__name__, percentiles_ms(latencies)))
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            "| model | p50 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|",
            *(
                f"| {name}.recommend(user, n=10) | {p['p50']:.3f} | {p['p99']:.3f} | {p['max']:.3f} |"
                for name, p in rows
            ),
        ]
    )
    summary = (
        f"In process, one user at a time over all {data.n_items:,} items, seen items excluded, n=10, "
        f"{len(users):,} random users; models fitted with factors=64 on {data.nnz:,} ratings "
        f"(`bench/synthetic.py`, scale {args.scale:g})."
    )
    print(f"\n{summary}\n\n{table}")
    if not args.no_write:
        write_section(
            "bench.bench_recommend",
            HEADING,
            f"{summary}\n\n{table}",
            command=command_line("bench.bench_recommend"),
        )


if __name__ == "__main__":
    main()
