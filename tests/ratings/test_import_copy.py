"""The importer's PostgreSQL bulk path (``ratings.bulk_load``): COPY, set-based merge, rebuilt indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from catalog.models import Item
from ratings import bulk_load, importing
from ratings.importing import movielens_import
from ratings.models import Rating, UserRatingStamp
from ratings.services import item_aggregates_recompute
from tests.factories import ItemFactory, RatingFactory, UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's"),
]

User = get_user_model()

USERS, ITEMS = 40, 30


def dataset_rows(seed: int = 0, users: int = USERS, items: int = ITEMS) -> list[tuple[int, int, float, int]]:
    """About half of all (user, item) pairs, in a shuffled order, with half-star scores."""
    rng = np.random.default_rng(seed)
    pairs = [(u, i) for u in range(1, users + 1) for i in range(1, items + 1) if rng.random() < 0.5]
    order = rng.permutation(len(pairs))
    scores = rng.integers(1, 11, size=len(pairs)) / 2
    return [(*pairs[k], float(scores[k]), 964_000_000 + int(k)) for k in order]


def write_dataset(folder: Path, rows: list[tuple[int, int, float, int]], items: int = ITEMS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    movies = "movieId,title,genres\n" + "".join(
        f"{i},Film {i} ({1990 + i % 30}),Drama\n" for i in range(1, items + 1)
    )
    (folder / "movies.csv").write_text(movies, encoding="utf-8")
    ratings = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{s},{t}\n" for u, i, s, t in rows)
    (folder / "ratings.csv").write_text(ratings, encoding="utf-8")
    return folder


def stored() -> dict[tuple[str, str], tuple[float, Any, Any]]:
    return {
        (username, ext): (score, created, updated)
        for username, ext, score, created, updated in Rating.objects.values_list(
            "user__username", "item__external_id", "score", "created_at", "updated_at"
        )
    }


def schema() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """ratings_rating's indexes and constraints as the catalog defines them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
            [Rating._meta.db_table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "ORDER BY conname",
            [Rating._meta.db_table],
        )
        constraints = cursor.fetchall()
    return indexes, constraints


def aggregates() -> list[tuple[Any, ...]]:
    return list(
        Item.objects.order_by("pk").values_list(
            "pk", "rating_count", "rating_sum", "rating_mean", "rating_damped_mean"
        )
    )


def test_a_fresh_import_rebuilds_every_index_and_constraint(tmp_path: Path) -> None:
    before = schema()
    rows = dataset_rows()
    summary = movielens_import(path=write_dataset(tmp_path, rows))
    assert (summary.users_created, summary.items_created) == (USERS, ITEMS)
    assert (summary.ratings_created, summary.ratings_updated, summary.ratings_unchanged) == (len(rows), 0, 0)
    assert schema() == before
    assert {"indexes", "copy", "analyze", "aggregates", "stamps"} <= summary.stage_seconds.keys()
    # The planner knows the catalog's size too (reltuples is -1 until a table is analyzed).
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Item._meta.db_table])
        assert cursor.fetchone()[0] == ITEMS
    got = stored()
    assert len(got) == len(rows)
    for u, i, score, ts in rows:
        assert got[(f"ml{u}", str(i))][0] == score
        assert got[(f"ml{u}", str(i))][1].timestamp() == ts


def test_the_rebuilt_constraints_hold(tmp_path: Path) -> None:
    movielens_import(path=write_dataset(tmp_path, dataset_rows()))
    rating = Rating.objects.first()
    assert rating is not None
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            user_id=rating.user_id, item_id=rating.item_id, score=1.0, created_at=rating.created_at,
            updated_at=rating.updated_at,
        )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            user_id=rating.user_id, item_id=10**9, score=1.0, created_at=rating.created_at,
            updated_at=rating.updated_at,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_aggregates_match_a_recompute(tmp_path: Path) -> None:
    movielens_import(path=write_dataset(tmp_path, dataset_rows()))
    imported = aggregates()
    assert item_aggregates_recompute() == 0
    assert aggregates() == imported
    counts = dict(Item.objects.values_list("external_id", "rating_count"))
    expected: dict[str, int] = {}
    for _, i, _, _ in dataset_rows():
        expected[str(i)] = expected.get(str(i), 0) + 1
    assert counts == expected


