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

    python -m bench.bench_als --scale 0.25
    python -m bench.bench_als --scale 1 --timeout 1500
    python -m bench.bench_als --scale 0.02 --iterations 2 --models explicit --no-write   # a smoke run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import numpy as np

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

MODELS = ("explicit", "explicit-cg", "implicit")
HEADING = "## ExplicitALS on the synthetic ML-20M-shaped set"


def worker(model: str, scale: float, seed: int, factors: int, iterations: int) -> dict[str, Any]:
    """Fit one model in this process; its timings and this process's peak memory."""
    data = synthetic_interactions(scale, seed)
    rss_data = peak_rss_mb()
    if model.startswith("explicit"):
        from recommender.engine.als import ExplicitALS
        from recommender.engine.interactions import Interactions

        solver = "cg" if model == "explicit-cg" else "cholesky"
        tiny = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0])
        ExplicitALS(factors=factors, iterations=1, solver=solver).fit(tiny)  # load numba's cache
        est = ExplicitALS(
            factors=factors, iterations=iterations, solver=solver, track_loss=False, random_state=0
        )
        with timed() as fit:
            est.fit(data)
        extra = {"params": {k: v for k, v in est.get_params().items() if k != "track_loss"}}
    else:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares

        # Ratings as confidences; implicit wants float32 CSR users x items.
        user_items = data.csr.astype(np.float32)
        als = AlternatingLeastSquares(
            factors=factors, iterations=iterations, calculate_training_loss=False, random_state=0
        )
        with timed() as fit:
            als.fit(user_items, show_progress=False)
        extra = {"params": {"version": implicit.__version__, "use_cg": True}}
    return {
        "model": model,
        "nnz": data.nnz,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "seconds_total": fit.wall,
        "seconds_per_iteration": fit.wall / iterations,
        "cpu_seconds_per_iteration": fit.cpu / iterations,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_data_mb": rss_data,
        **extra,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | wall s / iteration | CPU s / iteration | total fit s | peak RSS (MB) | RSS after data (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['error']} | | | | |")
        else:
            lines.append(
                f"| {r['model']} | {r['seconds_per_iteration']:.2f} | {r['cpu_seconds_per_iteration']:.2f} | "
                f"{r['seconds_total']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_after_data_mb']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print_result(worker(args.worker, args.scale, args.seed, args.factors, args.iterations))
        return

    synthetic.load(args.scale, args.seed)  # build the cache once, outside the timed children
    load = load_average()
    rows = []
    for model in args.models.split(","):
        command = [
            sys.executable, "-m", "bench.bench_als", "--worker", model, "--scale", str(args.scale),
            "--seed", str(args.seed), "--factors", str(args.factors), "--iterations", str(args.iterations),
        ]  # fmt: skip
        try:
            rows.append(run_child(command, timeout=args.timeout))
        except subprocess.TimeoutExpired:
            rows.append({"model": model, "error": f"timed out after {args.timeout:.0f} s"})
        except RuntimeError as exc:
            rows.append({"model": model, "error": str(exc).strip().splitlines()[-1]})
        print(rows[-1], file=sys.stderr, flush=True)

    first = next((r for r in rows if "nnz" in r), None)
    shape = (
        f"{first['n_users']:,} users x {first['n_items']:,} items, {first['nnz']:,} ratings" if first else ""
    )
    summary = (
        f"Data: `bench/synthetic.py` at scale {args.scale:g}, seed {args.seed} ({shape}); "
        f"factors={args.factors}, iterations={args.iterations}; each model in its own process; "
        f"1-minute load average {load:.1f} when the run started."
    )
    table = markdown_table(rows)
    print(f"\n{summary}\n\n{table}")
    if not args.no_write:
        write_section(
            "bench.bench_als", HEADING, f"{summary}\n\n{table}", command=command_line("bench.bench_als")
        )


if __name__ == "__main__":
    main()
