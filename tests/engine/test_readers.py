"""recommender.engine.readers: the one ratings-file reader, on its own (no Django, no database).

The importer's view of it is tested in tests/ratings/test_movielens_parsing.py,
evaluate's CSV in test_metrics.py, and that all callers share it in
tests/ratings/test_shared_reader.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.engine.datasets import load_ml100k_arrays
from recommender.engine.readers import (
    RatingsFileError,
    RatingsLayout,
    ScoreScale,
    parse_ratings,
    read_ratings_csv,
    read_ratings_file,
)

ROOT = Path(__file__).resolve().parents[2]
INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n"
    "186\t302\t3\t891717742\n"
    "22\t377\t1\t878887116\n"
)
LAYOUT = RatingsLayout(",", ("user", "item", "rating", "timestamp"), 0, 1, 2, 3, header_lines=1)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_importing_the_reader_loads_no_django() -> None:
    script = (
        "import sys\n"
        "import recommender.engine.readers, recommender.engine.datasets\n"
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


def test_load_ml100k_arrays_reads_the_folder_it_is_given(tmp_path: Path) -> None:
    write(tmp_path / "ml-100k.inter", INTER)
    users, items, ratings, stamps = load_ml100k_arrays(tmp_path)
    assert users.tolist() == [196, 186, 22]
    assert items.tolist() == [242, 302, 377]
    assert ratings.dtype == np.float32
    assert ratings.tolist() == [3.0, 3.0, 1.0]
    assert stamps.dtype == np.int64
    assert stamps.tolist() == [881250949, 891717742, 878887116]


def test_load_ml100k_arrays_names_the_file_and_line_of_a_bad_row(tmp_path: Path) -> None:
    write(tmp_path / "ml-100k.inter", INTER + "7\t1\tfive\t1\n")
    with pytest.raises(RatingsFileError, match=r"^ml-100k\.inter:5: rating 'five' is not a number$"):
        load_ml100k_arrays(tmp_path)


def test_load_ml100k_arrays_without_the_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RatingsFileError, match="cannot read ratings file"):
        load_ml100k_arrays(tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.5,100\n2,20,1,200\n"),
        ("ratings.dat", "1::10::4.5::100\n2::20::1::200\n"),
        ("u.data", "1\t10\t4.5\t100\n2\t20\t1\t200\n"),
        ("ml-100k.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4.5\t100\n2\t20\t1\t200\n"),
    ],
)  # fmt: skip
def test_read_ratings_file_knows_every_layout_by_name(tmp_path: Path, name: str, text: str) -> None:
    table = read_ratings_file(write(tmp_path / name, text))
    assert table.user_ids.tolist() == [1, 2]
    assert table.item_ids.tolist() == [10, 20]
    assert table.scores.tolist() == [4.5, 1.0]
    assert table.timestamps.tolist() == [100, 200]


def test_read_ratings_file_rejects_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(RatingsFileError, match=r"notes\.txt: not a known ratings file"):
        read_ratings_file(write(tmp_path / "notes.txt", "1,2,3\n"))


def test_read_ratings_file_keeps_every_row_in_file_order(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp\n1,10,4,1\n1,10,2,2\n"
    assert read_ratings_file(write(tmp_path / "ratings.csv", text)).scores.tolist() == [4.0, 2.0]


def test_the_scale_is_a_parameter() -> None:
    data = b"user,item,rating,timestamp\n1,1,4,1\n1,2,7,1\n"
    assert parse_ratings("r.csv", data, LAYOUT).scores.tolist() == [4.0, 7.0]
    with pytest.raises(RatingsFileError, match=r"^r\.csv:3: rating 7\.0 is outside 1\.0–5\.0$"):
        parse_ratings("r.csv", data, LAYOUT, scale=ScoreScale(1.0, 5.0, 1.0))
    with pytest.raises(RatingsFileError, match=r"^r\.csv:2: rating 4\.0 is not a multiple of 3$"):
        parse_ratings("r.csv", data, LAYOUT, scale=ScoreScale(0.0, 9.0, 3.0))


def test_fields_are_trimmed_of_spaces_and_quotes() -> None:
    data = b'user,item,rating,timestamp\n 1 ,"2", "4.5" ,\t7\n'
    parsed = parse_ratings("r.csv", data, LAYOUT)
    assert (parsed.user_ids.tolist(), parsed.item_ids.tolist()) == ([1], [2])
    assert parsed.scores.tolist() == [4.5]
    assert parsed.timestamps is not None
    assert parsed.timestamps.tolist() == [7]


def test_lines_of_only_spaces_are_skipped_and_numbering_stays_physical() -> None:
    data = b"user,item,rating,timestamp\n1,1,4,1\n   \n\t\n1,2,x,1\n"
    with pytest.raises(RatingsFileError, match=r"^r\.csv:5: rating 'x' is not a number$"):
        parse_ratings("r.csv", data, LAYOUT)


def test_an_empty_field_is_named() -> None:
    with pytest.raises(RatingsFileError, match=r"^r\.csv:2: empty item field$"):
        parse_ratings("r.csv", b'user,item,rating,timestamp\n1,"",4,1\n', LAYOUT)


def test_text_ids_stay_as_written(tmp_path: Path) -> None:
    rows = read_ratings_csv(write(tmp_path / "r.csv", "user,item,rating\nzoë,tt0114709,4\n007,x y,2.5\n"))
    assert rows.user_ids.tolist() == ["zoë", "007"]
    assert rows.item_ids.tolist() == ["tt0114709", "x y"]
    assert rows.timestamps is None


def test_a_text_id_that_is_not_utf8_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"user,item,rating\n1,a,4\n1,\xe9t\xe9,4\n")
    with pytest.raises(RatingsFileError, match=r"r\.csv:3: item is not UTF-8 text"):
        read_ratings_csv(path)


# ---- the compiled fast path agrees with the general (vectorized) path ---------------------


@pytest.fixture
def fast_path_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from recommender.engine import readers

    monkeypatch.setattr(readers, "FAST_PATH_MIN_BYTES", 0)


def _general(monkeypatch: pytest.MonkeyPatch, *args: object, **kwargs: object) -> object:
    """parse_ratings with the fast path switched off: the reference."""
    from recommender.engine import readers

    with monkeypatch.context() as patched:
        patched.setattr(readers, "_parse_plain", lambda body, sep, layout: None)
        try:
            return parse_ratings(*args, **kwargs)  # type: ignore[arg-type]
        except RatingsFileError as exc:
            return str(exc)


def _fast(*args: object, **kwargs: object) -> object:
    try:
        return parse_ratings(*args, **kwargs)  # type: ignore[arg-type]
    except RatingsFileError as exc:
        return str(exc)


def _same(a: object, b: object) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
        if x is None or y is None:
            assert x is None and y is None
        else:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


@pytest.mark.usefixtures("fast_path_for_small_files")
def test_the_fast_path_parses_plain_rows_like_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    users = rng.integers(0, 10**9, n)
    items = rng.integers(0, 10**6, n)
    scores = rng.choice(["0.5", "3", "3.5", "4.0", "5.", ".5", "2.25", "1.125", "4.999999999999"], n)
    stamps = rng.integers(0, 2 * 10**9, n)
    lines = [f"{u},{i},{s},{t}" for u, i, s, t in zip(users, items, scores, stamps, strict=True)]
    lines[10:10] = ["", ""]  # empty lines are skipped
    data = ("user,item,rating,timestamp\n" + "\n".join(lines)).encode()  # no final newline
    parsed_fast: list[bool] = []
    from recommender.engine import readers

    original = readers._parse_plain

    def counting(*args: Any) -> Any:
        result = original(*args)
        parsed_fast.append(result is not None)
        return result

    monkeypatch.setattr(readers, "_parse_plain", counting)
    fast = parse_ratings("r.csv", data, LAYOUT)
    assert parsed_fast == [True]  # the compiled pass parsed every row
    _same(fast, _general(monkeypatch, "r.csv", data, LAYOUT))
    assert fast.user_ids.tolist() == users.tolist()
    assert fast.scores.tolist() == [float(s) for s in scores]


@pytest.mark.parametrize(
    "rows",
    [
        "1,2,3.5,10\n1,3, 4,11\n",  # a space: the general path trims it
        '1,2,"3.5",10\n',  # quotes
        "1,2,3.5,10\n1,-3,4,11\n",  # a negative id
        "1,2,3.5,10\n1,3,4e0,11\n",  # an exponent
        "1,2,3.5,10\n1,3,4,11,12\n",  # too many columns
        "1,2,3.5,10\n1,3,4\n",  # too few
        "1,2,3.5,10\n1,3,,11\n",  # an empty score
        "1,2,3.5,10\n1,3,4,99999999999999999999\n",  # a timestamp past year 9999
        "1,2,3.5,10\n1,3,7,11\n",  # off the scale
        "1,2,3.5,10\n1,3,3.25,11\n",  # not a multiple of the step
        "1,2,3.5,10\n1,9,4,11\n",  # an unknown item
        "1,2,3.5,10\n1,3.0,4,11\n",  # a decimal id
        "1,2,3.5,10\n   \n1,3,4,11\n",  # a line of spaces
        "1,2,3.5,10\n1,3,1234567890123456.5,11\n",  # too many digits for the fast path
    ],
)
@pytest.mark.usefixtures("fast_path_for_small_files")
def test_rows_the_fast_path_refuses_get_the_general_paths_answer(
    monkeypatch: pytest.MonkeyPatch, rows: str
) -> None:
    data = ("user,item,rating,timestamp\n" + rows).encode()
    for options in ({}, {"scale": ScoreScale(0.5, 5.0, 0.5), "known_items": np.array([2, 3])}):
        _same(
            _fast("r.csv", data, LAYOUT, **options), _general(monkeypatch, "r.csv", data, LAYOUT, **options)
        )


@pytest.mark.usefixtures("fast_path_for_small_files")
def test_an_unknown_item_is_still_named_by_line_after_the_fast_path() -> None:
    data = b"user,item,rating,timestamp\n1,2,3.5,10\n\n1,9,4,11\n"
    with pytest.raises(RatingsFileError, match=r"^r.csv:4: movie 9 is not in movies.csv$"):
        parse_ratings("r.csv", data, LAYOUT, known_items=np.array([2, 3]), items_name="movies.csv")
