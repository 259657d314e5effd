"""Fit time per epoch and test RMSE of the neural models on ML-100K, on CPU and (when present) CUDA.

Every model runs with its defaults (``device`` aside); nothing was tuned on the
test part. Split: the project's evaluation split (``bench_ml100k``): rows of
``ml100k_arrays()`` permuted by ``np.random.default_rng(42)``, the first 80 %
train, the rest test. Seconds per epoch = wall time of ``fit`` / epochs, so it
includes the set-up and what a fit does after its last epoch (EmbeddingMF's
exact user solve, AutoRec's encoding pass); ResidualMF counts the epochs of
both stages. A warm-up fit on a small subset first loads torch and numba's
kernels, so they are not timed. The numpy ``bias_baseline`` and ``sgd_mf``
rows give the scale of the RMSEs. Needs ``pip install -r requirements-neural.txt``.

    python -m bench.bench_neural
    python -m bench.bench_neural --models embedding_mf --epochs 2 --no-write   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from bench.common import command_line, load_average, ml100k_arrays, timed, write_section
from recommender.engine.interactions import Interactions
from recommender.engine.metrics import mae, rmse
from recommender.engine.registry import make_model

HEADING = "## Neural models (PyTorch, CPU)"
#: label -> (registry name, parameters besides the defaults)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "embedding_mf": ("embedding_mf", {}),
    "deep_mf": ("deep_mf", {}),
    "residual_mf": ("residual_mf", {}),
    "autorec variant=item (I-AutoRec)": ("autorec", {"variant": "item"}),
    "autorec variant=user (U-AutoRec)": ("autorec", {"variant": "user"}),
}
REFERENCES = ("bias_baseline", "sgd_mf")

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]


def project_split() -> tuple[Interactions, Triples]:
    """(train Interactions, test triples) of the 80/20 split seeded with 42."""
    users, items, ratings, timestamps = ml100k_arrays()
    p = np.random.default_rng(42).permutation(ratings.shape[0])
    tr, te = p[: int(0.8 * p.shape[0])], p[int(0.8 * p.shape[0]) :]
    train = Interactions.from_arrays(users[tr], items[tr], ratings[tr], timestamps[tr])
    return train, (users[te], items[te], ratings[te].astype(np.float64))


def with_epochs(name: str, params: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    if epochs is None:
        return dict(params)
    extra = {"mf_epochs": epochs} if name == "residual_mf" else {}
    return {**params, "epochs": epochs, **extra}


def epochs_of(model: Any) -> int:
    params = model.get_params()
    return int(params["epochs"]) + int(params.get("mf_epochs", 0))


def measure(name: str, params: dict[str, Any], train: Interactions, test: Triples) -> dict[str, Any]:
    model = make_model(name, params)
    with timed() as fit:
        model.fit(train)
    pred = model.predict(test[0], test[1])
    epochs = epochs_of(model) if "epochs" in model.get_params() else None
    return {
        "epochs": epochs,
        "fit_wall": fit.wall,
        "fit_cpu": fit.cpu,
        "per_epoch": fit.wall / epochs if epochs else None,
        "per_epoch_cpu": fit.cpu / epochs if epochs else None,
        "rmse": rmse(test[2], pred),
        "mae": mae(test[2], pred),
    }


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _per_epoch(result: dict[str, Any]) -> str:
    if result["per_epoch"] is None:
        return "–"
    return f"{result['per_epoch']:.2f} ({result['per_epoch_cpu']:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated labels or registry names")
    parser.add_argument("--epochs", type=int, help="override every model's epochs (smoke runs; say so)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    chosen = {label: spec for label, spec in MODELS.items() if label in wanted or spec[0] in wanted}
    if not chosen:
        parser.error(f"no model matches {args.models!r}; choose from: {', '.join(MODELS)}")

    import torch  # the extra this script measures; an ImportError here says what is missing

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    gpu = torch.cuda.get_device_name(0) if "cuda" in devices else None
    print(f"torch {torch.__version__}; " + (f"GPU: {gpu}" if gpu else "no GPU"), flush=True)
    train, test = project_split()
    warm = train.select(np.arange(train.nnz) % 40 == 0)  # ~2 000 ratings, same vocabularies
    load = load_average()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for label, (name, params) in chosen.items():
        row: dict[str, Any] = {"model": label}
        for device in devices:
            make_model(name, {**with_epochs(name, params, 1), "device": device}).fit(warm)  # not timed
            result = measure(name, {**with_epochs(name, params, args.epochs), "device": device}, train, test)
            row[device] = result
            print(f"{label} [{device}]: {result}", flush=True)
        rows.append(row)
    references = []
    for name in REFERENCES:
        make_model(name).fit(warm)
        references.append({"model": f"{name} (numpy, reference)", "cpu": measure(name, {}, train, test)})
        print(f"{name}: {references[-1]['cpu']}", flush=True)

    header = (
        "| model | epochs | CPU s/epoch, wall (CPU time) | CPU fit s, wall (CPU time) "
        "| test RMSE | test MAE |"
    )
    rule = "|---|---:|---:|---:|---:|---:|"
    if gpu:
        header += " CUDA s/epoch | CUDA fit s | CUDA test RMSE |"
        rule += "---:|---:|---:|"
    lines = [header, rule]
    for row in [*rows, *references]:
        c = row["cpu"]
        line = (
            f"| {row['model']} | {c['epochs'] or '–'} | "
            f"{_per_epoch(c)} | "
            f"{c['fit_wall']:.1f} ({c['fit_cpu']:.1f}) | {c['rmse']:.4f} | {c['mae']:.4f} |"
        )
        if gpu:
            g = row.get("cuda")
            line += (
                f" {_num(g['per_epoch'], 3)} | {g['fit_wall']:.1f} | {g['rmse']:.4f} |"
                if g
                else " – | – | – |"
            )
        lines.append(line)
    epochs_note = (
        f"**Epochs overridden to {args.epochs}** for every model (a short run, not the defaults)."
        if args.epochs is not None
        else "Every model at its defaults (see `recommender/engine/neural/`, chosen on a validation "
        "split inside the training part); nothing was tuned on the test part."
    )
    summary = "\n".join(
        [
            f"torch {torch.__version__} on {torch.get_num_threads()}-thread CPU (a fit uses 1 thread, "
            "`recommender/engine/neural/common.py`); "
            + (
                f"GPU: {gpu}."
                if gpu
                else "no GPU on this machine (`torch.cuda.is_available()` is False): CPU only."
            ),
            f"Whole run {time.perf_counter() - started:.0f} s; 1-minute load average {load:.1f} when it "
            "started (the machine is shared: wall times are upper bounds).",
            "",
            "* Data: MovieLens 100K, the project's 80/20 split (`np.random.default_rng(42)`"
            f" permutation): {train.nnz} training and {test[2].shape[0]} test ratings.",
            f"* {epochs_note}",
            "* s/epoch = time of `fit` / epochs (set-up and post-training passes included; ResidualMF: "
            "MF epochs + MLP epochs), wall clock and, in brackets, this process's CPU time (all threads), "
            "which other jobs on the machine do not inflate; torch and numba were warmed up on a small "
            "subset first.",
        ]
    )
    body = f"{summary}\n\n" + "\n".join(lines)
    print("\n" + body)
    if not args.no_write:
        write_section("bench.bench_neural", HEADING, body, command=command_line("bench.bench_neural"))


if __name__ == "__main__":
    sys.exit(main())
