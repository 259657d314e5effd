"""Reading ratings files: the one parser behind the importer, ``manage.py evaluate`` and the engine.

Three entry points, one row parser (:func:`parse_ratings`) under all of them:

* :func:`read_dataset` — a whole MovieLens dataset (items and ratings) from a folder
  or a ``.zip``; the importer (``ratings.movielens``) calls it with the app's score scale;
* :func:`read_ratings_file` — one ratings file of a known layout, e.g. RecBole's
  ``ml-100k.inter`` (``recommender.engine.datasets.load_ml100k_arrays``);
* :func:`read_ratings_csv` — ``manage.py evaluate``'s ``user,item,rating[,timestamp]``
  CSV, whose ids are kept as the strings written.

MovieLens layouts that :func:`read_dataset` recognises (the files may sit in one
subfolder, as in GroupLens zips):

========================  ===============================  =========================
format                    files                            notes
========================  ===============================  =========================
``ml-latest``             ``ratings.csv`` + ``movies.csv``  ml-latest(-small), 20m, 25m
``ml-1m``                 ``ratings.dat`` + ``movies.dat``  ``::``-separated; also 10m
``ml-100k``               ``u.data`` + ``u.item``           ``u.genre`` optional
``recbole``               ``*.inter`` + ``*.item``          RecBole atomic files
========================  ===============================  =========================

Everything is parsed and validated before anything is returned, so a caller can
write the result in one go. Problems raise :class:`RatingsFileError` with a
message naming the file, the 1-based physical line (the header is line 1) and the
problem, e.g. ``ratings.csv:1043: rating 7.0 is outside 0.5–5.0``; the message
always names the *first* bad line.

Ratings files can be large (tens of millions of rows), so they are parsed with
numpy over the raw bytes: separators and line ends are located with vectorized
comparisons, each column is gathered into a fixed-width byte-string array and
converted with one ``astype``-like pass. Only when a conversion fails does a
Python loop run, to find the offending line. Items files are small (< 100k rows)
and go through the ``csv`` module or plain ``str.split``.

The score scale is a parameter (:class:`ScoreScale`); without one a rating only
has to be a finite number. A (user, item) pair rated twice in one dataset keeps
the *last* rating (later lines win, as a later rating replaces an earlier one in
the app); :func:`read_dataset` reports the number of dropped rows in
``MovieLensDataset.duplicates``. The other two readers return every row in file
order.

No Django here: the engine imports this module.
"""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FORMAT_100K",
    "FORMAT_CSV",
    "FORMAT_DAT",
    "FORMAT_RECBOLE",
    "ML100K_GENRES",
    "ItemTable",
    "MovieLensDataset",
    "ParsedRatings",
    "RatingRows",
    "RatingTable",
    "RatingsFileError",
    "RatingsLayout",
    "ScoreScale",
    "parse_ratings",
    "read_dataset",
    "read_ratings_csv",
    "read_ratings_file",
    "split_title_year",
]

FORMAT_CSV = "ml-latest"
FORMAT_DAT = "ml-1m"
FORMAT_100K = "ml-100k"
FORMAT_RECBOLE = "recbole"

#: ml-100k's genre columns when the dataset has no ``u.genre``.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
TITLE_MAX_LENGTH = 300  # catalog.Item.title
GENRE_MAX_LENGTH = 64  # catalog.Genre.name
#: Longest accepted numeric field; longer ones cannot be ids, scores or timestamps.
MAX_FIELD_WIDTH = 32
#: Longest accepted text id (``read_ratings_csv``).
MAX_ID_WIDTH = 255
#: Timestamps must fit a datetime (years 1..9999).
MIN_TIMESTAMP = -62_135_596_800
MAX_TIMESTAMP = 253_402_300_799

_BOM = b"\xef\xbb\xbf"
_TRAILING_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_SEPARATOR_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", "::": "'::'"}
#: Bytes trimmed from both ends of every ratings field: space, tab, double quote.
_TRIMMED = np.zeros(256, dtype=bool)
_TRIMMED[[ord(" "), ord("\t"), ord('"')]] = True


class RatingsFileError(ValueError):
    """Bad or unrecognized input; ``str(error)`` is the file:line message for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScoreScale(NamedTuple):
    """Allowed ratings: ``minimum <= score <= maximum`` and a whole multiple of ``step``."""

    minimum: float
    maximum: float
    step: float


@dataclass
class ItemTable:
    """The movies, in file order. ``ids`` are the dataset's movie ids."""

    ids: NDArray[np.int64]
    titles: list[str]
    years: list[int | None]
    genres: list[list[str]]

    def __len__(self) -> int:
        return len(self.titles)


@dataclass
class RatingTable:
    """One row per rating with whole-number ids; timestamps are Unix seconds (UTC)."""

    user_ids: NDArray[np.int64]
    item_ids: NDArray[np.int64]
    scores: NDArray[np.float64]
    timestamps: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.scores)


@dataclass
class MovieLensDataset:
    """A parsed, validated dataset ready to be written."""

    format: str
    items: ItemTable
    ratings: RatingTable
    #: Rows dropped because a later row rated the same (user, item) pair.
    duplicates: int = 0
    files: list[str] = field(default_factory=list)


class RatingRows(NamedTuple):
    """Parallel arrays of one ``user,item,rating[,timestamp]`` file (ids kept as strings, as written)."""

    user_ids: NDArray[np.str_]
    item_ids: NDArray[np.str_]
    ratings: NDArray[np.float64]
    timestamps: NDArray[np.int64] | None


