"""One ratings-file reader: the importer, ``manage.py evaluate`` and the engine's ML-100K loader
all parse through ``recommender.engine.readers.parse_ratings`` (no database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ratings import importing, movielens
from recommender.engine import datasets, evaluation, readers
from tests.ratings.test_movielens_parsing import write_csv_dataset, write_recbole_dataset

ROOT = Path(__file__).resolve().parents[2]

# Rows that are wrong the same way in ml-latest's ratings.csv and evaluate's CSV
# (both comma-separated, four columns; only the header names differ).
BAD_ROWS = [
    ("1,1,4.0,1\n1,2,abc,1\n", ":3: rating 'abc' is not a number"),
    ("1,1,4.0,soon\n", ":2: timestamp 'soon' is not a number"),
    ("1,1,4.0,1\n\n  \n1,2,x,1\n", ":5: rating 'x' is not a number"),
    ("1,1,4.0,99999999999999\n", ":2: timestamp 99999999999999.0 is out of range"),
    ("1,1,4.0,1\n1,1,4.0,1,1\n", ":3: expected 4 "),
]


def importer_error(folder: Path, rows: str) -> str:
    path = write_csv_dataset(folder, ratings="userId,movieId,rating,timestamp\n" + rows)
    with pytest.raises(movielens.ImportFormatError) as info:
        importing.read_dataset(path)
    return str(info.value).removeprefix("ratings.csv")


def evaluate_error(path: Path, rows: str) -> str:
    path.write_text("user,item,rating,timestamp\n" + rows, encoding="utf-8")
    with pytest.raises(evaluation.RatingsFileError) as info:
        evaluation.read_ratings_csv(path)
    return str(info.value).removeprefix(str(path))


def engine_error(path: Path, rows: str) -> str:
    path.write_text("userId,movieId,rating,timestamp\n" + rows, encoding="utf-8")
    with pytest.raises(readers.RatingsFileError) as info:
        readers.read_ratings_file(path)
    return str(info.value).removeprefix(path.name)


@pytest.mark.parametrize(("rows", "expected"), BAD_ROWS)
def test_the_same_bad_row_gives_the_same_file_line_error_everywhere(
    tmp_path: Path, rows: str, expected: str
) -> None:
    from_importer = importer_error(tmp_path / "import", rows)
    from_evaluate = evaluate_error(tmp_path / "train.csv", rows)
    from_engine = engine_error(tmp_path / "ratings.csv", rows)
    assert from_importer.startswith(expected)
    assert from_evaluate.startswith(expected)
    assert from_engine == from_importer


def test_one_error_class_for_every_caller() -> None:
    assert movielens.ImportFormatError is readers.RatingsFileError
    assert evaluation.RatingsFileError is readers.RatingsFileError
    assert evaluation.read_ratings_csv is readers.read_ratings_csv
    assert issubclass(readers.RatingsFileError, ValueError)  # `manage.py evaluate` reports ValueErrors


def test_every_caller_parses_through_parse_ratings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = readers.parse_ratings

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(Path(name).name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(readers, "parse_ratings", spy)
    # The importer (with the app's scale) ...
    dataset = importing.read_dataset(write_csv_dataset(tmp_path / "import"))
    assert calls == ["ratings.csv"] and len(dataset.ratings) == 4
    # ... manage.py evaluate ...
    (tmp_path / "train.csv").write_text("user,item,rating\nu1,i1,4\n", encoding="utf-8")
    assert evaluation.read_ratings_csv(tmp_path / "train.csv").user_ids.tolist() == ["u1"]
    assert calls[-1] == "train.csv"
    # ... and the engine's ML-100K loader.
    users, *_ = datasets.load_ml100k_arrays(write_recbole_dataset(tmp_path / "ml-100k"))
    assert calls[-1] == "ml-100k.inter" and users.tolist() == [196, 186, 22]


def test_the_importer_applies_the_apps_score_scale(tmp_path: Path) -> None:
    from ratings.scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

    assert movielens.SCORE_SCALE == (MIN_SCORE, MAX_SCORE, SCORE_STEP)
    rows = "userId,movieId,rating,timestamp\n1,1,5.5,1\n"
    with pytest.raises(
        movielens.ImportFormatError, match=r"ratings\.csv:2: rating 5\.5 is outside 0\.5–5\.0"
    ):
        importing.read_dataset(write_csv_dataset(tmp_path, ratings=rows))


def test_the_reader_and_the_scale_load_no_django() -> None:
    modules = ["recommender.engine.readers", "ratings.scale", "ratings.movielens", "ratings.demo_data"]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('DJANGO:' + ','.join(m for m in sys.modules if m == 'django' or m.startswith('django.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "DJANGO:"
