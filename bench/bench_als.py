"""Time ExplicitALS beside implicit's ALS on the synthetic ML-20M-shaped set, per iteration.

For every scale, each model is fitted in its own child process, one after the
other in the same run, so the ratio of their times is meaningful even when the
machine is shared (the 1-minute load average is printed at the start and end).
Seconds per iteration exclude setup (baselines, transposes, random start,
chunking): the clock starts at the first call of the model's half-step solver
(``als_half_step`` for ours, ``solver`` for implicit's) and stops when ``fit``
returns, divided by the iterations; wall and CPU time (user + system, all
threads). ``ru_maxrss`` (peak resident memory, data included) is that child's.
numba's compilation is excluded by a warm-up fit on a tiny set.

Models:

* ``explicit``: ``ExplicitALS`` with its defaults (``solver="auto"``: CG from
  5M ratings, exact below; ``track_loss=True``, so J is recorded every
  iteration as a caller gets it), only ``factors`` and ``iterations`` set;
* ``explicit-noloss``: the same with ``track_loss=False``;
* ``explicit-cg3``: CG with 3 steps per row (implicit's count) instead of the default 2;
* ``explicit-cholesky``: the exact solver whatever the size;
* ``implicit``: implicit 0.7.3's ``AlternatingLeastSquares`` (its CG solver,
  ``pip install implicit==0.7.3``, a bench-only dependency) with
  ``OPENBLAS_NUM_THREADS=1`` as its documentation asks and its own threads on
  all cores. It fits the *implicit-feedback* model of Hu et al. 2008 (ratings as
  confidences), so it is a speed yardstick for the same factors and
  iterations, not the same objective.

    python -m bench.bench_als --scale 0.25,1
    python -m bench.bench_als --scale 0.02 --iterations 2 --models explicit --no-write   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import synthetic
from bench.common import (
    command_line,
    cpu_seconds,
    load_average,
    peak_rss_mb,
    print_result,
    run_child,
    synthetic_interactions,
    timed,
    write_section,
)

MODELS = ("explicit", "explicit-noloss", "explicit-cg3", "explicit-cholesky", "implicit")
#: What the ratio column divides by.
YARDSTICK = "implicit"
HEADING = "## ExplicitALS on the synthetic ML-20M-shaped set"


def _explicit(model: str, factors: int, iterations: int) -> Any:
    from recommender.engine.als import ExplicitALS

    params: dict[str, Any] = {"factors": factors, "iterations": iterations, "random_state": 0}
    if model == "explicit-noloss":
        params["track_loss"] = False
    elif model == "explicit-cg3":
        params.update(solver="cg", cg_steps=3)
    elif model == "explicit-cholesky":
        params["solver"] = "cholesky"
    return ExplicitALS(**params)


class _FirstCall:
    """Wraps a solver so the clock of :func:`worker` starts at its first call, after setup."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def wrap(self, solver: Callable[..., Any]) -> Callable[..., Any]:
        def solve(*args: Any, **kwargs: Any) -> Any:
            if not self.wall:
                self.wall, self.cpu = time.perf_counter(), cpu_seconds()
            return solver(*args, **kwargs)

        return solve