def test_a_reimport_of_unchanged_data_writes_nothing(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, dataset_rows())
    movielens_import(path=folder)
    ratings_before, aggregates_before = stored(), aggregates()
    stamps_before = dict(UserRatingStamp.objects.values_list("user_id", "changed_at"))
    summary = movielens_import(path=folder)
    assert (summary.users_created, summary.items_created, summary.items_updated) == (0, 0, 0)
    assert (summary.ratings_created, summary.ratings_updated) == (0, 0)
    assert summary.ratings_unchanged == len(ratings_before)
    assert stored() == ratings_before  # updated_at included
    assert aggregates() == aggregates_before
    assert dict(UserRatingStamp.objects.values_list("user_id", "changed_at")) == stamps_before


def test_changed_scores_new_users_and_items_are_merged(tmp_path: Path) -> None:
    rows = dataset_rows()
    movielens_import(path=write_dataset(tmp_path / "a", rows, items=ITEMS))
    before = stored()
    stamps_before = dict(UserRatingStamp.objects.values_list("user__username", "changed_at"))
    changed = [(u, i, 5.5 - s, ts + 1) for u, i, s, ts in rows[:10] if s != 2.75]  # a different score
    added = [(USERS + 1, ITEMS + 1, 4.5, 1_000_000_000), (1, ITEMS + 1, 2.0, 1_000_000_001)]
    second = changed + rows[10:] + added
    summary = movielens_import(path=write_dataset(tmp_path / "b", second, items=ITEMS + 1))
    assert (summary.users_created, summary.items_created) == (1, 1)
    assert (summary.ratings_created, summary.ratings_updated) == (2, len(changed))
    assert summary.ratings_unchanged == len(rows) - len(changed)
    after = stored()
    for u, i, score, _ in changed:
        old_score, created, updated = before[(f"ml{u}", str(i))]
        assert after[(f"ml{u}", str(i))][0] == score != old_score
        assert after[(f"ml{u}", str(i))][1] == created  # kept
        assert updated < after[(f"ml{u}", str(i))][2]  # dated now
    for u, i, _, _ in rows[10:]:
        assert after[(f"ml{u}", str(i))] == before[(f"ml{u}", str(i))]
    assert after[(f"ml{USERS + 1}", str(ITEMS + 1))][0] == 4.5
    assert after[("ml1", str(ITEMS + 1))][0] == 2.0
    # Aggregates are right, and only the users whose ratings changed are stamped.
    imported = aggregates()
    assert item_aggregates_recompute() == 0
    assert aggregates() == imported
    stamps = dict(UserRatingStamp.objects.values_list("user__username", "changed_at"))
    touched = {f"ml{u}" for u, *_ in changed + added}
    assert {name for name, at in stamps.items() if at != stamps_before.get(name)} == touched


def test_many_new_pairs_go_in_under_rebuilt_indexes(tmp_path: Path) -> None:
    alice = UserFactory(username="alice")
    own = RatingFactory(user=alice, item=ItemFactory(source="tastebase", external_id="1"), score=2.5)
    before = schema()
    rows = dataset_rows()
    summary = movielens_import(path=write_dataset(tmp_path, rows))
    assert summary.ratings_created == len(rows) > bulk_load.REBUILD_SHARE
    assert {"diff", "indexes"} <= summary.stage_seconds.keys()
    assert schema() == before
    own.refresh_from_db()
    assert own.score == 2.5
    assert Rating.objects.count() == len(rows) + 1
    assert item_aggregates_recompute() == 0


