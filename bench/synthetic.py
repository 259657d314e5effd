"""A synthetic rating set shaped like MovieLens 20M, for timing the ALS kernels.

Shape at ``--scale 1``: 138,493 users x 26,744 items, 20,000,263 ratings (the
ML-20M counts). Users, items and ratings all scale linearly with ``--scale``.

* user activity: log-normal, at least 20 ratings each (as in ML-20M), summing
  exactly to the target count, capped so nobody rates more than 40 % of items;
* item popularity: Zipf, ``p(rank) ~ rank^-a``, ranks shuffled over item ids;
  a user's items are drawn without replacement (rejection rounds of
  vectorized draws; the last few missing ratings of very heavy users, whose
  draws keep hitting items they already have, are drawn uniformly from the
  items they have not rated yet);
* ratings: ``mu + b_u + c_i + w_u . v_i + noise`` with a rank-10 ``W V^T``,
  rounded to half stars and clipped to [0.5, 5].

Everything is vectorized numpy and seeded; the result is cached as
``synthetic-ml20m-scale<s>-seed<n>.npz`` under ``$TASTEBASE_DATA_DIR``
(default ``~/.cache/tastebase``). Run ``python -m bench.synthetic --scale 0.25``
to build (or just report) a cached set.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ratings.demo_data import data_dir

ML20M_USERS = 138_493
ML20M_ITEMS = 26_744
ML20M_RATINGS = 20_000_263
MIN_PER_USER = 20
ZIPF_EXPONENT = 0.9
TRUE_RANK = 10
#: Nobody rates more than this share of the items.
ACTIVITY_CAP = 0.4


def user_activity(rng: np.random.Generator, n_users: int, n_ratings: int, cap: int) -> NDArray[np.int64]:
    """Ratings per user: ``MIN_PER_USER + `` a log-normal share of the rest, summing to ``n_ratings``."""
    extra_total = n_ratings - MIN_PER_USER * n_users
    if extra_total < 0:
        raise ValueError("too few ratings for MIN_PER_USER per user")
    if n_users * cap < n_ratings:
        raise ValueError(f"{n_ratings} ratings do not fit {n_users} users rating at most {cap} items each")
    # sigma 1.2 gives ML-20M's long tail (median ~70, a few users with thousands).
    weights = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    counts = np.full(n_users, MIN_PER_USER, dtype=np.int64)
    remaining = extra_total
    active = np.ones(n_users, dtype=bool)
    for _ in range(50):  # water-filling: hand the excess of capped users to the others
        share = weights * active
        share = share / share.sum() * remaining
        add = np.floor(share).astype(np.int64)
        # Largest remainders get the leftover units so the total is exact.
        leftover = remaining - int(add.sum())
        if leftover > 0:
            add[np.argsort(-(share - add), kind="stable")[:leftover]] += 1
        counts += add
        over = counts > cap
        if not over.any():
            break
        remaining = int((counts[over] - cap).sum())
        counts[over] = cap
        active &= ~over
    return counts


def _sorted_unique(a: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique`` by sorting: numpy 2.x's hash-based unique is far slower on int64 keys."""
    a = np.sort(a)
    keep = np.ones(a.shape[0], dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def _draw_items(
    rng: np.random.Generator, counts: NDArray[np.int64], n_items: int, probs: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct (user, item) pairs with ``counts[u]`` items per user, items ~ ``probs``."""
    n_users = counts.shape[0]
    keys = np.empty(0, dtype=np.int64)
    missing = counts.copy()
    cdf = np.cumsum(probs)
    cdf /= cdf[-1]
    for round_ in range(30):
        need = int(missing.sum())
        if need == 0:
            break
        users = np.repeat(np.arange(n_users, dtype=np.int64), missing)
        if round_ < 12:
            items = np.searchsorted(cdf, rng.random(need), side="right")
        else:
            # Heavy users have taken most popular items; uniform draws finish them quickly.
            items = rng.integers(0, n_items, need)
        keys = _sorted_unique(np.concatenate([keys, users * n_items + items]))
        # Each user draws only what it misses, so it can never overshoot its count.
        missing = counts - np.bincount(keys // n_items, minlength=n_users)
    if missing.any():
        raise RuntimeError("could not draw enough distinct items; lower the activity cap")
    return keys // n_items, keys % n_items


def generate(scale: float = 1.0, seed: int = 0) -> dict[str, NDArray]:
    """Arrays ``users, items (int32), ratings (float32)`` and the shape, not cached."""
    rng = np.random.default_rng(seed)
    n_users = max(1, round(ML20M_USERS * scale))
    n_ratings = max(MIN_PER_USER * n_users, round(ML20M_RATINGS * scale))
    # Users and ratings shrink together but the ratings a user has do not: below
    # scale ~0.03 the scaled catalog could not hold them under the activity cap
    # (scale 0.01 asked 1,385 users for 200,003 ratings of 267 items, capped at
    # 106 each, and crashed). Keep enough items for twice the mean user under the cap.
    min_items = math.ceil(2 * n_ratings / n_users / ACTIVITY_CAP)
    n_items = max(MIN_PER_USER * 3, round(ML20M_ITEMS * scale), min_items)
    counts = user_activity(rng, n_users, n_ratings, cap=int(ACTIVITY_CAP * n_items))
    rank_of_item = rng.permutation(n_items)
    probs = ((rank_of_item + 1.0) ** -ZIPF_EXPONENT).astype(np.float64)
    users, items = _draw_items(rng, counts, n_items, probs)

    w = rng.normal(0.0, np.sqrt(0.5 / TRUE_RANK), (n_users, TRUE_RANK)).astype(np.float32)
    v = rng.normal(0.0, 1.0, (n_items, TRUE_RANK)).astype(np.float32)
    b_u = rng.normal(0.0, 0.35, n_users).astype(np.float32)
    # Popular items are rated a little higher, as in MovieLens.
    c_i = (rng.normal(0.0, 0.4, n_items) - 0.1 * np.log1p(rank_of_item / 100.0)).astype(np.float32)
    ratings = np.empty(users.shape[0], dtype=np.float32)
    step = 2_000_000  # chunks keep the (chunk x rank) temporaries small
    for s in range(0, users.shape[0], step):
        u, i = users[s : s + step], items[s : s + step]
        r = 3.6 + b_u[u] + c_i[i] + np.einsum("nk,nk->n", w[u], v[i]) + rng.normal(0.0, 0.8, u.shape[0])
        ratings[s : s + step] = np.clip(np.round(r * 2.0) / 2.0, 0.5, 5.0)
    return {
        "users": users.astype(np.int32),
        "items": items.astype(np.int32),
        "ratings": ratings,
        "shape": np.array([n_users, n_items], dtype=np.int64),
    }


def cache_path(scale: float, seed: int) -> Path:
    return data_dir() / f"synthetic-ml20m-scale{scale:g}-seed{seed}.npz"


def load(scale: float = 1.0, seed: int = 0) -> dict[str, NDArray]:
    """The cached set for ``(scale, seed)``, generated and saved on first use."""
    path = cache_path(scale, seed)
    if path.is_file():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = generate(scale, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    tmp.replace(path)  # atomic: a crashed run never leaves a truncated cache
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t = time.perf_counter()
    a = load(args.scale, args.seed)
    n_users, n_items = (int(x) for x in a["shape"])
    per_user = np.bincount(a["users"], minlength=n_users)
    per_item = np.bincount(a["items"], minlength=n_items)
    print(f"{cache_path(args.scale, args.seed)} ({time.perf_counter() - t:.1f} s)")
    print(f"users {n_users:,} items {n_items:,} ratings {a['ratings'].shape[0]:,}")
    print(f"ratings/user min {per_user.min()} median {np.median(per_user):.0f} max {per_user.max()}")
    print(
        f"ratings/item max {per_item.max()} median {np.median(per_item):.0f} zero {int((per_item == 0).sum())}"
    )
    print(f"rating mean {a['ratings'].mean():.3f} std {a['ratings'].std():.3f}")


if __name__ == "__main__":
    main()