@dataclass(frozen=True)
class RatingsLayout:
    """Where :func:`parse_ratings` finds the values in each row of a ratings file."""

    sep: str
    #: Column names as the file calls them, for messages.
    columns: tuple[str, ...]
    user: int
    item: int
    score: int
    timestamp: int | None
    #: Physical lines before the first rating row.
    header_lines: int
    #: Keep user and item ids as the text written instead of whole numbers.
    text_ids: bool = False
    #: What messages call a row's fields ("expected 4 columns (…), found 3").
    fields_word: str = "columns"


class ParsedRatings(NamedTuple):
    """What :func:`parse_ratings` returns: parallel arrays of every rating row, in file order."""

    user_ids: NDArray[Any]  # int64, or str_ with ``text_ids``
    item_ids: NDArray[Any]
    scores: NDArray[np.float64]
    timestamps: NDArray[np.int64] | None


# ---- where the files come from -------------------------------------------------


class _Source:
    """The files of a folder or a zip, by relative POSIX path, at most one folder deep."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self.names: list[str] = []
        if not path.exists():
            raise RatingsFileError(f"{path}: no such file or folder")
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file():
                    self.names.append(child.name)
                elif child.is_dir():
                    self.names.extend(
                        f"{child.name}/{f.name}" for f in sorted(child.iterdir()) if f.is_file()
                    )
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            self.names = sorted(
                name
                for name in self._zip.namelist()
                if not name.endswith("/") and name.count("/") <= 1 and not name.startswith("__MACOSX/")
            )
        else:
            raise RatingsFileError(f"{path}: not a folder or a .zip file")

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class _Layout:
    format: str
    folder: str  # "" or "sub/"
    ratings: str
    items: str
    genres: str | None = None

    def path(self, name: str) -> str:
        return self.folder + name


_LOOKED_FOR = (
    "ratings.csv + movies.csv (ml-latest, ml-20m, ml-25m), "
    "ratings.dat + movies.dat (ml-1m, ml-10m), "
    "u.data + u.item (ml-100k), "
    "*.inter + *.item (RecBole atomic files)"
)


def _detect(source: _Source) -> _Layout:
    """The one dataset layout in ``source``; errors name what is missing or ambiguous."""
    folders: dict[str, set[str]] = {}
    for name in source.names:
        folder, _, base = name.rpartition("/")
        if base.startswith("._"):
            continue  # macOS resource forks that zips made on a Mac carry along
        folders.setdefault(folder + "/" if folder else "", set()).add(base)
    found: list[_Layout] = []
    half: list[str] = []
    for folder, files in sorted(folders.items()):
        pairs = (
            (FORMAT_CSV, "ratings.csv", "movies.csv"),
            (FORMAT_DAT, "ratings.dat", "movies.dat"),
            (FORMAT_100K, "u.data", "u.item"),
        )
        layout: _Layout | None = None
        for fmt, ratings, items in pairs:
            if ratings in files and items in files:
                genres = "u.genre" if fmt == FORMAT_100K and "u.genre" in files else None
                layout = _Layout(fmt, folder, ratings, items, genres)
                break
            if ratings in files or items in files:
                have, lack = (ratings, items) if ratings in files else (items, ratings)
                half.append(f"{folder}{have} is there but {folder}{lack} is not")
        if layout is None:
            inters = sorted(f for f in files if f.endswith(".inter"))
            item_files = sorted(f for f in files if f.endswith(".item"))
            if len(inters) == 1 and len(item_files) == 1:
                layout = _Layout(FORMAT_RECBOLE, folder, inters[0], item_files[0])
            elif len(inters) > 1 or len(item_files) > 1:
                # Prefer the pair with a common stem (ml-100k.inter + ml-100k.item).
                stems = {f[: -len(".inter")] for f in inters} & {f[: -len(".item")] for f in item_files}
                if len(stems) == 1:
                    stem = stems.pop()
                    layout = _Layout(FORMAT_RECBOLE, folder, f"{stem}.inter", f"{stem}.item")
                else:
                    half.append(
                        f"{folder or './'} has several .inter/.item files: {', '.join(inters + item_files)}"
                    )
            elif inters or item_files:
                have = (inters or item_files)[0]
                half.append(f"{folder}{have} is there but no {'.item' if inters else '.inter'} file")
        if layout is not None:
            found.append(layout)
    if len(found) > 1 and found[0].folder == "":
        found = found[:1]  # files at the top win over a subfolder
    if len(found) > 1:
        where = ", ".join(f"{layout.folder or './'} ({layout.format})" for layout in found)
        raise RatingsFileError(f"{source.path}: several datasets found: {where}; point at one of them")
    if not found:
        detail = f" ({'; '.join(half)})" if half else ""
        raise RatingsFileError(f"{source.path}: no MovieLens dataset found{detail}; looked for {_LOOKED_FOR}")
    return found[0]


# ---- small helpers ---------------------------------------------------------------


def _clean_bytes(data: bytes) -> bytes:
    """Without a UTF-8 BOM and with CRLF line ends turned into LF."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return data


def _first_line(data: bytes) -> bytes:
    """The bytes before the first newline (without splitting, i.e. copying, the rest)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _decode(data: bytes) -> str:
    """UTF-8 if it is valid, else latin-1 (ml-100k and ml-1m are latin-1, later sets UTF-8)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RatingsFileError(f"{path}: cannot read ratings file ({exc.strerror or exc})") from None


