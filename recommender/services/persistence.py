"""Writing a fitted model's tables (and deleting them): binary COPY on Postgres, bulk_create elsewhere.

On Postgres the rows go in as one binary ``COPY`` built by numpy: a structured
array holds each row's field count and (length, value) pairs, so 800k
neighbour rows or 140k factor rows cost one ``tobytes()``, not a Python call each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from numpy.typing import NDArray

from recommender.engine.tables import FactorTables, NeighborTables

from ..models import ItemFactor, ItemNeighbor, ModelVersion, UserFactor, vector_to_bytes


def version_rows_delete(version_id: int) -> None:
    for model in (UserFactor, ItemFactor, ItemNeighbor):
        model.objects.filter(version_id=version_id).delete()


def version_tables_persist(*, version: ModelVersion, tables: FactorTables | NeighborTables) -> None:
    """Store ``tables`` (already checked finite) as ``version``'s rows, in one transaction."""
    with transaction.atomic():
        if isinstance(tables, NeighborTables):
            _insert(
                ItemNeighbor,
                {
                    "version_id": version.pk,
                    "item_id": tables.item_ids,
                    "neighbor_id": tables.neighbor_ids,
                    "score": tables.scores.astype(np.float64),
                    "rank": tables.ranks,
                },
            )
            return
        stored = tables.as_stored()
        _insert(
            UserFactor,
            {
                "version_id": version.pk,
                "user_id": stored.user_ids,
                "bias": stored.user_bias.astype(np.float64),
                "vector": stored.user_vectors,
                "updated_at": timezone.now(),
            },
        )
        _insert(
            ItemFactor,
            {
                "version_id": version.pk,
                "item_id": stored.item_ids,
                "bias": stored.item_bias.astype(np.float64),
                "vector": stored.item_vectors,
            },
        )


def version_tables_empty(version: ModelVersion) -> str | None:
    """Why ``version`` has nothing to serve, or None when its tables have rows."""
    from ..models import ModelKind

    if version.kind == ModelKind.SIMILARITY:
        if not ItemNeighbor.objects.filter(version=version).exists():
            return f"version #{version.pk} has an empty neighbour table"
        return None
    if not ItemFactor.objects.filter(version=version).exists():
        return f"version #{version.pk} has an empty item factor table"
    if not UserFactor.objects.filter(version=version).exists():
        return f"version #{version.pk} has an empty user factor table"
    return None


#: One column of rows: an array (a 2-D float32 array is a vector per row) or one value for every row.
Column = NDArray[Any] | int | datetime


def _insert(model: Any, columns: dict[str, Column]) -> None:
    """Rows given as parallel columns: binary COPY on Postgres, batched bulk_create elsewhere.

    The caller holds the transaction.
    """
    rows = next(len(c) for c in columns.values() if isinstance(c, np.ndarray))
    if connection.vendor == "postgresql":
        _copy_binary(model._meta.db_table, columns, rows)
        return
    names = list(columns)
    values = [
        [c] * rows
        if not isinstance(c, np.ndarray)
        else [vector_to_bytes(row) for row in c]
        if c.ndim == 2
        else c.tolist()
        for c in columns.values()
    ]
    batch = [model(**dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
    model.objects.bulk_create(batch, batch_size=5000)


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the zero of PostgreSQL's binary timestamps
#: numpy types of the binary COPY format for the column types these tables use.
_BINARY_TYPES = {
    "smallint": ">i2",
    "integer": ">i4",
    "bigint": ">i8",
    "double precision": ">f8",
    "timestamp with time zone": ">i8",
}


def _copy_binary(table: str, columns: dict[str, Column], rows: int) -> None:
    """``COPY table FROM STDIN (FORMAT BINARY)`` of parallel columns, built as one numpy array.

    Each row: a 2-byte field count, then per field a 4-byte length and the
    value, big-endian; a vector (bytea) is its float32 bytes as
    :func:`vector_to_bytes` writes them, a timestamp microseconds since 2000-01-01.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0",
            [table],
        )
        db_types = dict(cursor.fetchall())
        layout: list[tuple[str, Any]] = [("fields", ">i2")]
        for name, column in columns.items():
            if isinstance(column, np.ndarray) and column.ndim == 2:
                value: Any = ("<f4", (column.shape[1],))
            else:
                value = _BINARY_TYPES[db_types[name]]
            layout += [(f"{name}_length", ">i4"), (name, value)]
        data = np.empty(rows, dtype=np.dtype(layout))
        data["fields"] = len(columns)
        for name, column in columns.items():
            data[f"{name}_length"] = np.dtype(dict(layout)[name]).itemsize
            data[name] = (
                (column - _PG_EPOCH) // timedelta(microseconds=1) if isinstance(column, datetime) else column
            )
        with cursor.cursor.copy(  # type: ignore[attr-defined]
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))  # signature, flags, no header extension
            copy.write(data.tobytes())
            copy.write(b"\xff\xff")


__all__ = ["version_rows_delete", "version_tables_empty", "version_tables_persist"]
