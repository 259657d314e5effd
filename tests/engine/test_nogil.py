"""Long-running kernels release the GIL.

A training run renews its lock from a heartbeat thread; if a kernel call held
the GIL for a minute (ItemKNN's neighbour search on 20M ratings), the
heartbeat could not run and the lock would lapse mid-run. Each kernel below is
run in a worker thread on data sized so one call takes a good fraction of a
second, while the main thread ticks: with the GIL held, the ticks would stop
for the whole call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.engine import Interactions
from recommender.engine.als import als_half_step, chunk_bounds
from recommender.engine.implicit_als import cg_least_squares_step, exact_rows_step
from recommender.engine.similarity import top_k_neighbors


def _ratings(n_users: int, n_items: int, density: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    data = Interactions.from_arrays(users, items, rng.integers(1, 6, users.shape[0]).astype(np.float32))
    return data.csr


def _als(size: int, solver: str = "cholesky") -> Callable[[], object]:
    csr = _ratings(size, 400, 0.3)
    k = 64
    v = np.random.default_rng(1).normal(size=(400, k)).astype(np.float32)
    w = np.zeros((csr.shape[0], k), np.float32)
    b, c = np.zeros(csr.shape[0], np.float32), np.zeros(400, np.float32)
    bounds = chunk_bounds(csr.indptr, k, solver=solver)
    objective = np.empty(csr.shape[0])
    return lambda: als_half_step(
        csr.indptr, csr.indices, csr.data, 3.0, v, c, w, b,
        regularization=0.1, solver=solver, bounds=bounds, row_objective=objective,
    )  # fmt: skip


def _als_cg(size: int) -> Callable[[], object]:
    return _als(size, "cg")


def _implicit_cg(size: int) -> Callable[[], object]:
    csr = _ratings(size, 400, 0.3)
    k = 64
    y = np.random.default_rng(1).normal(size=(400, k)).astype(np.float32)
    x = np.zeros((csr.shape[0], k), np.float32)
    yty = (y.T @ y + np.eye(k)).astype(np.float32)
    return lambda: cg_least_squares_step(csr.indptr, csr.indices, csr.data + 1, x, y, yty, 3)


def _implicit_exact(size: int) -> Callable[[], object]:
    csr = _ratings(size, 400, 0.3)
    k = 64
    y = np.random.default_rng(1).normal(size=(400, k)).astype(np.float32)
    x = np.zeros((csr.shape[0], k), np.float32)
    yty = y.astype(np.float64).T @ y + np.eye(k)
    return lambda: exact_rows_step(csr.indptr, csr.indices, csr.data + 1, x, y, yty)


def _neighbours(size: int) -> Callable[[], object]:
    csr = _ratings(size, 600, 0.2)
    return lambda: top_k_neighbors(csr, "cosine", 50)


@pytest.mark.parametrize(
    ("make", "small", "large"),
    [
        (_als, 50, 8000),
        (_als_cg, 50, 40000),
        (_implicit_cg, 50, 40000),
        (_implicit_exact, 50, 8000),
        (_neighbours, 60, 6000),
    ],
    ids=[
        "explicit_als_half_step",
        "explicit_als_cg_half_step",
        "implicit_cg_step",
        "implicit_exact_step",
        "top_k_neighbors",
    ],
)
def test_kernel_lets_other_threads_run(
    make: Callable[[int], Callable[[], None]], small: int, large: int
) -> None:
    make(small)()  # compile (numba holds the GIL while compiling) before measuring
    call = make(large)
    started = time.perf_counter()
    call()
    per_call = time.perf_counter() - started
    assert per_call > 0.03, f"one kernel call is too short ({per_call:.3f}s) to tell anything"
    repeats = max(3, int(0.6 / per_call))

    def calls() -> None:
        for _ in range(repeats):
            call()

    ticks: list[float] = []
    worker = threading.Thread(target=calls)
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    gaps = np.diff(ticks) if len(ticks) > 1 else np.array([per_call * repeats])
    # With the GIL held the main thread would be stuck for a whole call each time: about
    # one tick per call, every gap as long as a call. Not the single longest gap: with the
    # suite on two processes over two cores, the scheduler alone can pause a thread for a
    # good part of a call now and then.
    assert len(ticks) > 10 * repeats, (len(ticks), repeats, per_call)
    assert float(np.median(gaps)) < per_call / 10, (float(np.median(gaps)), per_call)
    assert np.mean(gaps > per_call / 2) < 0.05, (int(np.sum(gaps > per_call / 2)), len(gaps))
