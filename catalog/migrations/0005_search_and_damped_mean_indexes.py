"""The indexes whose SQL differs by database.

* ``item_damped_mean_idx`` serves the "Highest rated" order
  (``rating_damped_mean DESC NULLS LAST, rating_count DESC, id``). PostgreSQL puts
  NULLs first on DESC, so its index says NULLS LAST; SQLite rejects NULLS LAST in an
  index and already sorts NULLs last on DESC, so its plain DESC index serves the order.
* On PostgreSQL, a GIN trigram index on ``search_text`` serves both the per-word
  ``LIKE '%word%'`` and the ``%>`` (word similarity) operator of the catalog search;
  it replaces 0002's index on ``upper(title)``, which no query uses any more.
"""

from django.db import migrations


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute("DROP INDEX IF EXISTS item_title_trgm_idx")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS item_search_text_trgm_idx ON catalog_item USING gin (search_text gin_trgm_ops)"
        )
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS item_damped_mean_idx ON catalog_item "
            "(rating_damped_mean DESC NULLS LAST, rating_count DESC, id)"
        )
    else:
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS item_damped_mean_idx ON catalog_item "
            "(rating_damped_mean DESC, rating_count DESC, id)"
        )


def drop_indexes(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS item_damped_mean_idx")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS item_search_text_trgm_idx")
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS item_title_trgm_idx ON catalog_item USING gin (upper(title) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_display_titles_search_text_damped_means")]
    operations = [migrations.RunPython(create_indexes, drop_indexes)]
