"""A request's numpy work runs on one BLAS thread (recommender.serving.one_blas_thread): on a
busy server OpenBLAS's threads wait for each other and a catalog-wide product took 50x longer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from recommender import selectors, serving
from recommender.engine.tables import FactorTables
from recommender.serving import one_blas_thread
from tests.recommender.test_pipeline import train


@pytest.fixture(autouse=True)
def _libraries_loaded_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serving module finds the BLAS libraries once per process; other tests may have
    loaded another (scipy's own) since: let it find them again, as :func:`blas_threads` does."""
    monkeypatch.setattr(serving, "_blas", None)


def blas_threads() -> list[int]:
    return [lib.num_threads for lib in ThreadpoolController().select(user_api="blas").lib_controllers]


def recording(calls: list[list[int]], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(blas_threads())
        return function(*args, **kwargs)

    return wrapped


def test_one_blas_thread_gives_the_same_scores_bit_for_bit_and_restores_the_pool() -> None:
    rng = np.random.default_rng(0)
    # As large as the ML-20M-shaped catalog: large enough for OpenBLAS to split it over threads.
    tables = FactorTables(
        item_ids=np.arange(26_744),
        item_vectors=rng.standard_normal((26_744, 64)).astype(np.float32),
        item_bias=rng.standard_normal(26_744).astype(np.float32),
        global_mean=3.5,
        rating_scale=(0.5, 5.0),
    )
    users = rng.standard_normal((20, 64)).astype(np.float32)
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        before = blas_threads()
        pooled = [tables.scores(w, 0.1) for w in users]
        with one_blas_thread():
            inside = blas_threads()
            single = [tables.scores(w, 0.1) for w in users]
        assert blas_threads() == before
    assert inside and set(inside) == {1}
    for a, b in zip(pooled, single, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.django_db(transaction=True)
def test_a_recommendation_list_and_a_similar_list_are_computed_on_one_blas_thread(
    planted: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    train("ranking")  # no similarity version: similar items come from the ranking factors
    calls: list[list[int]] = []
    monkeypatch.setattr(selectors, "rank_items", recording(calls, selectors.rank_items))
    fan = planted.user("action")
    with ThreadpoolController().limit(limits=2, user_api="blas"):
        before = blas_threads()
        recs = selectors.recommendations_for_user(user=fan, limit=5)
        similar = selectors.similar_items(item=planted.items[3], limit=5, user=fan)
        after = blas_threads()
    assert {r.source for r in recs} == {"ranking"} and len(similar) == 5
    assert len(calls) == 2 and all(set(threads) == {1} for threads in calls)
    assert after == before
