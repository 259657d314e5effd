"""ratings.importing and the import_movielens / load_demo_data commands (SQLite and PostgreSQL)."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Genre, Item
from ratings import importing
from ratings.importing import ImportSummary, movielens_import
from ratings.models import Rating, UserRatingStamp
from ratings.services import item_aggregates_recompute
from tests.factories import ItemFactory, RatingFactory, UserFactory
from tests.ratings.test_movielens_parsing import (
    MOVIES_CSV,
    RATINGS_CSV,
    write_100k_dataset,
    write_csv_dataset,
    write_dat_dataset,
    write_recbole_dataset,
)

pytestmark = pytest.mark.django_db

User = get_user_model()


def counts() -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        Item.objects.count(),
        Genre.objects.count(),
        Rating.objects.count(),
        Item.genres.through.objects.count(),
    )


def score_of(username: str, external_id: str) -> float:
    return Rating.objects.get(user__username=username, item__external_id=external_id).score


def test_csv_import_creates_everything(tmp_path: Path) -> None:
    summary = movielens_import(path=write_csv_dataset(tmp_path))
    assert (summary.users_created, summary.items_created, summary.genres_created) == (2, 3, 7)
    assert (summary.ratings_created, summary.ratings_updated, summary.ratings_unchanged) == (4, 0, 0)
    assert str(summary) == (
        "users: 2 created; items: 3 created, 0 updated; genres: 7 created; ratings: 4 created, 0 updated, 0 unchanged"
    )
    toy = Item.objects.get(source="movielens", external_id="1")
    assert (toy.title, toy.year) == ("Toy Story", 1995)
    assert sorted(toy.genres.values_list("name", flat=True)) == [
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    ]
    assert (toy.rating_count, toy.rating_sum, toy.rating_mean) == (2, 4.5, 2.25)
    unrated = Item.objects.get(source="movielens", external_id="3")
    assert unrated.genres.count() == 0
    user = User.objects.get(username="ml1")
    assert not user.has_usable_password()
    rating = Rating.objects.get(user=user, item=toy)
    assert rating.created_at == rating.updated_at == datetime.fromtimestamp(964982703, tz=UTC)
    # The set-based recompute agrees with the service's.
    assert item_aggregates_recompute() == 0
    # Every imported user's ratings are stamped as changed now, so a training run
    # whose export started before the import folds them in when it activates.
    stamps = UserRatingStamp.objects.filter(user__username__in=["ml1", "ml2"])
    assert stamps.count() == 2 and all(s.changed_at > rating.updated_at for s in stamps)


@pytest.mark.parametrize(
    ("writer", "users", "items", "ratings", "genres"),
    [
        (write_dat_dataset, 2, 2, 3, 4),
        (write_100k_dataset, 2, 2, 3, 5),
        (write_recbole_dataset, 3, 3, 3, 7),
    ],
)
def test_other_layouts(
    tmp_path: Path, writer: Any, users: int, items: int, ratings: int, genres: int
) -> None:
    summary = movielens_import(path=writer(tmp_path / "data"))
    assert (summary.users_created, summary.items_created, summary.ratings_created) == (users, items, ratings)
    assert summary.genres_created == genres
    assert Rating.objects.count() == ratings


def test_recbole_genres_are_whole_names(tmp_path: Path) -> None:
    movielens_import(path=write_recbole_dataset(tmp_path))
    toy = Item.objects.get(source="movielens", external_id="1")
    assert sorted(toy.genres.values_list("name", flat=True)) == ["Animation", "Children's", "Comedy"]


def test_zip_with_subfolder(tmp_path: Path) -> None:
    folder = write_csv_dataset(tmp_path / "src")
    archive = tmp_path / "ml.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("movies.csv", "ratings.csv"):
            zf.write(folder / name, f"ml-latest-small/{name}")
    assert movielens_import(path=archive).ratings_created == 4


def test_second_import_changes_nothing(tmp_path: Path) -> None:
    folder = write_csv_dataset(tmp_path)
    movielens_import(path=folder)
    before = counts()
    summary = movielens_import(path=folder)
    assert summary == ImportSummary(format="ml-latest", ratings_unchanged=4, seconds=summary.seconds)
    assert counts() == before


def test_reimport_updates_changed_scores_titles_and_genres(tmp_path: Path) -> None:
    movielens_import(path=write_csv_dataset(tmp_path / "a"))
    ratings = RATINGS_CSV.replace("2,1,0.5,964982224", "2,1,4.0,964999999")
    movies = MOVIES_CSV.replace("Toy Story (1995),Adventure|", "Toy Story! (1996),Western|")
    summary = movielens_import(path=write_csv_dataset(tmp_path / "b", ratings=ratings, movies=movies))
    assert (summary.ratings_created, summary.ratings_updated, summary.ratings_unchanged) == (0, 1, 3)
    assert (summary.items_created, summary.items_updated, summary.genres_created) == (0, 1, 1)
    assert score_of("ml2", "1") == 4.0
    toy = Item.objects.get(source="movielens", external_id="1")
    assert (toy.title, toy.year, toy.rating_count, toy.rating_mean) == ("Toy Story!", 1996, 2, 4.0)
    assert "Western" in toy.genres.values_list("name", flat=True)
    assert "Adventure" not in toy.genres.values_list("name", flat=True)
    rating = Rating.objects.get(user__username="ml2", item=toy)
    assert rating.created_at == datetime.fromtimestamp(964982224, tz=UTC)  # kept
    assert rating.updated_at > rating.created_at  # the change is dated now


def test_existing_users_and_other_data_are_left_alone(tmp_path: Path) -> None:
    alice = UserFactory(username="alice")
    own = RatingFactory(user=alice, item=ItemFactory(source="tastebase", external_id="1"), score=2.5)
    existing_ml1 = UserFactory(username="ml1")
    summary = movielens_import(path=write_csv_dataset(tmp_path))
    assert summary.users_created == 1
    assert Rating.objects.filter(user=existing_ml1).count() == 2
    own.refresh_from_db()
    assert own.score == 2.5


def test_duplicate_pairs_in_file_last_wins(tmp_path: Path) -> None:
    summary = movielens_import(path=write_csv_dataset(tmp_path, ratings=RATINGS_CSV + "1,1,1.5,964990000\n"))
    assert summary.duplicates == 1
    assert summary.ratings_created == 4
    assert score_of("ml1", "1") == 1.5


BAD_FILES = [
    ("userId,movieId,rating,timestamp\n1,1,3.0,1\n1,999,4.0,1\n", "ratings.csv:3: movie 999 is not in movies.csv"),
    ("userId,movieId,rating,timestamp\n1,1,3.0,1\n1,2,3.3,1\n", "ratings.csv:3: rating 3.3 is not a multiple of 0.5"),
    ("userId,movieId,rating,timestamp\n1,1,3.0,1\n1,2,7.0,1\n", "ratings.csv:3: rating 7.0 is outside 0.5–5.0"),
    ("", "ratings.csv: the file is empty"),
    ("userId,movieId,rating,timestamp\n1,1,3.0\n", "ratings.csv:2: expected 4 columns (userId,movieId,rating,timestamp), found 3"),
    (
        "userId;movieId;rating;timestamp\n1;1;3.0;1\n",
        "ratings.csv:1: expected comma-separated columns (userId,movieId,rating,timestamp), found semicolon-separated",
    ),
    ("userId,movieId,rating,timestamp\n1,1,3.0,1\n1,2,abc,1\n", "ratings.csv:3: rating 'abc' is not a number"),
    ("userId,movieId,timestamp\n1,1,1\n", "ratings.csv:1: missing required column(s) rating; the header is userId,movieId,timestamp"),
]  # fmt: skip


@pytest.mark.parametrize(("ratings", "message"), BAD_FILES)
def test_bad_input_changes_nothing(tmp_path: Path, ratings: str, message: str) -> None:
    movielens_import(path=write_csv_dataset(tmp_path / "good"))
    before = counts()
    # The bad file also changes a score (ml1 rated movie 1 with 4.0, now 3.0) and
    # adds a user after the bad line.
    bad = ratings + "77,1,3.0,1\n" if ratings else ratings
    with pytest.raises(CommandError) as info:
        call_command("import_movielens", str(write_csv_dataset(tmp_path / "bad", ratings=bad)))
    assert message in str(info.value)
    assert counts() == before
    assert score_of("ml1", "1") == 4.0


def test_failure_while_writing_rolls_everything_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(importing, "item_aggregates_recompute", explode)
    before = counts()
    with pytest.raises(RuntimeError):
        movielens_import(path=write_csv_dataset(tmp_path))
    assert counts() == before


def test_command_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("import_movielens", str(write_csv_dataset(tmp_path, ratings=RATINGS_CSV + "1,1,1.5,9\n")))
    out = capsys.readouterr().out
    assert "users: 2 created; items: 3 created, 0 updated; genres: 7 created; " in out
    assert "ratings: 4 created, 0 updated, 0 unchanged" in out
    assert "1 rows rated a (user, item) pair again" in out


def test_command_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no MovieLens dataset found"):
        call_command("import_movielens", str(tmp_path))


def test_load_demo_data_imports_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ratings.management.commands import load_demo_data

    monkeypatch.setattr(load_demo_data, "fetch_ml100k", lambda: write_recbole_dataset(tmp_path))
    monkeypatch.setattr(load_demo_data, "ML100K_RATINGS", 3)
    monkeypatch.setattr(load_demo_data, "ML100K_ITEMS", 3)
    call_command("load_demo_data")
    assert "ratings: 3 created" in capsys.readouterr().out
    call_command("load_demo_data")
    assert "already loaded" in capsys.readouterr().out
    assert Rating.objects.count() == 3
