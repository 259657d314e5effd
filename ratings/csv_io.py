"""Your own ratings as a CSV file: the export's writer, the import's reader, and the import.

The format, UTF-8 with a header line, one rating a row::

    item_id,title,year,score,rated_at
    1,Toy Story,1995,4.5,2025-05-01T18:02:11Z

``rated_at`` is when the rating was last set, ISO 8601 in UTC. An import finds
the columns by name, in any order; it reads only ``item_id`` and ``score``
(``title``, ``year`` and ``rated_at`` are for people and are ignored), so a file
exported here imports back unchanged. An import applies every row or none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.models import Item

from .selectors import ratings_by_item
from .services import rating_rows_resolve, ratings_bulk_upsert, user_ratings_lock, validate_score

COLUMNS = ("item_id", "title", "year", "score", "rated_at")
REQUIRED_COLUMNS = ("item_id", "score")

#: An import may average this many bytes a row, so the file limit follows the row limit.
#: A typical exported row takes about 50 (``1,Toy Story,1995,4.5,2025-05-01T18:02:11Z``).
IMPORT_BYTES_PER_ROW = 200

#: Rows per chunk the export hands to the response: one write per chunk, not per row.
EXPORT_CHUNK_ROWS = 500


@dataclass(frozen=True)
class LineError:
    """One problem with an uploaded file: its line (from 1; None for the whole file),
    the column it is in (None for a whole line or the file) and what is wrong."""

    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"Line {self.line}: {self.message}"


@dataclass(frozen=True)
class CsvRating:
    """A well-formed row: the item id and score it names, and the line it is on."""

    line: int
    item_id: int
    score: float


@dataclass(frozen=True)
class ParsedRatingsCsv:
    """What :func:`ratings_csv_parse` found: the well-formed rows and the problems.

    Apply ``rows`` only when ``errors`` is empty: the rows of a file with errors
    are kept only so that later checks (unknown items) can be reported together.
    """

    rows: list[CsvRating]
    errors: list[LineError]


@dataclass(frozen=True)
class RatingsCsvImport:
    """The outcome of :func:`ratings_csv_import`: either ``errors`` (nothing was written)
    or the count of ``rows`` in the file, of which ``created`` were new ratings and
    ``changed`` changed an existing score; the rest already had that score."""

    errors: list[LineError] = field(default_factory=list)
    rows: int = 0
    created: int = 0
    changed: int = 0


class _Echo:
    """A file-like object whose ``write`` returns what it is given: lets csv.writer
    format one row at a time for a streaming response."""

    def write(self, value: str) -> str:
        return value


def ratings_csv_write(*, rows: Iterable[tuple[int, str, int | None, float, datetime]]) -> Iterator[str]:
    """The CSV text of ``(item id, title, year, score, rated at)`` rows, header first,
    in chunks of :data:`EXPORT_CHUNK_ROWS` rows (lazily: rows are read as the text is)."""
    writer = csv.writer(_Echo())
    chunk = [writer.writerow(COLUMNS)]
    for item_id, title, year, score, rated_at in rows:
        rated = rated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        chunk.append(writer.writerow((item_id, title, "" if year is None else year, f"{score:.1f}", rated)))
        if len(chunk) >= EXPORT_CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def _file_size(size: int) -> str:
    """2000000 -> "2 MB", 2500000 -> "2.5 MB", 2000 -> "2,000 bytes"."""
    if size < 1_000_000:
        return f"{size:,} bytes"
    return f"{size / 1_000_000:.1f}".removesuffix(".0") + " MB"


def _header_errors(header: Sequence[str]) -> list[LineError]:
    errors: list[LineError] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(LineError(1, name, f"the column {name!r} appears twice in the header."))
        elif name not in COLUMNS:
            shown = name if len(name) <= 40 else name[:40] + "…"
            errors.append(LineError(1, None, f"unknown column {shown!r} in the header."))
        seen.add(name)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        errors.append(
            LineError(
                1,
                None,
                f"the first line must be a header naming the columns item_id and score "
                f"(missing: {', '.join(missing)}); an export's header is {','.join(COLUMNS)}.",
            )
        )
    return errors


def _row_item_id(value: str, line: int) -> int | LineError:
    value = value.strip()
    if not value:
        return LineError(line, "item_id", "item_id is empty.")
    try:
        return int(value)
    except ValueError:
        return LineError(line, "item_id", f"item_id {value[:40]!r} is not a whole number.")


def _row_score(value: str, line: int) -> float | LineError:
    value = value.strip()
    if not value:
        return LineError(line, "score", "score is empty.")
    try:
        number = float(value)
    except ValueError:
        hint = " (use a decimal point: 4.5)" if "," in value else ""
        return LineError(line, "score", f"score {value[:40]!r} is not a number{hint}.")
    try:
        return validate_score(number)
    except ValidationError as error:
        return LineError(line, "score", f"{error.messages[0]}.")


def ratings_csv_parse(*, data: bytes, max_rows: int, max_bytes: int) -> ParsedRatingsCsv:
    """Read a ratings CSV (see the module docstring) without touching the database.

    Every problem is reported with its line: a file over ``max_bytes`` or with more
    than ``max_rows`` rows, text that is not UTF-8 (a byte order mark is fine), an
    empty file, a header without ``item_id`` and ``score`` or with unknown or repeated
    columns, a row with the wrong number of fields, an ``item_id`` that is not a
    whole number, a score that is not a half star from 0.5 to 5.0, and an item that
    is on an earlier line too. Blank lines are skipped. Whether the items exist is
    the caller's check (:func:`ratings_csv_import`).
    """
    if len(data) > max_bytes:
        return ParsedRatingsCsv(
            [], [LineError(None, None, f"The file is larger than {_file_size(max_bytes)}.")]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = "this line is not UTF-8 text: save the file as “CSV UTF-8” and try again."
        return ParsedRatingsCsv([], [LineError(line, None, message)])
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[CsvRating] = []
    errors: list[LineError] = []
    header: list[str] | None = None
    first_line: dict[int, int] = {}  # item id -> the line it first appeared on
    data_rows = 0
    ended = 0  # the line the previous record ended on
    try:
        for record in reader:
            # A quoted field may span lines: a record starts where the previous one ended.
            start, ended = ended + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                errors = _header_errors(header)
                if errors:
                    return ParsedRatingsCsv([], errors)
                item_column, score_column = header.index("item_id"), header.index("score")
                continue
            data_rows += 1
            if data_rows > max_rows:
                message = (
                    f"The file has more than {max_rows:,} ratings (line {start} is one too many); "
                    f"import at most {max_rows:,} at a time."
                )
                errors.append(LineError(None, None, message))
                break
            if len(record) != len(header):
                message = f"expected {len(header)} fields as in the header, found {len(record)}."
                errors.append(LineError(start, None, message))
                continue
            item_id = _row_item_id(record[item_column], start)
            score = _row_score(record[score_column], start)
            if isinstance(item_id, int):
                if item_id in first_line:
                    message = f"item {item_id} is already on line {first_line[item_id]}."
                    item_id = LineError(start, "item_id", message)
                else:
                    first_line[item_id] = start
            if isinstance(item_id, LineError):
                errors.append(item_id)
            if isinstance(score, LineError):
                errors.append(score)
            if isinstance(item_id, int) and isinstance(score, float):
                rows.append(CsvRating(start, item_id, score))
    except csv.Error as error:
        errors.append(LineError(reader.line_num, None, f"this is not valid CSV ({error})."))
    if header is None and not errors:
        errors.append(LineError(None, None, "The file is empty."))
    elif data_rows == 0 and not errors:
        errors.append(LineError(None, None, "The file has a header but no ratings."))
    return ParsedRatingsCsv(rows, errors)


def _catalog_check(parsed: ParsedRatingsCsv) -> tuple[list[tuple[Item, float]], list[LineError]]:
    """The well-formed rows' items looked up, by the bulk API's own check: the rows as
    ``(item, score)`` pairs if all exist, and a line error for each that does not."""
    checked = rating_rows_resolve(rows=[(row.item_id, row.score) for row in parsed.rows])
    errors = [
        LineError(parsed.rows[position].line, "item_id" if name == "item" else name, f"{message}.")
        for position, problems in checked.errors.items()
        for name, messages in problems.items()
        for message in messages
    ]
    return checked.rows, errors


def _rows_to_write(*, user: User, rows: list[tuple[Item, float]]) -> list[tuple[Item, float]]:
    """The rows whose score ``user`` does not already have."""
    current = ratings_by_item(user=user, item_ids=[item.pk for item, _ in rows])
    return [(item, score) for item, score in rows if current.get(item.pk) != score]


def ratings_csv_import(*, user: User, file: IO[bytes], max_rows: int) -> RatingsCsvImport:
    """Import ``user``'s ratings from a CSV file in the export's format: every row or none.

    Reads at most :data:`IMPORT_BYTES_PER_ROW` x ``max_rows`` bytes (+1, to notice a
    bigger file). The rows are parsed (:func:`ratings_csv_parse`) and their items looked
    up (``rating_rows_resolve``, as the bulk API does); any problem returns every error
    found, by line, and nothing is written. Otherwise the rows that set a new score are
    written by ``ratings_bulk_upsert`` in one transaction: rows that repeat a score you
    already gave are left alone, so re-importing an export changes nothing (not even
    when it was rated) and writes nothing.
    """
    max_bytes = max_rows * IMPORT_BYTES_PER_ROW
    parsed = ratings_csv_parse(data=file.read(max_bytes + 1), max_rows=max_rows, max_bytes=max_bytes)
    resolved, unknown = _catalog_check(parsed)
    # Stable: a line's problems stay in column order; whole-file problems come first.
    errors = sorted([*parsed.errors, *unknown], key=lambda error: error.line or 0)
    if errors:
        return RatingsCsvImport(errors=errors)
    with transaction.atomic():
        # Nothing new: no lock taken, no stamp touched, no fold-in queued.
        if not _rows_to_write(user=user, rows=resolved):
            return RatingsCsvImport(rows=len(resolved))
        # Compare again under the user's write lock, so a rating changed in another tab
        # meanwhile is neither lost nor counted wrongly.
        user_ratings_lock(user_id=user.pk, changed_at=timezone.now())
        created, changed = ratings_bulk_upsert(user=user, rows=_rows_to_write(user=user, rows=resolved))
    return RatingsCsvImport(rows=len(resolved), created=created, changed=changed)
