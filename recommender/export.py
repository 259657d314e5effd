"""Ratings table -> engine ``Interactions`` without a Python object per row.

Postgres streams ``COPY ... TO STDOUT (FORMAT BINARY)``: every row has the same
fixed layout, so each chunk is decoded by one ``np.frombuffer`` with a
structured dtype. SQLite reads ``fetchmany`` blocks straight into numpy.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Max
from numpy.typing import NDArray

from ratings.models import Rating
from recommender.engine import Interactions

_PG_HEADER = 19  # 11-byte signature + 4 flags + 4 header-extension length
# One row: field count, then (length, value) for 4 int8/float8 columns, big-endian.
_PG_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("lu", ">i4"),
        ("u", ">i8"),
        ("li", ">i4"),
        ("i", ">i8"),
        ("ls", ">i4"),
        ("s", ">f8"),
        ("lt", ">i4"),
        ("t", ">i8"),
    ]
)
_PG_QUERY = (
    "COPY (SELECT user_id::int8, item_id::int8, score::float8, "
    "extract(epoch FROM updated_at)::int8 FROM ratings_rating) TO STDOUT (FORMAT BINARY)"
)

Columns = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]


class _BinaryCopyDecoder:
    """Decodes a binary COPY stream of (int8, int8, float8, int8) rows into arrays."""

    def __init__(self, expected_rows: int) -> None:
        self.columns = [np.empty(expected_rows, dtype=t) for t in (np.int64, np.int64, np.float32, np.int64)]
        self.filled = 0
        self.buffer = bytearray()
        self.header_done = False

    def feed(self, chunk: bytes | memoryview) -> None:
        self.buffer.extend(chunk)
        # Decode in big blocks: one frombuffer per ~8 MB, not per network chunk.
        if len(self.buffer) >= 8 << 20:
            self.decode()

    def decode(self) -> None:
        start = 0 if self.header_done else _PG_HEADER
        if len(self.buffer) < start:
            return
        self.header_done = True
        whole = (len(self.buffer) - start) // _PG_ROW.itemsize
        if whole:
            rows = np.frombuffer(self.buffer, dtype=_PG_ROW, count=whole, offset=start)
            if self.filled + whole > self.columns[0].shape[0]:  # rows added since the count: grow
                extra = max(whole, self.columns[0].shape[0] // 4)
                self.columns = [np.concatenate([a, np.empty(extra, a.dtype)]) for a in self.columns]
            for column, field in zip(self.columns, ("u", "i", "s", "t"), strict=True):
                column[self.filled : self.filled + whole] = rows[field]
            self.filled += whole
            del rows  # release the view before resizing the bytearray
        del self.buffer[: start + whole * _PG_ROW.itemsize]

    def finish(self) -> Columns:
        self.decode()
        # What is left is the 2-byte trailer (-1).
        if bytes(self.buffer) not in (b"\xff\xff", b""):
            raise RuntimeError(f"unexpected {len(self.buffer)} trailing bytes in the COPY stream")
        users, items, scores, stamps = (column[: self.filled] for column in self.columns)
        return users, items, scores, stamps  # type: ignore[return-value]


def _export_postgres(expected_rows: int) -> Columns:
    decoder = _BinaryCopyDecoder(expected_rows)
    with connection.cursor() as cursor, cursor.cursor.copy(_PG_QUERY) as copy:  # type: ignore[attr-defined]
        for chunk in copy:
            decoder.feed(chunk)
    return decoder.finish()


def _export_chunked(expected_rows: int) -> Columns:
    # sqlite3 returns plain tuples of numbers; numpy converts each fetchmany
    # block in C, so no model instance or datetime object is built per row.
    table = np.empty((max(expected_rows, 1), 4), dtype=np.float64)
    filled = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, item_id, score, CAST(strftime('%s', updated_at) AS INTEGER) FROM ratings_rating"
        )
        while block := cursor.fetchmany(50_000):
            part = np.asarray(block, dtype=np.float64)
            if filled + part.shape[0] > table.shape[0]:
                table = np.concatenate([table, np.empty_like(table)])
            table[filled : filled + part.shape[0]] = part
            filled += part.shape[0]
    table = table[:filled]
    return (
        table[:, 0].astype(np.int64),
        table[:, 1].astype(np.int64),
        table[:, 2].astype(np.float32),
        table[:, 3].astype(np.int64),
    )


def ratings_export() -> tuple[Interactions, datetime | None]:
    """All ratings as Interactions keyed by database ids, and the data watermark.

    The watermark (latest ``updated_at``) is read before the export, so every
    change up to it is included; later changes may or may not be.
    """
    watermark = Rating.objects.aggregate(latest=Max("updated_at"))["latest"]
    expected = Rating.objects.count()
    if connection.vendor == "postgresql":
        users, items, scores, stamps = _export_postgres(expected)
    else:
        users, items, scores, stamps = _export_chunked(expected)
    return Interactions.from_arrays(users, items, scores, stamps), watermark
