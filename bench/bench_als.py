"""Time ExplicitALS on the synthetic ML-20M-shaped set, beside implicit's ALS.

Each model runs in its own child process so ``ru_maxrss`` (peak resident
memory, from ``resource.getrusage``) is that model's peak, data included.
Seconds per iteration = wall time of ``fit`` / iterations (setup included,
numba compilation excluded by a warm-up fit on a tiny set); CPU seconds per
iteration (user + system, all threads) are printed too, since wall time is
meaningless on a machine shared with other jobs. ExplicitALS runs
with ``track_loss=False`` so no objective pass is timed, as implicit computes
no training loss by default either.

implicit (``pip install implicit==0.7.3``, a bench-only dependency) fits the
*implicit-feedback* model of Hu et al. 2008 with its CG solver, so it is a
speed yardstick for the same factors and iterations, not the same objective.

    python bench/bench_als.py --scale 0.25
    python bench/bench_als.py --scale 1 --timeout 1500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MODELS = ("explicit", "explicit-cg", "implicit")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _load(scale: float, seed: int) -> Any:
    import synthetic

    from recommender.engine.interactions import Interactions

    a = synthetic.load(scale, seed)
    n_users, n_items = (int(x) for x in a["shape"])
    data = Interactions.from_indices(
        a["users"], a["items"], a["ratings"], None, user_ids=np.arange(n_users), item_ids=np.arange(n_items)
    )
    return data


def worker(model: str, scale: float, seed: int, factors: int, iterations: int) -> dict[str, Any]:
    data = _load(scale, seed)
    rss_data = _peak_rss_mb()
    if model.startswith("explicit"):
        from recommender.engine.als import ExplicitALS
        from recommender.engine.interactions import Interactions

        solver = "cg" if model == "explicit-cg" else "cholesky"
        tiny = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0])
        ExplicitALS(factors=factors, iterations=1, solver=solver).fit(tiny)  # load numba's cache
        est = ExplicitALS(
            factors=factors, iterations=iterations, solver=solver, track_loss=False, random_state=0
        )
        t, cpu = time.perf_counter(), _cpu_seconds()
        est.fit(data)
        seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
        extra = {"params": {k: v for k, v in est.get_params().items() if k != "track_loss"}}
    else:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares

        # Ratings as confidences; implicit wants float32 CSR users x items.
        user_items = data.csr.astype(np.float32)
        est = AlternatingLeastSquares(
            factors=factors, iterations=iterations, calculate_training_loss=False, random_state=0
        )
        t, cpu = time.perf_counter(), _cpu_seconds()
        est.fit(user_items, show_progress=False)
        seconds, cpu = time.perf_counter() - t, _cpu_seconds() - cpu
        extra = {"params": {"version": implicit.__version__, "use_cg": True}}
    return {
        "model": model,
        "nnz": data.nnz,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "seconds_total": seconds,
        "seconds_per_iteration": seconds / iterations,
        "cpu_seconds_per_iteration": cpu / iterations,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_data_mb": rss_data,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.scale, args.seed, args.factors, args.iterations)
        print("RESULT " + json.dumps(result), flush=True)
        return

    import synthetic

    synthetic.load(args.scale, args.seed)  # build the cache once, outside the timed children
    rows = []
    for model in args.models.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            model,
            "--scale",
            str(args.scale),
            "--seed",
            str(args.seed),
            "--factors",
            str(args.factors),
            "--iterations",
            str(args.iterations),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.timeout, env=os.environ.copy()
            )
        except subprocess.TimeoutExpired:
            rows.append({"model": model, "error": f"timed out after {args.timeout:.0f} s"})
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            rows.append({"model": model, "error": tail[0]})
            continue
        rows.append(json.loads(lines[-1][len("RESULT ") :]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    first = next((r for r in rows if "nnz" in r), None)
    shape = (
        f"{first['n_users']:,} users x {first['n_items']:,} items, {first['nnz']:,} ratings" if first else ""
    )
    print(
        f"\nscale {args.scale:g} ({shape}), factors={args.factors}, iterations={args.iterations}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| model | wall s / iteration | CPU s / iteration | total fit s | peak RSS (MB) | RSS after data (MB) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['error']} | | | | |")
        else:
            print(
                f"| {r['model']} | {r['seconds_per_iteration']:.2f} | {r.get('cpu_seconds_per_iteration', 0):.2f} | "
                f"{r['seconds_total']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_after_data_mb']:.0f} |"
            )
    print(
        f"\nload average during the run: {os.getloadavg()[0]:.1f} (wall times assume the CPUs were not shared)"
    )


if __name__ == "__main__":
    main()
