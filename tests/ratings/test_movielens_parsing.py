"""ratings.movielens: format detection, parsing and the file:line error messages (no database).

The ``write_*`` helpers build tiny datasets in each GroupLens layout; test_import uses them too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from ratings.movielens import (
    FORMAT_100K,
    FORMAT_CSV,
    FORMAT_DAT,
    FORMAT_RECBOLE,
    ML100K_GENRES,
    ImportFormatError,
    read_dataset,
    split_title_year,
)

MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"American President, The (1995)",Comedy|Drama|Romance\n'
    "3,Some Film Without A Year,(no genres listed)\n"
)
RATINGS_CSV = (
    "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,2,3.5,964981247\n"
    "2,1,0.5,964982224\n"
    "2,3,5.0,964983815\n"
)


def write_csv_dataset(folder: Path, ratings: str = RATINGS_CSV, movies: str = MOVIES_CSV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "movies.csv").write_text(movies, encoding="utf-8")
    (folder / "ratings.csv").write_text(ratings, encoding="utf-8")
    return folder


def write_dat_dataset(folder: Path, ratings: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    movies = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Amélie (2001)::Comedy|Romance\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))  # ml-1m is latin-1
    ratings = ratings or "1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n"
    (folder / "ratings.dat").write_text(ratings, encoding="ascii")
    return folder


def write_100k_dataset(folder: Path, with_genre_file: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def flags(*names: str) -> str:
        return "|".join("1" if genre in names else "0" for genre in ML100K_GENRES)

    toy_flags = flags("Animation", "Children's", "Comedy")
    cafe_flags = flags("Film-Noir", "Sci-Fi")
    u_item = (
        "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|"
        f"{toy_flags}\n"
        f"2|Café au lait|01-Jan-1994||http://example|{cafe_flags}\n"
    )
    (folder / "u.item").write_bytes(u_item.encode("latin-1"))
    (folder / "u.data").write_text("196\t1\t3\t881250949\n186\t2\t5\t891717742\n196\t2\t1\t881251000\n")
    if with_genre_file:
        (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n")
    return folder


def write_recbole_dataset(folder: Path, inter: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "2\tGoldenEye\t1995\tAction Adventure Thriller\n"
        "267\tunkonwn\tunkonwn\tunknown\n",
        encoding="utf-8",
    )
    (folder / "ml-100k.inter").write_text(
        inter
        or (
            "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
            "196\t1\t3\t881250949\n"
            "186\t2\t3\t891717742\n"
            "22\t267\t1\t878887116\n"
        ),
        encoding="utf-8",
    )
    (folder / "ml-100k.user").write_text("user_id:token\tage:token\n196\t49\n")
    return folder


def error_of(path: Path) -> str:
    with pytest.raises(ImportFormatError) as info:
        read_dataset(path)
    return str(info.value)


# ---- formats -----------------------------------------------------------------------


def test_csv_layout(tmp_path: Path) -> None:
    dataset = read_dataset(write_csv_dataset(tmp_path))
    assert dataset.format == FORMAT_CSV
    assert dataset.items.ids.tolist() == [1, 2, 3]
    assert dataset.items.titles == ["Toy Story", "American President, The", "Some Film Without A Year"]
    assert dataset.items.years == [1995, 1995, None]
    assert dataset.items.genres[0] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert dataset.items.genres[2] == []
    assert dataset.ratings.user_ids.tolist() == [1, 1, 2, 2]
    assert dataset.ratings.item_ids.tolist() == [1, 2, 1, 3]
    assert dataset.ratings.scores.tolist() == [4.0, 3.5, 0.5, 5.0]
    assert dataset.ratings.timestamps.dtype == np.int64
    assert dataset.ratings.timestamps[0] == 964982703
    assert dataset.duplicates == 0


def test_crlf_and_bom_just_work(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "movies.csv").write_bytes(b"\xef\xbb\xbf" + MOVIES_CSV.replace("\n", "\r\n").encode())
    (folder / "ratings.csv").write_bytes(b"\xef\xbb\xbf" + RATINGS_CSV.replace("\n", "\r\n").encode())
    dataset = read_dataset(folder)
    assert dataset.items.titles[1] == "American President, The"
    assert dataset.ratings.scores.tolist() == [4.0, 3.5, 0.5, 5.0]


def test_dat_layout_latin1(tmp_path: Path) -> None:
    dataset = read_dataset(write_dat_dataset(tmp_path))
    assert dataset.format == FORMAT_DAT
    assert dataset.items.titles == ["Toy Story", "Amélie"]
    assert dataset.items.years == [1995, 2001]
    assert dataset.items.genres[0] == ["Animation", "Children's", "Comedy"]
    assert dataset.ratings.scores.tolist() == [5.0, 3.0, 4.0]


def test_dat_layout_utf8(tmp_path: Path) -> None:
    write_dat_dataset(tmp_path)
    (tmp_path / "movies.dat").write_text("1::Amélie (2001)::Comedy\n2::B (1990)::Drama\n", encoding="utf-8")
    assert read_dataset(tmp_path).items.titles[0] == "Amélie"


@pytest.mark.parametrize("with_genre_file", [True, False])
def test_100k_layout(tmp_path: Path, with_genre_file: bool) -> None:
    dataset = read_dataset(write_100k_dataset(tmp_path, with_genre_file))
    assert dataset.format == FORMAT_100K
    assert dataset.items.titles == ["Toy Story", "Café au lait"]
    assert dataset.items.years == [1995, 1994]  # from the title, else the release date
    assert dataset.items.genres == [["Animation", "Children's", "Comedy"], ["Film-Noir", "Sci-Fi"]]
    assert dataset.ratings.user_ids.tolist() == [196, 186, 196]


def test_recbole_layout_keeps_multiword_genre_tokens(tmp_path: Path) -> None:
    dataset = read_dataset(write_recbole_dataset(tmp_path))
    assert dataset.format == FORMAT_RECBOLE
    assert dataset.items.titles == ["Toy Story", "GoldenEye", "unkonwn"]
    assert dataset.items.years == [1995, 1995, None]
    assert dataset.items.genres[0] == ["Animation", "Children's", "Comedy"]
    assert dataset.ratings.timestamps.tolist() == [881250949, 891717742, 878887116]


def test_zip_with_subfolder(tmp_path: Path) -> None:
    folder = write_csv_dataset(tmp_path / "src")
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("movies.csv", "ratings.csv"):
            zf.write(folder / name, f"ml-latest-small/{name}")
        zf.writestr("ml-latest-small/README.txt", "hello")
        # Zips made on a Mac carry resource forks; they are not data files.
        zf.writestr("__MACOSX/ml-latest-small/._ratings.csv", "junk")
        zf.writestr("ml-latest-small/._movies.csv", "junk")
    dataset = read_dataset(archive)
    assert dataset.format == FORMAT_CSV
    assert len(dataset.ratings) == 4


def test_folder_with_subfolder(tmp_path: Path) -> None:
    write_100k_dataset(tmp_path / "ml-100k")
    assert read_dataset(tmp_path).format == FORMAT_100K


def test_duplicate_pairs_last_wins(tmp_path: Path) -> None:
    ratings = RATINGS_CSV + "1,1,2.0,964990000\n"
    dataset = read_dataset(write_csv_dataset(tmp_path, ratings=ratings))
    assert dataset.duplicates == 1
    pairs = {
        (u, i): score
        for u, i, score in zip(
            dataset.ratings.user_ids.tolist(),
            dataset.ratings.item_ids.tolist(),
            dataset.ratings.scores.tolist(),
            strict=True,
        )
    }
    assert pairs[(1, 1)] == 2.0
    assert len(dataset.ratings) == 4


def test_blank_lines_are_skipped_and_numbering_stays_physical(tmp_path: Path) -> None:
    ratings = "userId,movieId,rating,timestamp\n1,1,4.0,1\n\n\n2,1,9.0,2\n"
    message = error_of(write_csv_dataset(tmp_path, ratings=ratings))
    assert message == "ratings.csv:5: rating 9.0 is outside 0.5–5.0"


def test_split_title_year() -> None:
    assert split_title_year("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_title_year("Babylon 5 (1993–1998)") == ("Babylon 5", 1993)
    assert split_title_year("(500) Days of Summer (2009)") == ("(500) Days of Summer", 2009)
    assert split_title_year("No Year") == ("No Year", None)


# ---- errors ----------------------------------------------------------------------------

HEADER = "userId,movieId,rating,timestamp\n"


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        (HEADER + "1,1,4.0,1\n1,999,4.0,1\n", "ratings.csv:3: movie 999 is not in movies.csv"),
        (HEADER + "1,1,4.0,1\n1,2,3.7,1\n", "ratings.csv:3: rating 3.7 is not a multiple of 0.5"),
        (HEADER + "1,1,7.0,1\n", "ratings.csv:2: rating 7.0 is outside 0.5–5.0"),
        (HEADER + "1,1,0,1\n", "ratings.csv:2: rating 0.0 is outside 0.5–5.0"),
        ("", "ratings.csv: the file is empty"),
        (HEADER, "ratings.csv: the file has no ratings"),
        (
            HEADER + "1,1,4.0\n",
            "ratings.csv:2: expected 4 columns (userId,movieId,rating,timestamp), found 3",
        ),
        (
            "userId\tmovieId\trating\ttimestamp\n1\t1\t4.0\t1\n",
            "ratings.csv:1: expected comma-separated columns (userId,movieId,rating,timestamp), found tab-separated",
        ),
        (
            HEADER + "1,1,4.0,1\n1;2;4.0;1\n",
            "ratings.csv:3: expected comma-separated columns (userId,movieId,rating,timestamp), "
            "found semicolon-separated",
        ),
        (HEADER + "1,1,4,1\n1,2,4,1\n1,3,4,1\n2,1,abc,1\n", "ratings.csv:5: rating 'abc' is not a number"),
        (HEADER + "1,1,nan,1\n", "ratings.csv:2: rating 'nan' is not a number"),
        (HEADER + "x1,1,4.0,1\n", "ratings.csv:2: userId 'x1' is not a whole number"),
        (HEADER + "1,1.5,4.0,1\n", "ratings.csv:2: movieId '1.5' is not a whole number"),
        (HEADER + "1,1,4.0,soon\n", "ratings.csv:2: timestamp 'soon' is not a number"),
        (
            "userId,rating,timestamp\n1,4.0,1\n",
            "ratings.csv:1: missing required column(s) movieId; the header is userId,rating,timestamp",
        ),
        # The first bad line wins, whatever the kind of problem.
        (HEADER + "1,1,4.0,1\n1,2,9,1\n1,3\n", "ratings.csv:3: rating 9.0 is outside 0.5–5.0"),
        (
            HEADER + "1,1,4.0,1\n1,2\n1,3,9,1\n",
            "ratings.csv:3: expected 4 columns (userId,movieId,rating,timestamp), found 2",
        ),
        (HEADER + "1,1,4.0,1\n1,999,4,1\n1,3,x,1\n", "ratings.csv:3: movie 999 is not in movies.csv"),
        (HEADER + "1,1,4.0,1\n1,2,x,1\n1,999,4,1\n", "ratings.csv:3: rating 'x' is not a number"),
    ],
)
def test_bad_ratings_csv(tmp_path: Path, ratings: str, message: str) -> None:
    assert error_of(write_csv_dataset(tmp_path, ratings=ratings)) == message


def test_error_on_line_1043(tmp_path: Path) -> None:
    rows = "".join(f"{u},1,4.0,1\n" for u in range(1, 1042)) + "5000,2,7.0,1\n"
    assert error_of(write_csv_dataset(tmp_path, ratings=HEADER + rows)) == (
        "ratings.csv:1043: rating 7.0 is outside 0.5–5.0"
    )


@pytest.mark.parametrize(
    ("movies", "message"),
    [
        ("", "movies.csv: the file is empty"),
        ("movieId,title,genres\n1,A (1990),Drama\n1,B (1991),Drama\n", "movies.csv:3: movie 1 is listed twice (first on line 2)"),
        ("movieId,genres\n1,Drama\n", "movies.csv:1: missing required column(s) title; the header is movieId,genres"),
        ("movieId,title,genres\n1,A (1990)\n", "movies.csv:2: expected 3 columns (movieId,title,genres), found 2"),
        ("movieId,title,genres\nx,A (1990),Drama\n", "movies.csv:2: movieId 'x' is not a whole number"),
    ],
)  # fmt: skip
def test_bad_movies_csv(tmp_path: Path, movies: str, message: str) -> None:
    assert error_of(write_csv_dataset(tmp_path, movies=movies)) == message


def test_bad_dat_separator(tmp_path: Path) -> None:
    folder = write_dat_dataset(tmp_path, ratings="1::1::5::978300760\n1,2,3,978302109\n")
    assert error_of(folder) == (
        "ratings.dat:2: expected '::'-separated columns (UserID::MovieID::Rating::Timestamp), found comma-separated"
    )


def test_bad_100k_rating(tmp_path: Path) -> None:
    folder = write_100k_dataset(tmp_path)
    (folder / "u.data").write_text("196\t1\t3\t881250949\n186\t2\t6\t891717742\n")
    assert error_of(folder) == "u.data:2: rating 6.0 is outside 0.5–5.0"


def test_bad_recbole_rating(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t1\t3\t1\n186\t5\t3\t1\n"
    assert (
        error_of(write_recbole_dataset(tmp_path, inter=inter))
        == "ml-100k.inter:3: movie 5 is not in ml-100k.item"
    )


def test_recbole_missing_column(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\ttimestamp:float\n196\t1\t1\n"
    message = error_of(write_recbole_dataset(tmp_path, inter=inter))
    assert message.startswith("ml-100k.inter:1: missing required column(s) rating")


def test_no_layout_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    message = error_of(tmp_path)
    assert "no MovieLens dataset found" in message
    for expected in (
        "ratings.csv + movies.csv",
        "ratings.dat + movies.dat",
        "u.data + u.item",
        "*.inter + *.item",
    ):
        assert expected in message


def test_half_a_layout_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text(RATINGS_CSV)
    assert "ratings.csv is there but movies.csv is not" in error_of(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope") == f"{tmp_path / 'nope'}: no such file or folder"
