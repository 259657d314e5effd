"""Latency of ``recommend`` for one user over the full synthetic ML-20M-shaped catalog.

    python bench/bench_recommend.py [--scale 1.0] [--users 2000]

Fits ExplicitALS (k=64) and ImplicitALS on the cached synthetic set
(bench/synthetic.py), then times ``model.recommend(user, n=10)`` in process for
random users (seen items excluded) and prints p50/p99/max.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import load

from recommender.engine import ExplicitALS, ImplicitALS, Interactions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    arrays = load(args.scale)
    data = Interactions.from_arrays(arrays["users"], arrays["items"], arrays["ratings"])
    print(f"{data.n_users:,} users x {data.n_items:,} items, {data.nnz:,} ratings", flush=True)
    rng = np.random.default_rng(0)
    users = rng.choice(data.user_ids, size=args.users, replace=False)
    rows = []
    for model in (
        ExplicitALS(factors=64, iterations=5, solver="cg", track_loss=False),
        ImplicitALS(factors=64, iterations=5),
    ):
        t = time.perf_counter()
        model.fit(data)
        fit_s = time.perf_counter() - t
        for u in users[:50]:  # warm-up
            model.recommend(u, n=10)
        lat = np.empty(len(users))
        for j, u in enumerate(users):
            t = time.perf_counter()
            model.recommend(u, n=10, exclude_seen=True)
            lat[j] = time.perf_counter() - t
        ms = lat * 1000
        rows.append((type(model).__name__, fit_s, np.median(ms), np.quantile(ms, 0.99), ms.max()))
        print(rows[-1], flush=True)
    print(f"\n`python bench/bench_recommend.py --scale {args.scale:g} --users {args.users}`\n")
    print("| model | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|")
    for name, _fit, p50, p99, mx in rows:
        print(f"| {name}.recommend(user, n=10) | {p50:.3f} | {p99:.3f} | {mx:.3f} |")


if __name__ == "__main__":
    main()
