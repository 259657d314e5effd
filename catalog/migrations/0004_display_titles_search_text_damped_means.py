"""Existing rows in the new forms: display titles, search text, damped means.

* MovieLens titles get their trailing article moved to the front ("Shining, The" ->
  "The Shining"), as the importer now stores them. Only ``source="movielens"``: the
  trailing article is that dataset's convention, not something to guess in other titles.
  ``display_title`` leaves display titles unchanged, so re-imports find nothing to change.
* ``search_text`` of every item, from its (new) title.
* ``rating_damped_mean`` = (sum + K·μ) / (count + K) of every rated item, with μ the mean
  of all ratings and K = ``TASTEBASE_POPULARITY_DAMPING``, as
  ``ratings.services.item_damped_means_recompute`` computes it (not imported here: a
  migration must not change when that module does).

Reversing keeps the display titles (the columns it fills disappear with 0003).
"""

from django.conf import settings
from django.db import migrations
from django.db.models import F, FloatField, Sum, Value
from django.db.models.functions import Cast

from catalog.titles import display_title, title_search_text

MOVIELENS = "movielens"
BATCH = 1000


def forwards(apps, schema_editor):
    Item = apps.get_model("catalog", "Item")
    changed = []
    for item in Item.objects.order_by("id").only("id", "title", "source", "search_text").iterator(chunk_size=BATCH):
        title = display_title(item.title) if item.source == MOVIELENS else item.title
        search_text = title_search_text(title)
        if (title, search_text) != (item.title, item.search_text):
            item.title, item.search_text = title, search_text
            changed.append(item)
    Item.objects.bulk_update(changed, ["title", "search_text"], batch_size=BATCH)

    totals = Item.objects.aggregate(total=Sum("rating_sum"), count=Sum("rating_count"))
    if totals["count"]:
        damping = float(settings.TASTEBASE_POPULARITY_DAMPING)
        prior = damping * totals["total"] / totals["count"]
        Item.objects.filter(rating_count__gt=0).update(
            rating_damped_mean=(F("rating_sum") + Value(prior))
            / (Cast("rating_count", FloatField()) + Value(damping))
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_item_search_text_damped_mean")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