def _check_not_empty(name: str, data: bytes) -> None:
    if _NON_SPACE.search(data) is None:  # no copy of the data, as data.strip() makes
        raise RatingsFileError(f"{name}: the file is empty")


def _other_separator(line: str, expected: str) -> str | None:
    """The name of a separator ``line`` seems to use instead of ``expected``."""
    for sep, sep_name in _SEPARATOR_NAMES.items():
        if sep != expected and sep not in expected and sep in line:
            return sep_name
    return None


def _columns_error(
    name: str,
    line_no: int,
    sep: str,
    found: int,
    columns: Sequence[str],
    line: str,
    fields_word: str = "columns",
) -> str:
    described = sep.join(columns)
    if found == 1:
        other = _other_separator(line, sep)
        if other is not None:
            return (
                f"{name}:{line_no}: expected {_SEPARATOR_NAMES[sep]}-separated columns ({described}), "
                f"found {other}-separated"
            )
    return f"{name}:{line_no}: expected {len(columns)} {fields_word} ({described}), found {found}"


def split_title_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; titles without a year are kept."""
    match = _TRAILING_YEAR.search(title)
    if match is None:
        return title.strip(), None
    stripped = title[: match.start()].strip()
    return (stripped or title.strip()), int(match.group(1))


def _year_or_none(text: str) -> int | None:
    """A year from a year column or a date such as ``01-Jan-1995``; junk gives None."""
    match = re.search(r"(\d{4})\s*$", text.strip())
    return int(match.group(1)) if match else None


def _parse_id(name: str, line_no: int, what: str, text: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise RatingsFileError(f"{name}:{line_no}: {what} {text!r} is not a whole number")
    return int(value)


class _ItemCollector:
    """Accumulates movies, validating titles, genres and duplicate ids as it goes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: list[int] = []
        self.titles: list[str] = []
        self.years: list[int | None] = []
        self.genres: list[list[str]] = []
        self._seen: dict[int, int] = {}

    def add(self, line_no: int, item_id: int, title: str, year: int | None, genres: list[str]) -> None:
        if item_id in self._seen:
            raise RatingsFileError(
                f"{self.name}:{line_no}: movie {item_id} is listed twice (first on line {self._seen[item_id]})"
            )
        self._seen[item_id] = line_no
        if not title:
            raise RatingsFileError(f"{self.name}:{line_no}: movie {item_id} has an empty title")
        if len(title) > TITLE_MAX_LENGTH:
            raise RatingsFileError(
                f"{self.name}:{line_no}: the title is longer than {TITLE_MAX_LENGTH} characters"
            )
        if year is not None and not 1800 <= year <= 2999:
            year = None  # a placeholder such as 0000: better no year than a wrong one
        clean: list[str] = []
        for genre in genres:
            genre = genre.strip()
            if not genre or genre == NO_GENRES or genre in clean:
                continue
            if len(genre) > GENRE_MAX_LENGTH:
                raise RatingsFileError(
                    f"{self.name}:{line_no}: genre {genre[:20]!r}… is longer than {GENRE_MAX_LENGTH} characters"
                )
            clean.append(genre)
        self.ids.append(item_id)
        self.titles.append(title)
        self.years.append(year)
        self.genres.append(clean)

    def table(self) -> ItemTable:
        if not self.ids:
            raise RatingsFileError(f"{self.name}: the file has no movies")
        return ItemTable(np.asarray(self.ids, dtype=np.int64), self.titles, self.years, self.genres)


def _lines(data: bytes) -> list[str]:
    # split("\n"), not splitlines(): latin-1 text may hold \x85 or \x1c, which
    # splitlines() would treat as line ends and so shift every line number.
    text = _decode(data)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# ---- items files -------------------------------------------------------------------


def _parse_movies_csv(name: str, data: bytes) -> ItemTable:
    _check_not_empty(name, data)
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = [column.strip() for column in next(reader)]
    if len(header) == 1 and _other_separator(header[0], ","):
        raise RatingsFileError(
            f"{name}:1: expected comma-separated columns (movieId,title,genres), "
            f"found {_other_separator(header[0], ',')}-separated"
        )
    missing = [column for column in ("movieId", "title") if column not in header]
    if missing:
        raise RatingsFileError(
            f"{name}:1: missing required column(s) {', '.join(missing)}; the header is {','.join(header)}"
        )
    id_col, title_col = header.index("movieId"), header.index("title")
    genres_col = header.index("genres") if "genres" in header else None
    items = _ItemCollector(name)
    for row in reader:
        line_no = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise RatingsFileError(_columns_error(name, line_no, ",", len(row), header, ",".join(row)))
        item_id = _parse_id(name, line_no, "movieId", row[id_col])
        title, year = split_title_year(row[title_col])
        genres = row[genres_col].split("|") if genres_col is not None else []
        items.add(line_no, item_id, title, year, genres)
    return items.table()


def _parse_movies_dat(name: str, data: bytes) -> ItemTable:
    _check_not_empty(name, data)
    columns = ("MovieID", "Title", "Genres")
    items = _ItemCollector(name)
    for line_no, line in enumerate(_lines(data), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) < 3:
            raise RatingsFileError(_columns_error(name, line_no, "::", len(parts), columns, line))
        # A title could itself hold "::"; the id is first and the genres last.
        item_id = _parse_id(name, line_no, "movie id", parts[0])
        title, year = split_title_year("::".join(parts[1:-1]))
        items.add(line_no, item_id, title, year, parts[-1].split("|"))
    return items.table()


