"""``manage.py load_demo_data``: MovieLens 100K (RecBole's files from the recbole wheel)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Item
from ratings.demo_data import fetch_ml100k
from ratings.importing import SOURCE, movielens_import
from ratings.models import Rating
from ratings.movielens import ImportFormatError

ML100K_RATINGS = 100_000
ML100K_ITEMS = 1_682


class Command(BaseCommand):
    help = "Download (once) and import MovieLens 100K; does nothing if it is already loaded."

    def handle(self, *args: Any, **options: Any) -> None:
        items = Item.objects.filter(source=SOURCE).count()
        ratings = Rating.objects.filter(item__source=SOURCE).count()
        if items >= ML100K_ITEMS and ratings >= ML100K_RATINGS:
            self.stdout.write(f"MovieLens data already loaded ({items} items, {ratings} ratings).")
            return
        folder = fetch_ml100k()
        try:
            summary = movielens_import(path=folder, progress=True)
        except ImportFormatError as exc:
            raise CommandError(f"{exc.message}\nNothing was imported.") from exc
        self.stdout.write(self.style.SUCCESS(f"{summary} ({summary.seconds:.1f} s)"))