def worker(model: str, scale: float, seed: int, factors: int, iterations: int) -> dict[str, Any]:
    """Fit one model in this process; seconds per iteration (setup excluded) and peak memory."""
    data = synthetic_interactions(scale, seed)
    rss_data = peak_rss_mb()
    extra: dict[str, Any] = {}
    first = _FirstCall()
    if model.startswith("explicit"):
        from recommender.engine import als
        from recommender.engine.interactions import Interactions

        tiny = Interactions.from_arrays([0, 0, 1, 2], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0])
        for solver in ("cholesky", "cg"):  # load (or build) numba's cache of both kernels
            als.ExplicitALS(factors=factors, iterations=1, solver=solver).fit(tiny)
        est = _explicit(model, factors, iterations)
        als.als_half_step = first.wrap(als.als_half_step)  # type: ignore[assignment]
        with timed() as fit:
            est.fit(data)
        extra["solver"] = est.resolved_solver(data.nnz)
        if extra["solver"] == "cg":
            extra["solver"] += f" ({est.cg_steps} steps)"
        extra["track_loss"] = bool(est.track_loss)
        if est.loss_history_:
            extra["final_loss"] = est.loss_history_[-1]
    else:
        import implicit
        from implicit.cpu.als import AlternatingLeastSquares

        class MarkedALS(AlternatingLeastSquares):  # type: ignore[misc]
            @property
            def solver(self) -> Callable[..., Any]:
                return first.wrap(super().solver)

        # Ratings as confidences; implicit wants float32 CSR users x items.
        user_items = data.csr.astype(np.float32)
        als_model = MarkedALS(
            factors=factors, iterations=iterations, calculate_training_loss=False, random_state=0
        )
        reported: list[float] = []
        with timed() as fit:
            als_model.fit(
                user_items, show_progress=False, callback=lambda _it, seconds, _loss: reported.append(seconds)
            )
        extra["solver"] = f"implicit {implicit.__version__} CG"
        # implicit's own per-iteration clock, a check on ours.
        extra["implicit_reported_s_per_iteration"] = float(np.mean(reported))
    end_wall, end_cpu = time.perf_counter(), cpu_seconds()
    return {
        "model": model,
        "scale": scale,
        "nnz": data.nnz,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "seconds_total": fit.wall,
        "seconds_per_iteration": (end_wall - first.wall) / iterations,
        "cpu_seconds_per_iteration": (end_cpu - first.cpu) / iterations,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_data_mb": rss_data,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        **extra,
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| ratings | model | solver | wall s / iteration | CPU s / iteration | ratio to implicit, wall | "
        "ratio to implicit, CPU | peak RSS (MB) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    yardstick = {r["scale"]: r for r in rows if r["model"] == YARDSTICK and "error" not in r}
    for r in rows:
        size = f"{r['nnz'] / 1e6:.1f}M" if "nnz" in r else f"scale {r['scale']:g}"
        if "error" in r:
            lines.append(f"| {size} | {r['model']} | {r['error']} | | | | | |")
            continue
        peer = yardstick.get(r["scale"])
        wall, cpu = r["seconds_per_iteration"], r["cpu_seconds_per_iteration"]
        wall_ratio = f"{wall / peer['seconds_per_iteration']:.2f}" if peer else "n/a"
        cpu_ratio = f"{cpu / peer['cpu_seconds_per_iteration']:.2f}" if peer else "n/a"
        solver = r["solver"] + (", track_loss" if r.get("track_loss") else "")
        lines.append(
            f"| {size} | {r['model']} | {solver} | {wall:.3f} | {cpu:.3f} | {wall_ratio} | {cpu_ratio} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def median_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scale, model): the median wall and the median CPU time of its successful runs."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r["scale"], r["model"]) for r in runs))
    for scale, model in keys:
        same = [r for r in runs if r["scale"] == scale and r["model"] == model]
        ok = [r for r in same if "error" not in r]
        if not ok:
            rows.append(same[-1])
            continue
        row = dict(ok[0])
        for key in ("seconds_per_iteration", "cpu_seconds_per_iteration", "peak_rss_mb"):
            row[key] = float(np.median([r[key] for r in ok]))
        row["runs"] = len(ok)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="0.25", help="comma-separated scales of bench/synthetic.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds of all models; the table shows medians"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print_result(worker(args.worker, float(args.scale), args.seed, args.factors, args.iterations))
        return

    scales = [float(s) for s in args.scale.split(",")]
    for scale in scales:
        synthetic.load(scale, args.seed)  # build the cache once, outside the timed children
    # implicit's docs: its own threads, OpenBLAS single-threaded (it warns otherwise).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    load_start = load_average()
    runs: list[dict[str, Any]] = []
    for scale in scales:
        for _ in range(args.repeats):  # rounds of all models, so a load spike hits one round of each
            for model in args.models.split(","):
                command = [
                    sys.executable, "-m", "bench.bench_als", "--worker", model, "--scale", str(scale),
                    "--seed", str(args.seed), "--factors", str(args.factors),
                    "--iterations", str(args.iterations),
                ]  # fmt: skip
                try:
                    runs.append(run_child(command, env=env, timeout=args.timeout))
                except subprocess.TimeoutExpired:
                    runs.append(
                        {"model": model, "scale": scale, "error": f"timed out after {args.timeout:.0f} s"}
                    )
                except RuntimeError as exc:
                    runs.append({"model": model, "scale": scale, "error": str(exc).strip().splitlines()[-1]})
                print(runs[-1], file=sys.stderr, flush=True)
    rows = median_rows(runs)
    load_end = load_average()

    summary = (
        f"Data: `bench/synthetic.py` (ML-20M-shaped; scale 1 = 20M ratings), seed {args.seed}; "
        f"factors={args.factors}, iterations={args.iterations}; each model in its own process, one after "
        f"the other, {args.repeats} round(s) of all models per scale, medians shown; seconds per iteration exclude setup (timed from the first solver call to the end of fit). implicit runs "
        f"with OPENBLAS_NUM_THREADS=1. 1-minute load average {load_start:.1f} at the start and "
        f"{load_end:.1f} at the end (2 cores: above ~2, other jobs shared the CPUs, so only the ratios "
        f"measured side by side mean much; the CPU ratio, user + system time of all threads, moves less "
        f"with the load than the wall one)."
    )
    table = markdown_table(rows)
    print(f"\n{summary}\n\n{table}")
    if not args.no_write:
        write_section(
            "bench.bench_als", HEADING, f"{summary}\n\n{table}", command=command_line("bench.bench_als")
        )


if __name__ == "__main__":
    main()
