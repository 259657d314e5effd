"""Benchmark: ItemKNN top-50 neighbours for every item on MovieLens-20M-shaped data.

Usage::

    python bench/bench_knn.py                 # full size: 138,493 x 26,744, 20M ratings
    python bench/bench_knn.py --scale 0.1     # users, items and ratings scaled by 0.1

Targets (full size, 2 cores): fit <= 120 s, peak RSS <= 4 GB. Prints one
JSON line with the timings and the peak resident set size of the process.

Measured (2-core AMD EPYC VM shared with other jobs, load average ~5;
``ItemKNN(similarity="pearson_baseline", k=50, n_neighbors=50)``, data from
``bench/synthetic.py``, seed 0):

* scale 0.25 (34,623 x 6,686, 5.0M ratings): fit 7.8 s wall, 9.8 s CPU;
* scale 1 (138,493 x 26,744, 20.0M ratings, sum_u |I_u|^2 = 9.9e9):
  fit 91.7 s wall, 66.9 s CPU; peak RSS 1.93 GB (reached while building
  the data, the fit adds nothing measurable).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from numba import get_num_threads

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.engine.interactions import Interactions
from recommender.engine.knn import ItemKNN

ML20M_USERS, ML20M_ITEMS, ML20M_RATINGS = 138_493, 26_744, 20_000_263


def _fallback_generate(n_users: int, n_items: int, n_ratings: int, seed: int) -> Interactions:
    """MovieLens-like synthetic ratings: log-normal user activity, Zipf item popularity.

    User activity is log-normal (ML-20M: mean ~144, median ~68 ratings per
    user, heavy tail), item popularity Zipf-like (a few items with tens of
    thousands of ratings), ratings from a low-rank taste model rounded to
    half stars, so neighbour search sees realistic co-rating counts.
    """
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.2, n_users)
    per_user = np.maximum(20, np.round(activity / activity.sum() * n_ratings)).astype(np.int64)
    per_user = np.minimum(per_user, n_items // 2)
    users = np.repeat(np.arange(n_users, dtype=np.int64), per_user)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity /= popularity.sum()
    items = rng.choice(n_items, size=users.shape[0], p=popularity).astype(np.int64)
    factors = 4
    pu = rng.normal(0, 0.5, (n_users, factors)).astype(np.float32)
    qi = rng.normal(0, 0.5, (n_items, factors)).astype(np.float32)
    ratings = np.empty(users.shape[0], dtype=np.float32)
    chunk = 1 << 22
    for s in range(0, users.shape[0], chunk):  # chunked: bounded temporaries
        u, i = users[s : s + chunk], items[s : s + chunk]
        raw = 3.5 + np.einsum("ij,ij->i", pu[u], qi[i]) + rng.normal(0, 0.8, u.shape[0])
        ratings[s : s + chunk] = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    return Interactions.from_indices(
        users,
        items,
        ratings,
        None,
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
    )


def generate(scale: float, seed: int) -> tuple[Interactions, str]:
    """The team's generator (``bench/synthetic.py``, cached) when present, else the local one."""
    try:
        from bench import synthetic
    except ImportError:
        synthetic = None
    if synthetic is not None:
        arrays = synthetic.load(scale, seed)
        n_users, n_items = (int(v) for v in arrays["shape"])
        data = Interactions.from_indices(
            arrays["users"],
            arrays["items"],
            arrays["ratings"],
            None,
            user_ids=np.arange(n_users, dtype=np.int64),
            item_ids=np.arange(n_items, dtype=np.int64),
        )
        return data, "bench.synthetic"
    n_users = max(100, round(ML20M_USERS * scale))
    n_items = max(50, round(ML20M_ITEMS * scale))
    n_ratings = max(1000, round(ML20M_RATINGS * scale))
    return _fallback_generate(n_users, n_items, n_ratings, seed), "bench_knn fallback"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--similarity", default="pearson_baseline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    data, source = generate(args.scale, args.seed)
    t_gen = time.perf_counter() - t0
    rss_after_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model = ItemKNN(similarity=args.similarity, k=args.k, n_neighbors=args.k)
    t1, c1 = time.perf_counter(), time.process_time()
    model.fit(data)
    t_fit, c_fit = time.perf_counter() - t1, time.process_time() - c1
    filled = float((model.neighbors_ >= 0).mean())
    print(
        json.dumps(
            {
                "generator": source,
                "users": data.n_users,
                "items": data.n_items,
                "ratings": data.nnz,
                "sum_user_sq": float(np.square(np.diff(data.csr.indptr).astype(np.float64)).sum()),
                "similarity": args.similarity,
                "k": args.k,
                "generate_s": round(t_gen, 2),
                "fit_s": round(t_fit, 2),
                "fit_cpu_s": round(c_fit, 2),
                "threads": get_num_threads(),
                "neighbor_fill": round(filled, 4),
                "peak_rss_mb_after_generate": round(rss_after_gen),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
