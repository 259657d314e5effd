"""Ratings table -> engine ``Interactions`` without a Python object per row.

Postgres hands over each column of a chunk of users as one binary array
(``array_send(array_agg(...))``), decoded by one ``np.frombuffer``. SQLite reads
``fetchmany`` blocks straight into numpy.

Within :func:`ratings_export_shared`, the first export is kept and handed to
every later caller in the block: a retrain of all kinds exports the table once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Max
from django.utils import timezone
from numpy.typing import NDArray

from ratings.bulk_load import PG_EPOCH_SECONDS, binary_array_values
from ratings.models import Rating
from recommender.engine import Interactions

Columns = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]

#: Ratings per query: each column comes back as one binary array (at most 1 GB in PostgreSQL).
PG_CHUNK = 10_000_000
#: Connections reading chunks side by side: each chunk's aggregate runs on one
#: server core, and the client only waits, so two halve a 20M export's server time.
PG_READERS = 2
#: Below this many ratings one query on the caller's connection is as fast.
PG_PARALLEL_MIN_ROWS = 1_000_000

_CHUNK_QUERY = (
    "SELECT array_send(array_agg(user_id::int8)), array_send(array_agg(item_id::int8)), "
    "array_send(array_agg(score::float8)), array_send(array_agg(updated_at)) "
    "FROM {table} WHERE user_id >= %s AND user_id < %s"
)


def _read_chunk(raw: psycopg.Connection[Any], table: str, start: int, stop: int) -> list[NDArray[Any]] | None:
    """The ratings of users ``start <= user_id < stop``: users, items, scores, Unix seconds.

    ``updated_at`` is sent as stored (microseconds since 2000) and converted
    here: ``extract(epoch ...)`` makes a numeric per row, which took longer
    than the other three columns together.
    """
    # A plain psycopg cursor: Django's connections make client-side cursors, which cannot ask for binary results.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(_CHUNK_QUERY.format(table=table), [start, stop], binary=True)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    # Native byte order here, in the reading thread: arithmetic on big-endian arrays is several times slower.
    users, items, scores, micros = (
        binary_array_values(v, t).astype(native)
        for v, t, native in zip(
            row, (">i8", ">i8", ">f8", ">i8"), (np.int64, np.int64, np.float32, np.int64), strict=True
        )
    )
    micros //= 1_000_000
    micros += PG_EPOCH_SECONDS  # binary timestamps count microseconds from 2000-01-01 UTC
    return [users, items, scores, micros]


def _read_chunk_on_own_connection(table: str, start: int, stop: int) -> list[NDArray[Any]] | None:
    """:func:`_read_chunk` in a worker thread, on that thread's own Django connection (closed after)."""
    from django.db import connections

    own = connections[DEFAULT_DB_ALIAS]
    try:
        own.ensure_connection()
        return _read_chunk(own.connection, table, start, stop)
    finally:
        own.close()


def _export_postgres(expected_rows: int) -> Columns:
    """Every rating, per range of users, each column as one ``array_send(array_agg(...))`` value.

    Four values per query instead of one COPY message per row, which psycopg
    hands over one at a time in Python (~20 s for 20M rows). Outside a
    transaction the ranges are read by :data:`PG_READERS` connections at once;
    inside one (a caller's ``atomic`` block, a test), on the caller's
    connection, so the read sees what the transaction sees.
    """
    table = Rating._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(user_id), max(user_id) FROM {table}")
        low, high = cursor.fetchone() or (None, None)
    if low is None or high is None:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    parallel = expected_rows >= PG_PARALLEL_MIN_ROWS and not connection.in_atomic_block
    chunks = max(-(-expected_rows // PG_CHUNK), 1)
    if parallel:  # a multiple of the readers, so none waits alone for a last chunk
        chunks = -(-chunks // PG_READERS) * PG_READERS
    step = -(-(int(high) - int(low) + 1) // chunks)
    ranges = [(start, start + step) for start in range(int(low), int(high) + 1, step)]
    if parallel:
        with ThreadPoolExecutor(max_workers=PG_READERS, thread_name_prefix="ratings-export") as pool:
            read = list(pool.map(lambda bounds: _read_chunk_on_own_connection(table, *bounds), ranges))
    else:
        read = [_read_chunk(connection.connection, table, start, stop) for start, stop in ranges]
    parts = [part for part in read if part is not None]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    # Each column's pieces are dropped once joined: the peak holds one column twice, not all four.
    by_column = [list(pieces) for pieces in zip(*parts, strict=True)]
    del parts, read
    joined = []
    for pieces in by_column:
        joined.append(np.concatenate(pieces))
        pieces.clear()
    users, items, scores, stamps = joined
    return users, items, scores, stamps


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


@dataclass(frozen=True)
class RatingsExport:
    """One read of the ratings table."""

    data: Interactions
    #: The latest ``updated_at`` when the read began: every change up to it is in ``data``.
    watermark: datetime | None
    #: When the read began; changes after it may be missing from ``data``.
    started_at: datetime


#: The export kept by :func:`ratings_export_shared` (a list so the block can fill it).
_shared: ContextVar[list[RatingsExport] | None] = ContextVar("ratings_export_shared", default=None)


@contextlib.contextmanager
def ratings_export_shared() -> Iterator[None]:
    """Within this block, the ratings table is read once and that export handed to every caller.

    For runs that train several models from the same ratings (``retrain`` of
    every kind): each would otherwise read the whole table. Ratings written
    during the block are not seen by its later runs; the watermark and start
    time recorded on each version say which data it learned from (activation
    folds in users who rated after that). The export is dropped on exit.
    """
    token = _shared.set([])
    try:
        yield
    finally:
        _shared.reset(token)


def ratings_export() -> tuple[Interactions, datetime | None]:
    """All ratings as Interactions keyed by database ids, and the data watermark.

    The watermark (latest ``updated_at``) is read before the export, so every
    change up to it is included; later changes may or may not be.
    """
    export = ratings_export_read()
    return export.data, export.watermark


def ratings_export_read() -> RatingsExport:
    """All ratings, their watermark and when the read began; inside
    :func:`ratings_export_shared`, the block's first read (see there)."""
    kept = _shared.get()
    if kept:
        return kept[0]
    started_at = timezone.now()
    data, watermark = _ratings_export()
    export = RatingsExport(data, watermark, started_at)
    if kept is not None:
        kept.append(export)
    return export


def _estimated_rows() -> int:
    """The planner's row count of the ratings table (it only sizes the chunks), or
    an exact count when the table was never analyzed: ``count(*)`` reads all of it
    (about a second at 20M)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Rating._meta.db_table])
        row = cursor.fetchone()
    estimate = int(row[0]) if row is not None and row[0] is not None else -1
    return estimate if estimate >= 0 else Rating.objects.count()


def _ratings_export() -> tuple[Interactions, datetime | None]:
    watermark = Rating.objects.aggregate(latest=Max("updated_at"))["latest"]
    if connection.vendor == "postgresql":
        users, items, scores, stamps = _export_postgres(_estimated_rows())
    else:
        users, items, scores, stamps = _export_chunked(Rating.objects.count())
    return Interactions.from_arrays(users, items, scores, stamps), watermark
