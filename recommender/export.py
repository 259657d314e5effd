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
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from numpy.typing import NDArray

from ratings.bulk_load import binary_array_values
from ratings.models import Rating
from recommender.engine import Interactions

Columns = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]

#: Ratings per query: each column comes back as one binary array (at most 1 GB in PostgreSQL).
PG_CHUNK = 10_000_000


def _export_postgres(expected_rows: int) -> Columns:
    """Every rating, per chunk of users, each column as one ``array_send(array_agg(...))`` value.

    Three or four values per query instead of one COPY message per row, which
    psycopg hands over one at a time in Python (~20 s for 20M rows).
    """
    table = Rating._meta.db_table
    parts: list[list[NDArray[Any]]] = []
    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as raw:  # type: ignore[attr-defined]
        # A plain psycopg cursor: Django's client-side cursors cannot ask for binary results.
        raw.execute(f"SELECT min(user_id), max(user_id) FROM {table}")
        low, high = raw.fetchone() or (None, None)
        if low is not None and high is not None:
            chunks = max(-(-expected_rows // PG_CHUNK), 1)
            step = -(-(int(high) - int(low) + 1) // chunks)
            for start in range(int(low), int(high) + 1, step):
                raw.execute(
                    "SELECT array_send(array_agg(user_id::int8)), array_send(array_agg(item_id::int8)), "
                    "array_send(array_agg(score::float8)), "
                    "array_send(array_agg(extract(epoch FROM updated_at)::int8)) "
                    f"FROM {table} WHERE user_id >= %s AND user_id < %s",
                    [start, start + step],
                    binary=True,
                )
                row = raw.fetchone()
                if row is not None and row[0] is not None:
                    types = (">i8", ">i8", ">f8", ">i8")
                    parts.append([binary_array_values(v, t) for v, t in zip(row, types, strict=True)])
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
    users, items, scores, stamps = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return users.astype(np.int64), items.astype(np.int64), scores.astype(np.float32), stamps.astype(np.int64)


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


def _ratings_export() -> tuple[Interactions, datetime | None]:
    watermark = Rating.objects.aggregate(latest=Max("updated_at"))["latest"]
    expected = Rating.objects.count()
    if connection.vendor == "postgresql":
        users, items, scores, stamps = _export_postgres(expected)
    else:
        users, items, scores, stamps = _export_chunked(expected)
    return Interactions.from_arrays(users, items, scores, stamps), watermark