def _parse_u_genre(name: str, data: bytes) -> list[str]:
    genres: dict[int, str] = {}
    for line_no, line in enumerate(_lines(data), start=1):
        if not line.strip():
            continue
        genre, sep, index = line.rpartition("|")
        if not sep:
            raise RatingsFileError(f"{name}:{line_no}: expected 'name|index', found {line!r}")
        genres[_parse_id(name, line_no, "genre index", index)] = genre.strip()
    if sorted(genres) != list(range(len(genres))):
        raise RatingsFileError(f"{name}: genre indexes are not 0..{len(genres) - 1}")
    return [genres[i] for i in range(len(genres))]


def _parse_u_item(name: str, data: bytes, genre_names: Sequence[str]) -> ItemTable:
    _check_not_empty(name, data)
    columns = ("movie id", "title", "release date", "video release date", "IMDb URL", *genre_names)
    items = _ItemCollector(name)
    for line_no, line in enumerate(_lines(data), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != len(columns):
            described = (
                f"movie id|title|release date|video release date|IMDb URL|{len(genre_names)} genre flags"
            )
            if len(parts) == 1 and _other_separator(line, "|"):
                raise RatingsFileError(
                    f"{name}:{line_no}: expected pipe-separated columns ({described}), "
                    f"found {_other_separator(line, '|')}-separated"
                )
            raise RatingsFileError(
                f"{name}:{line_no}: expected {len(columns)} columns ({described}), found {len(parts)}"
            )
        item_id = _parse_id(name, line_no, "movie id", parts[0])
        title, year = split_title_year(parts[1])
        if year is None:
            year = _year_or_none(parts[2])
        flags = parts[5:]
        for genre, flag in zip(genre_names, flags, strict=True):
            if flag.strip() not in ("0", "1"):
                raise RatingsFileError(f"{name}:{line_no}: genre flag {genre} is {flag!r}, not 0 or 1")
        genres = [genre for genre, flag in zip(genre_names, flags, strict=True) if flag.strip() == "1"]
        items.add(line_no, item_id, title, year, genres)
    return items.table()


def _recbole_header(name: str, line: str) -> list[str]:
    """Field names of a RecBole header (``item_id:token`` -> ``item_id``)."""
    if "\t" not in line and _other_separator(line, "\t"):
        raise RatingsFileError(
            f"{name}:1: expected tab-separated columns, found {_other_separator(line, chr(9))}-separated"
        )
    return [column.strip().partition(":")[0] for column in line.split("\t")]


def _parse_recbole_item(name: str, data: bytes) -> ItemTable:
    _check_not_empty(name, data)
    lines = _lines(data)
    header = _recbole_header(name, lines[0])
    raw_header = lines[0].split("\t")
    if "item_id" not in header:
        raise RatingsFileError(f"{name}:1: missing required column item_id; the header is {lines[0]!r}")
    title_col = next((header.index(c) for c in ("movie_title", "title") if c in header), None)
    year_col = next((header.index(c) for c in ("release_year", "year") if c in header), None)
    genre_col = next((header.index(c) for c in ("class", "genre", "genres") if c in header), None)
    if title_col is None:
        raise RatingsFileError(f"{name}:1: missing required column movie_title; the header is {lines[0]!r}")
    id_col = header.index("item_id")
    items = _ItemCollector(name)
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(header):
            raise RatingsFileError(_columns_error(name, line_no, "\t", len(parts), raw_header, line))
        item_id = _parse_id(name, line_no, "item_id", parts[id_col])
        title, title_year = split_title_year(parts[title_col])
        year = _year_or_none(parts[year_col]) if year_col is not None else None
        # token_seq fields are space-separated in RecBole; genre names have no spaces
        # ("Children's", "Film-Noir", "Sci-Fi" are single tokens).
        genres = parts[genre_col].split() if genre_col is not None else []
        items.add(line_no, item_id, title, year if year is not None else title_year, genres)
    return items.table()


# ---- ratings files (vectorized) ---------------------------------------------------


class _FirstError:
    """Keeps the earliest problem: each check only looks at rows before ``limit``."""

    def __init__(self, rows: int) -> None:
        self.limit = rows
        self.message: str | None = None

    def report(self, row: int, message: str) -> None:
        if row < self.limit:
            self.limit = row
            self.message = message


# ---- the fast path: one compiled pass over plain rows ------------------------------------

#: Ratings files at least this large take the compiled fast path (smaller ones are
#: parsed in milliseconds anyway, and need not load numba).
FAST_PATH_MIN_BYTES = 1 << 20


def _parse_plain(body: bytes, sep: bytes, layout: RatingsLayout) -> ParsedRatings | None:
    """Every row of ``body`` parsed by ``_reader_kernels.parse_plain_rows``, or None if a row is not
    plain (or the file is small: see ``FAST_PATH_MIN_BYTES``)."""
    if layout.text_ids or len(sep) != 1 or len(body) < FAST_PATH_MIN_BYTES:
        return None
    from ._reader_kernels import count_lines, parse_plain_rows  # loads numba

    buf = np.frombuffer(body, dtype=np.uint8)
    capacity = count_lines(buf)
    users = np.empty(capacity, dtype=np.int64)
    items = np.empty(capacity, dtype=np.int64)
    scores = np.empty(capacity, dtype=np.float64)
    with_stamps = layout.timestamp is not None
    stamps = np.empty(capacity if with_stamps else 0, dtype=np.int64)
    columns = np.array(
        [layout.user, layout.item, layout.score, layout.timestamp if with_stamps else -1], dtype=np.int64
    )
    rows = parse_plain_rows(buf, sep[0], len(layout.columns), columns, users, items, scores, stamps)
    if rows <= 0:
        return None
    return ParsedRatings(users[:rows], items[:rows], scores[:rows], stamps[:rows] if with_stamps else None)


def _plain_values_valid(
    parsed: ParsedRatings, scale: ScoreScale | None, known_items: NDArray[np.int64] | None
) -> bool:
    """Whether rows from the fast path pass every value check of :func:`parse_ratings`.

    Ids and timestamps are non-negative and scores finite by construction; the
    rest is checked here without line numbers (a failure reruns the general path).
    """
    scores = parsed.scores
    if scale is not None:
        low, high, step = scale
        if scores.min() < low or scores.max() > high:
            return False
        steps = scores / step
        if not np.array_equal(steps, np.round(steps)):
            return False
    if parsed.timestamps is not None and int(parsed.timestamps.max()) > MAX_TIMESTAMP:
        return False
    if known_items is not None:
        items = parsed.item_ids
        top = int(items.max())
        if len(known_items) and known_items.min() >= 0 and known_items.max() < 1 << 26 and top < 1 << 26:
            # A lookup table: one gather instead of np.isin's sort of 20M ids.
            known = np.zeros(max(top, int(known_items.max())) + 1, dtype=bool)
            known[known_items] = True
            return bool(known[items].all())
        return bool(np.isin(items, known_items).all())
    return True


def parse_ratings(
    name: str,
    data: bytes,
    layout: RatingsLayout,
    *,
    scale: ScoreScale | None = None,
    known_items: NDArray[np.int64] | None = None,
    items_name: str = "",
) -> ParsedRatings:
    """Parse and validate the rating rows of one file from its raw bytes, with numpy.

    ``name`` is how messages call the file. Fields are trimmed of spaces and
    double quotes; empty lines and lines of only spaces are skipped (line numbers
    stay physical). Ids are whole numbers, or the text written with
    ``layout.text_ids``; scores finite numbers (on ``scale`` if given);
    timestamps numbers of seconds, floored, within years 1..9999. With
    ``known_items`` every rating must name one of those item ids (the ids of
    ``items_name``). Raises :class:`RatingsFileError` naming the first bad line.
    """
    data = _clean_bytes(data)
    sep_byte = layout.sep.encode()
    if len(sep_byte) > 1:
        # "::" -> one unused byte, so each separator is one position; line
        # numbers do not change.
        data = data.replace(sep_byte, b"\x1f")
        sep_byte = b"\x1f"
    offset = 0
    for _ in range(layout.header_lines):
        end = data.find(b"\n", offset)
        offset = len(data) if end < 0 else end + 1
    body = data[offset:]
    if not body or body.isspace():
        raise RatingsFileError(f"{name}: the file has no ratings")
    if not body.endswith(b"\n"):
        body += b"\n"
    # Almost every file is plain digits: one compiled pass, then the value checks.
    # Anything else, or a value that fails a check, goes the general way below,
    # which also finds and names the first bad line.
    plain = _parse_plain(body, sep_byte, layout)
    if plain is not None and _plain_values_valid(plain, scale, known_items):
        return plain
    buf = np.frombuffer(body, dtype=np.uint8)
    ncols = len(layout.columns)

    ends_of_lines = np.flatnonzero(buf == 10)
    starts_of_lines = np.empty_like(ends_of_lines)
    starts_of_lines[0] = 0
    starts_of_lines[1:] = ends_of_lines[:-1] + 1
    # Empty lines (often a trailing one) are skipped; numbering stays physical.
    nonblank = ends_of_lines > starts_of_lines
    # So are lines of only spaces; only lines that start with one can be such.
    for candidate in np.flatnonzero(nonblank & np.isin(buf[starts_of_lines], (32, 9))).tolist():
        if body[starts_of_lines[candidate] : ends_of_lines[candidate]].isspace():
            nonblank[candidate] = False
    line_numbers = np.flatnonzero(nonblank) + 1 + layout.header_lines
    line_starts = starts_of_lines[nonblank]
    line_ends = ends_of_lines[nonblank]
    rows = len(line_starts)
    is_sep = buf == sep_byte[0]
    sep_positions = np.flatnonzero(is_sep)
    seps_per_line = np.searchsorted(sep_positions, line_ends) - np.searchsorted(sep_positions, line_starts)

    def text(row: int) -> str:
        return body[line_starts[row] : line_ends[row]].decode("latin-1").replace("\x1f", "::")

    errors = _FirstError(rows)
    bad = np.flatnonzero(seps_per_line != ncols - 1)
    if len(bad):
        row = int(bad[0])
        found = int(seps_per_line[row]) + 1
        columns = layout.columns
        errors.report(
            row,
            _columns_error(
                name, int(line_numbers[row]), layout.sep, found, columns, text(row), layout.fields_word
            ),
        )
    limit = errors.limit
    # Field ends: every separator and every end of a non-blank line, in order.
    mark = is_sep.copy()
    mark[line_ends] = True
    field_ends = np.flatnonzero(mark[: line_ends[limit - 1] + 1] if limit else mark[:0]).reshape(-1, ncols)
    field_starts = np.empty_like(field_ends)
    field_starts[:, 0] = line_starts[:limit]
    field_starts[:, 1:] = field_ends[:, :-1] + 1

    def column(index: int, max_width: int) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        """Column ``index`` of rows before the current limit: a zero-padded byte matrix and widths."""
        starts = field_starts[: errors.limit, index]
        widths = field_ends[: errors.limit, index] - starts
        # Trim spaces and quotes at both ends; most files have none, so this is one check.
        while True:
            lead = (widths > 0) & _TRIMMED[buf[starts]]
            if not lead.any():
                break
            starts, widths = starts + lead, widths - lead
        while True:
            tail = (widths > 0) & _TRIMMED[buf[starts + widths - 1]]
            if not tail.any():
                break
            widths = widths - tail
        column_name = _value_name(layout.columns[index])
        empty = np.flatnonzero(widths == 0)
        if len(empty):
            row = int(empty[0])
            errors.report(row, f"{name}:{line_numbers[row]}: empty {column_name} field")
        too_long = np.flatnonzero(widths > max_width)
        if len(too_long):
            row = int(too_long[0])
            value = body[starts[row] : starts[row] + 20].decode("latin-1")
            if max_width == MAX_FIELD_WIDTH:
                message = f"{column_name} '{value}…' is not a number"
            else:
                message = f"{column_name} '{value}…' is longer than {max_width} characters"
            errors.report(row, f"{name}:{line_numbers[row]}: {message}")
        starts, widths = starts[: errors.limit], widths[: errors.limit]
        width = max(int(widths.max()) if len(widths) else 1, 1)
        gathered = np.empty((len(starts), width), dtype=np.uint8)
        last = len(buf) - 1
        # One pass per character position keeps temporaries at one row-sized array.
        for k in range(width):
            chars = buf[np.minimum(starts + k, last)]
            chars[widths <= k] = 0
            gathered[:, k] = chars
        return gathered, widths

    def report_bad(index: int, row: int, raw: bytes, what: str) -> None:
        column_name = _value_name(layout.columns[index])
        token = raw.decode("latin-1")
        errors.report(row, f"{name}:{line_numbers[row]}: {column_name} {token!r} is not {what}")

    def convert(index: int, dtype: type, what: str) -> NDArray[Any]:
        gathered, widths = column(index, MAX_FIELD_WIDTH)
        rows, width = gathered.shape
        digits = gathered - np.uint8(48)  # wraps around for non-digits
        if width <= 18 and (not rows or widths.min() > 0) and bool(((digits < 10) | (gathered == 0)).all()):
            # Plain non-negative integers (ids, timestamps): parsed arithmetically.
            values = np.zeros(rows, dtype=np.int64)
            for k in range(width):
                values = np.where(widths > k, values * 10 + digits[:, k], values)
            return values.astype(dtype)
        parse = int if dtype is np.int64 else float
        if width <= 8:
            # Few distinct spellings (scores such as "3.5"): convert each one once.
            padded = np.zeros((rows, 8), dtype=np.uint8)
            padded[:, :width] = gathered
            keys, inverse = np.unique(padded.view(np.uint64).ravel(), return_inverse=True)
            spellings: list[bytes] = keys.view("S8").tolist()
            converted: NDArray[Any] = np.zeros(len(keys), dtype=dtype)
            bad = np.zeros(len(keys), dtype=bool)
            for k, raw in enumerate(spellings):
                try:
                    converted[k] = parse(raw)
                except (ValueError, OverflowError):
                    bad[k] = True
            bad_rows = np.flatnonzero(bad[inverse])
            if len(bad_rows):
                row = int(bad_rows[0])
                report_bad(index, row, spellings[inverse[row]], what)
            return converted[inverse][: errors.limit]
        # Rare: long values that are not plain digits. Python converts row by row.
        spelled: list[bytes] = gathered.view(f"S{width}").ravel().tolist()
        out: NDArray[Any] = np.zeros(len(spelled), dtype=dtype)
        for row, raw in enumerate(spelled):
            try:
                out[row] = parse(raw)
            except (ValueError, OverflowError):
                report_bad(index, row, raw, what)
                break
        return out[: errors.limit]

    def text_column(index: int) -> NDArray[Any]:
        """Column ``index`` of rows before the current limit as UTF-8 text (``str_``)."""
        gathered, _ = column(index, MAX_ID_WIDTH)
        raw = gathered.view(f"S{gathered.shape[1]}").ravel()
        try:
            return np.strings.decode(raw, "utf-8")
        except UnicodeDecodeError:
            for row, value in enumerate(raw.tolist()):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    column_name = _value_name(layout.columns[index])
                    errors.report(row, f"{name}:{line_numbers[row]}: {column_name} is not UTF-8 text")
                    break
            return np.strings.decode(raw[: errors.limit], "utf-8")

    users: NDArray[Any]
    items: NDArray[Any]
    if layout.text_ids:
        users, items = text_column(layout.user), text_column(layout.item)
    else:
        users = convert(layout.user, np.int64, "a whole number")
        items = convert(layout.item, np.int64, "a whole number")
    scores = convert(layout.score, np.float64, "a number")
    stamps = convert(layout.timestamp, np.float64, "a number") if layout.timestamp is not None else None
    n = errors.limit
    users, items, scores = users[:n], items[:n], scores[:n]
    stamps = stamps[:n] if stamps is not None else None

    finite = np.isfinite(scores)
    checks: list[tuple[NDArray[np.bool_], int, str]] = []
    if not layout.text_ids:
        checks += [
            (users < 0, layout.user, "{col} {value} is not a valid id"),
            (items < 0, layout.item, "{col} {value} is not a valid id"),
        ]
    if scale is None:
        # Without a scale the only rule for a rating is to be a finite number.
        checks.append((~finite, layout.score, "{col} '{value}' is not a finite number"))
    else:
        low, high, step = scale
        checks += [
            (~finite, layout.score, "{col} '{value}' is not a number"),
            (finite & ((scores < low) | (scores > high)), layout.score, "{col} {value} is outside " + f"{low}–{high}"),
            (finite & (scores / step != np.round(scores / step)), layout.score, "{col} {value} is not a multiple of " + f"{step:g}"),
        ]  # fmt: skip
    if stamps is not None and layout.timestamp is not None:
        out_of_range = ~np.isfinite(stamps) | (stamps < MIN_TIMESTAMP) | (stamps > MAX_TIMESTAMP)
        checks.append((out_of_range, layout.timestamp, "{col} {value} is out of range"))
    value_arrays = {layout.user: users, layout.item: items, layout.score: scores}
    if stamps is not None and layout.timestamp is not None:
        value_arrays[layout.timestamp] = stamps
    for mask, col, template in checks:
        hits = np.flatnonzero(mask[: errors.limit])
        if len(hits):
            row = int(hits[0])
            value = value_arrays[col][row]
            shown = str(float(value)) if isinstance(value, np.floating) else str(int(value))
            message = template.format(col=_value_name(layout.columns[col]), value=shown)
            errors.report(row, f"{name}:{line_numbers[row]}: {message}")
    if known_items is not None:
        unknown = np.flatnonzero(~np.isin(items[: errors.limit], known_items))
        if len(unknown):
            row = int(unknown[0])
            errors.report(row, f"{name}:{line_numbers[row]}: movie {items[row]} is not in {items_name}")
    if errors.message is not None:
        raise RatingsFileError(errors.message)
    timestamps = np.floor(stamps).astype(np.int64) if stamps is not None else None
    return ParsedRatings(users, items, scores, timestamps)


def _value_name(column: str) -> str:
    """The word used in value messages: ``rating 7.0 is outside…`` for any rating column."""
    base = column.partition(":")[0]
    return "rating" if base.lower() in ("rating", "ratings") else base


# ---- layouts of the known ratings files ----------------------------------------------

_DAT_LAYOUT = RatingsLayout("::", ("UserID", "MovieID", "Rating", "Timestamp"), 0, 1, 2, 3, header_lines=0)
_100K_LAYOUT = RatingsLayout("\t", ("user id", "item id", "rating", "timestamp"), 0, 1, 2, 3, header_lines=0)


def _csv_rating_layout(name: str, data: bytes) -> RatingsLayout:
    first = _decode(_first_line(data))
    header = [column.strip() for column in first.split(",")]
    if len(header) == 1 and _other_separator(first, ","):
        raise RatingsFileError(
            f"{name}:1: expected comma-separated columns (userId,movieId,rating,timestamp), "
            f"found {_other_separator(first, ',')}-separated"
        )
    required = ("userId", "movieId", "rating", "timestamp")
    missing = [column for column in required if column not in header]
    if missing:
        raise RatingsFileError(
            f"{name}:1: missing required column(s) {', '.join(missing)}; the header is {','.join(header)}"
        )
    user, item, score, timestamp = (header.index(c) for c in required)
    return RatingsLayout(",", tuple(header), user, item, score, timestamp, header_lines=1)


def _recbole_rating_layout(name: str, data: bytes) -> RatingsLayout:
    first = _decode(_first_line(data))
    header = _recbole_header(name, first)
    missing = [column for column in ("user_id", "item_id", "rating") if column not in header]
    if missing:
        raise RatingsFileError(
            f"{name}:1: missing required column(s) {', '.join(missing)}; the header is {first!r}"
        )
    timestamp = header.index("timestamp") if "timestamp" in header else None
    raw = tuple(column.strip() for column in first.split("\t"))
    return RatingsLayout(
        "\t",
        raw,
        header.index("user_id"),
        header.index("item_id"),
        header.index("rating"),
        timestamp,
        header_lines=1,
    )


def _ratings_format(name: str) -> str:
    """The layout of a ratings file, from its name."""
    if name.endswith(".inter"):
        return FORMAT_RECBOLE
    if name.endswith(".csv"):
        return FORMAT_CSV
    if name.endswith(".dat"):
        return FORMAT_DAT
    if name == "u.data" or name.endswith((".base", ".test")):
        return FORMAT_100K
    raise RatingsFileError(
        f"{name}: not a known ratings file; expected ratings.csv, ratings.dat, u.data or a RecBole .inter file"
    )


def _parse_ratings_file(
    name: str,
    data: bytes,
    fmt: str,
    *,
    scale: ScoreScale | None,
    known_items: NDArray[np.int64] | None = None,
    items_name: str = "",
) -> RatingTable:
    """One MovieLens/RecBole ratings file; ratings without a timestamp are dated now."""
    data = _clean_bytes(data)
    _check_not_empty(name, data)
    if fmt == FORMAT_CSV:
        layout = _csv_rating_layout(name, data)
    elif fmt == FORMAT_DAT:
        layout = _DAT_LAYOUT
    elif fmt == FORMAT_100K:
        layout = _100K_LAYOUT
    else:
        layout = _recbole_rating_layout(name, data)
    parsed = parse_ratings(name, data, layout, scale=scale, known_items=known_items, items_name=items_name)
    stamps = parsed.timestamps
    if stamps is None:
        # RecBole files may lack timestamps: such ratings are dated now.
        stamps = np.full(len(parsed.scores), int(time.time()), dtype=np.int64)
    return RatingTable(parsed.user_ids, parsed.item_ids, parsed.scores, stamps)


def _deduplicate(ratings: RatingTable) -> tuple[RatingTable, int]:
    """Keep the last row of each (user, item) pair, in file order."""
    if not len(ratings):
        return ratings, 0
    width = int(ratings.item_ids.max()) + 1
    if int(ratings.user_ids.max()) < np.iinfo(np.int64).max // width:
        # One int64 key per pair; a stable sort keeps file order within a pair.
        keys = ratings.user_ids * width + ratings.item_ids
        ordered = np.sort(keys)  # an unstable sort of values is several times cheaper
        if not (ordered[1:] == ordered[:-1]).any():
            return ratings, 0  # the usual case: no pair twice
        del ordered
        order = np.argsort(keys, kind="stable")
    else:
        order = np.lexsort((ratings.item_ids, ratings.user_ids))
    u, i = ratings.user_ids[order], ratings.item_ids[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    if last.all():
        return ratings, 0
    keep = np.sort(order[last])
    table = RatingTable(
        ratings.user_ids[keep], ratings.item_ids[keep], ratings.scores[keep], ratings.timestamps[keep]
    )
    return table, len(ratings) - len(keep)


# ---- entry points ------------------------------------------------------------------


def read_dataset(path: Path | str, *, scale: ScoreScale | None = None) -> MovieLensDataset:
    """Detect, parse and validate the MovieLens dataset in ``path`` (a folder or a .zip).

    Ratings must name a movie of the items file and, with ``scale``, lie on it;
    a pair rated twice keeps its last row.
    """
    source = _Source(Path(path))
    try:
        layout = _detect(source)
        ratings_name = PurePosixPath(layout.ratings).name
        items_name = PurePosixPath(layout.items).name
        items_data = _clean_bytes(source.read(layout.path(layout.items)))
        ratings_data = _clean_bytes(source.read(layout.path(layout.ratings)))
        files = [layout.path(layout.ratings), layout.path(layout.items)]
        if layout.format == FORMAT_CSV:
            items = _parse_movies_csv(items_name, items_data)
        elif layout.format == FORMAT_DAT:
            items = _parse_movies_dat(items_name, items_data)
        elif layout.format == FORMAT_100K:
            genre_names: Sequence[str] = ML100K_GENRES
            if layout.genres is not None:
                genre_data = _clean_bytes(source.read(layout.path(layout.genres)))
                genre_names = _parse_u_genre("u.genre", genre_data) or ML100K_GENRES
                files.append(layout.path(layout.genres))
            items = _parse_u_item(items_name, items_data, genre_names)
        else:
            items = _parse_recbole_item(items_name, items_data)
        ratings = _parse_ratings_file(
            ratings_name,
            ratings_data,
            layout.format,
            scale=scale,
            known_items=items.ids,
            items_name=items_name,
        )
        ratings, duplicates = _deduplicate(ratings)
    finally:
        source.close()
    return MovieLensDataset(layout.format, items, ratings, duplicates, files)


def read_ratings_file(path: Path | str, *, scale: ScoreScale | None = None) -> RatingTable:
    """Every row of one ratings file, in file order, without its items file.

    The layout follows the name: ``*.inter`` (RecBole), ``*.csv`` (ml-latest's
    ``userId,movieId,rating,timestamp``), ``*.dat`` (ml-1m), ``u.data`` /
    ``u*.base`` / ``u*.test`` (ml-100k).
    """
    path = Path(path)
    fmt = _ratings_format(path.name)
    return _parse_ratings_file(path.name, _read_bytes(path), fmt, scale=scale)


_NON_SPACE = re.compile(rb"\S")
_CSV_HEADERS = (("user", "item", "rating"), ("user", "item", "rating", "timestamp"))


def read_ratings_csv(path: str | Path) -> RatingRows:
    """Read ``user,item,rating[,timestamp]`` CSV (header required) into arrays.

    Ids are kept as the text written; ratings must be finite numbers, timestamps
    numbers of seconds (floored). The header is the first non-blank line, its
    names case-insensitive. Fields are trimmed of spaces and surrounding double
    quotes; quoted commas are not supported. Errors cite ``file:line``.
    """
    path = Path(path)
    data = _clean_bytes(_read_bytes(path))
    start, line_no = 0, 1  # the header: the first line that is not blank
    while True:
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if data[start:end].strip():
            break
        if end >= len(data):
            raise RatingsFileError(
                f"{path}: file is empty; expected a header line 'user,item,rating[,timestamp]'"
            )
        start, line_no = end + 1, line_no + 1
    try:
        first = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise RatingsFileError(f"{path}: not a UTF-8 text file") from None
    header = tuple(name.strip().strip('"').strip().lower() for name in first.split(","))
    if header not in _CSV_HEADERS:
        raise RatingsFileError(
            f"{path}:{line_no}: header must be 'user,item,rating' or 'user,item,rating,timestamp', "
            f"got {first!r}"
        )
    if _NON_SPACE.search(data, end + 1) is None:
        raise RatingsFileError(f"{path}: no ratings after the header line")
    layout = RatingsLayout(
        ",",
        header,
        0,
        1,
        2,
        3 if len(header) == 4 else None,
        header_lines=line_no,
        text_ids=True,
        fields_word="comma-separated fields",
    )
    parsed = parse_ratings(str(path), data, layout)
    return RatingRows(parsed.user_ids, parsed.item_ids, parsed.scores, parsed.timestamps)