def test_a_bad_line_in_the_middle_applies_nothing(tmp_path: Path) -> None:
    rows = dataset_rows()
    movielens_import(path=write_dataset(tmp_path / "good", rows))
    before, aggregates_before = stored(), aggregates()
    users_before = User.objects.count()
    middle = len(rows) // 2
    # Every other row changes its score, and new users come before and after the bad row.
    lines = [(u, i, 5.5 - s if k % 2 else s, ts) for k, (u, i, s, ts) in enumerate(rows)]
    folder = write_dataset(tmp_path / "bad", [(USERS + 5, 1, 3.0, 1), *lines, (USERS + 6, 1, 3.0, 1)])
    text = (folder / "ratings.csv").read_text().splitlines(keepends=True)
    bad_line = middle + 2  # the header is line 1, the new user line 2
    text[bad_line - 1] = "3,2,4.25,964000000\n"
    (folder / "ratings.csv").write_text("".join(text))
    with pytest.raises(CommandError) as info:
        call_command("import_movielens", str(folder))
    assert f"ratings.csv:{bad_line}: rating 4.25 is not a multiple of 0.5" in str(info.value)
    assert "Nothing was imported." in str(info.value)
    assert stored() == before
    assert aggregates() == aggregates_before
    assert User.objects.count() == users_before


def test_a_failure_after_the_indexes_were_dropped_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**kwargs: Any) -> int:
        raise RuntimeError("disk full")

    before = schema()
    monkeypatch.setattr(importing, "item_aggregates_recompute", explode)
    with pytest.raises(RuntimeError):
        movielens_import(path=write_dataset(tmp_path, dataset_rows()))
    assert schema() == before
    assert Rating.objects.count() == 0
    assert not User.objects.filter(username__startswith="ml").exists()


def test_stored_ratings_are_compared_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = dataset_rows()
    movielens_import(path=write_dataset(tmp_path / "a", rows))
    monkeypatch.setattr(bulk_load, "STORED_CHUNK", 37)
    u, i, s, ts = rows[-1]
    summary = movielens_import(path=write_dataset(tmp_path / "b", [*rows[:-1], (u, i, 5.5 - s, ts)]))
    assert (summary.ratings_created, summary.ratings_updated) == (0, 1)
    assert summary.ratings_unchanged == len(rows) - 1
    assert Rating.objects.get(user__username=f"ml{u}", item__external_id=str(i)).score == 5.5 - s


@pytest.mark.parametrize(
    ("sql", "value_type", "expected"),
    [
        ("ARRAY[1, -2, 9007199254740993]::int8[]", ">i8", [1, -2, 9007199254740993]),
        ("ARRAY[0.5, 4.25, -1e300]::float8[]", ">f8", [0.5, 4.25, -1e300]),
        ("'{}'::int8[]", ">i8", []),
    ],
)
def test_binary_arrays_decode_to_their_values(sql: str, value_type: str, expected: list[float]) -> None:
    import psycopg

    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as raw:  # type: ignore[attr-defined]
        raw.execute(f"SELECT array_send({sql})", binary=True)
        (data,) = raw.fetchone() or (None,)
    assert bulk_load.binary_array_values(data, value_type).tolist() == expected


def test_the_diff_finds_stored_pairs_whatever_their_stored_order(tmp_path: Path) -> None:
    rows = dataset_rows()
    movielens_import(path=write_dataset(tmp_path / "a", rows))
    # Updating every other row moves it to the end of the heap: the stored order is no longer key order.
    changed = [(u, i, 5.5 - s if k % 2 else s, ts) for k, (u, i, s, ts) in enumerate(rows)]
    summary = movielens_import(path=write_dataset(tmp_path / "b", changed))
    assert (summary.ratings_created, summary.ratings_updated) == (0, len(rows) // 2)
    summary = movielens_import(path=write_dataset(tmp_path / "c", list(reversed(changed))))
    assert (summary.ratings_created, summary.ratings_updated, summary.ratings_unchanged) == (0, 0, len(rows))
