"""The pipeline's 20M-scale paths: one export shared by the kinds of a run, the refit
started from the holdout fit, and tables written by binary COPY (bit-exact round trip)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from ratings.models import Rating
from recommender import export as export_module
from recommender.engine.tables import FactorTables, NeighborTables
from recommender.export import ratings_export, ratings_export_shared
from recommender.models import ItemFactor, ItemNeighbor, ModelVersion, UserFactor, vector_from_bytes
from recommender.services import training
from recommender.services.persistence import version_tables_persist

from .test_pipeline import FAST, train

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts reads of the ratings table."""
    counted: list[int] = []
    original = export_module._ratings_export

    def counting() -> Any:
        counted.append(1)
        return original()

    monkeypatch.setattr(export_module, "_ratings_export", counting)
    return counted


def test_the_kinds_of_one_run_read_the_ratings_once(planted, reads: list[int]) -> None:  # type: ignore[no-untyped-def]
    with ratings_export_shared():
        rating = train("rating")
        ranking = train("ranking")
    assert len(reads) == 1
    assert rating.exported_at == ranking.exported_at  # when the one read began, for activation's fold-in
    assert rating.data_watermark == ranking.data_watermark
    assert rating.n_ratings == ranking.n_ratings == Rating.objects.count()


def test_the_kinds_of_one_run_share_one_holdout_split(planted, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    splits: list[int] = []
    original = training.per_user_split

    def counting(data: Any, **kwargs: Any) -> Any:
        splits.append(data.nnz)  # not the data itself: the cache must be free to let it go
        return original(data, **kwargs)

    monkeypatch.setattr(training, "per_user_split", counting)
    with ratings_export_shared():
        rating = train("rating")
        ranking = train("ranking")
    assert len(splits) == 1
    assert rating.evaluation["holdout"] == ranking.evaluation["holdout"]
    # Once the shared export is gone, so is its split: the next run splits its own export.
    import gc

    gc.collect()
    assert training._last_holdout is None
    train("ranking")
    assert len(splits) == 2


def test_outside_a_shared_block_each_export_reads_the_table(planted, reads: list[int]) -> None:  # type: ignore[no-untyped-def]
    with ratings_export_shared():
        ratings_export()
    ratings_export()
    ratings_export()
    assert len(reads) == 3


def test_retrain_of_every_kind_reads_the_ratings_once(planted, reads: list[int], settings) -> None:  # type: ignore[no-untyped-def]
    settings.TASTEBASE_DEFAULT_PARAMS = {
        "rating": FAST[settings.TASTEBASE_DEFAULT_ALGORITHMS["rating"]],
        "ranking": FAST["implicit_als"],
        "similarity": {"k": 10, "similarity": "jaccard"},
    }
    call_command("retrain", "--force")
    assert len(reads) == 1
    assert ModelVersion.objects.filter(status="active").count() == 3


def test_the_nightly_task_reads_the_ratings_once_for_the_three_kinds(
    planted, reads: list[int], settings
) -> None:  # type: ignore[no-untyped-def]
    from recommender.tasks import retrain_all

    settings.TASTEBASE_DEFAULT_PARAMS = {
        "rating": FAST[settings.TASTEBASE_DEFAULT_ALGORITHMS["rating"]],
        "ranking": FAST["implicit_als"],
        "similarity": {"k": 10, "similarity": "jaccard"},
    }
    results = retrain_all.apply().get()
    assert [r["status"] for r in results] == ["active", "active", "active"]
    assert len(reads) == 1


class _Recorder:
    """A model whose ``fit`` takes ``init``: records what it was started from."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def fit(self, data: Any, init: Any = None) -> _Recorder:
        self.calls.append((data, init))
        return self


def test_an_export_read_by_several_connections_is_the_ratings_table(  # type: ignore[no-untyped-def]
    planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a transaction, Postgres reads ranges of users on connections of their
    own, side by side; whatever the path, every rating comes back once, with its
    ``updated_at`` as Unix seconds."""
    from django.db import connection

    own_connection_reads: list[tuple[int, int]] = []
    original = export_module._read_chunk_on_own_connection

    def counting(table: str, start: int, stop: int) -> Any:
        own_connection_reads.append((start, stop))
        return original(table, start, stop)

    monkeypatch.setattr(export_module, "_read_chunk_on_own_connection", counting)
    monkeypatch.setattr(export_module, "PG_PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(export_module, "PG_CHUNK", 97)  # many ranges, some of them empty
    data, _ = ratings_export()
    if connection.vendor == "postgresql":
        assert len(own_connection_reads) >= 2
    users, items, scores = data.to_raw_arrays()
    assert data.timestamps is not None
    exported = sorted(
        zip(
            users.tolist(),
            items.tolist(),
            scores.astype(float).tolist(),
            data.timestamps.tolist(),
            strict=True,
        )
    )
    stored = sorted(
        (user, item, score, int(updated.timestamp()))
        for user, item, score, updated in Rating.objects.values_list(
            "user_id", "item_id", "score", "updated_at"
        )
    )
    assert exported == stored


def test_the_refit_starts_from_the_holdout_fit_when_the_model_takes_init() -> None:
    model, holdout = _Recorder(), object()
    training._refit(model, holdout, "all ratings")  # type: ignore[arg-type]
    assert model.calls == [("all ratings", holdout)]


def test_a_model_without_init_is_refit_from_scratch() -> None:
    class Plain:
        fitted: list[Any] = []

        def fit(self, data: Any) -> None:
            self.fitted.append(data)

    model = Plain()
    training._refit(model, object(), "all ratings")  # type: ignore[arg-type]
    assert model.fitted == ["all ratings"]


def test_factor_tables_are_stored_bit_for_bit(planted) -> None:  # type: ignore[no-untyped-def]
    users = np.array(sorted(set(Rating.objects.values_list("user_id", flat=True))))
    items = np.array(sorted(set(Rating.objects.values_list("item_id", flat=True))))
    rng = np.random.default_rng(3)
    tables = FactorTables(
        item_ids=items,
        item_vectors=rng.standard_normal((len(items), 5)).astype(np.float32),
        item_bias=rng.standard_normal(len(items)).astype(np.float32),
        global_mean=3.5,
        rating_scale=(0.5, 5.0),
        user_ids=users,
        user_vectors=rng.standard_normal((len(users), 5)).astype(np.float32),
        user_bias=rng.standard_normal(len(users)).astype(np.float32),
    )
    version = ModelVersion.objects.create(kind="rating", algorithm="explicit_als")
    version_tables_persist(version=version, tables=tables)
    stored = {row.user_id: row for row in UserFactor.objects.filter(version=version)}
    assert sorted(stored) == users.tolist()
    for position, user in enumerate(users.tolist()):
        np.testing.assert_array_equal(vector_from_bytes(stored[user].vector), tables.user_vectors[position])
        assert stored[user].bias == float(tables.user_bias[position])
        assert stored[user].updated_at is not None
    item_rows = {row.item_id: row for row in ItemFactor.objects.filter(version=version)}
    for position, item in enumerate(items.tolist()):
        np.testing.assert_array_equal(
            vector_from_bytes(item_rows[item].vector), tables.item_vectors[position]
        )
        assert item_rows[item].bias == float(tables.item_bias[position])


def test_neighbour_tables_are_stored_row_for_row(planted) -> None:  # type: ignore[no-untyped-def]
    items = np.array(sorted(set(Rating.objects.values_list("item_id", flat=True))))[:4]
    tables = NeighborTables(
        item_ids=np.repeat(items[:2], 2),
        neighbor_ids=np.array([items[1], items[2], items[0], items[3]]),
        scores=np.array([0.9, 0.25, 0.8, 0.125], dtype=np.float32),
        ranks=np.array([1, 2, 1, 2]),
    )
    version = ModelVersion.objects.create(kind="similarity", algorithm="item_knn")
    version_tables_persist(version=version, tables=tables)
    rows = sorted(
        ItemNeighbor.objects.filter(version=version).values_list("item_id", "neighbor_id", "score", "rank")
    )
    expected = sorted(
        zip(
            tables.item_ids.tolist(),
            tables.neighbor_ids.tolist(),
            tables.scores.astype(float).tolist(),
            tables.ranks.tolist(),
            strict=True,
        )
    )
    assert rows == expected


def test_deleting_an_item_or_a_version_deletes_its_neighbour_rows(planted) -> None:  # type: ignore[no-untyped-def]
    """ItemNeighbor has no foreign keys in the database (bulk writes): the ORM's cascade must do their work."""
    from catalog.models import Item

    items = np.array(sorted(set(Rating.objects.values_list("item_id", flat=True))))[:3]
    tables = NeighborTables(
        item_ids=np.array([items[0], items[0], items[1], items[2]]),
        neighbor_ids=np.array([items[1], items[2], items[2], items[0]]),
        scores=np.array([0.9, 0.5, 0.8, 0.7], dtype=np.float32),
        ranks=np.array([1, 2, 1, 1]),
    )
    kept, doomed = (ModelVersion.objects.create(kind="similarity", algorithm="item_knn") for _ in range(2))
    for version in (kept, doomed):
        version_tables_persist(version=version, tables=tables)
    Item.objects.filter(pk=items[2]).delete()  # a neighbour of items 0 and 1, and an item with neighbours
    assert sorted(ItemNeighbor.objects.filter(version=kept).values_list("item_id", "neighbor_id")) == [
        (items[0], items[1])
    ]
    doomed.delete()
    assert not ItemNeighbor.objects.filter(version_id=doomed.pk).exists()
    assert ItemNeighbor.objects.filter(version=kept).count() == 1
