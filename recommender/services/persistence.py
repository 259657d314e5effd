"""Writing a fitted model's tables (and deleting them): COPY on Postgres, bulk_create elsewhere."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from recommender.engine.tables import FactorTables, NeighborTables

from ..models import ItemFactor, ItemNeighbor, ModelVersion, UserFactor, vector_to_bytes


def version_rows_delete(version_id: int) -> None:
    for model in (UserFactor, ItemFactor, ItemNeighbor):
        model.objects.filter(version_id=version_id).delete()


def version_tables_persist(*, version: ModelVersion, tables: FactorTables | NeighborTables) -> None:
    """Store ``tables`` (already checked finite) as ``version``'s rows, in one transaction."""
    if isinstance(tables, NeighborTables):
        _bulk_insert(
            ItemNeighbor,
            ["version_id", "item_id", "neighbor_id", "score", "rank"],
            zip(
                [version.pk] * len(tables),
                tables.item_ids.tolist(),
                tables.neighbor_ids.tolist(),
                tables.scores.astype(float).tolist(),
                tables.ranks.tolist(),
                strict=True,
            ),
        )
        return
    stored = tables.as_stored()
    now = timezone.now()
    _bulk_insert(
        UserFactor,
        ["version_id", "user_id", "bias", "vector", "updated_at"],
        (
            (version.pk, int(u), float(b), vector_to_bytes(v), now)
            for u, b, v in zip(
                stored.user_ids.tolist(), stored.user_bias.tolist(), stored.user_vectors, strict=True
            )
        ),
    )
    _bulk_insert(
        ItemFactor,
        ["version_id", "item_id", "bias", "vector"],
        (
            (version.pk, int(i), float(b), vector_to_bytes(v))
            for i, b, v in zip(
                stored.item_ids.tolist(), stored.item_bias.tolist(), stored.item_vectors, strict=True
            )
        ),
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


def _bulk_insert(model: Any, columns: list[str], rows: Any, batch_size: int = 5000) -> None:
    """COPY on Postgres, batched bulk_create elsewhere; one transaction either way."""
    table = model._meta.db_table
    with transaction.atomic():
        if connection.vendor == "postgresql":
            names = ", ".join(columns)
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,  # type: ignore[attr-defined]
            ):
                for row in rows:
                    copy.write_row(row)
            return
        batch: list[Any] = []
        for row in rows:
            batch.append(model(**dict(zip(columns, row, strict=True))))
            if len(batch) >= batch_size:
                model.objects.bulk_create(batch)
                batch = []
        if batch:
            model.objects.bulk_create(batch)


__all__ = ["version_rows_delete", "version_tables_empty", "version_tables_persist"]
