"""``manage.py import_movielens PATH``: import a MovieLens dataset (folder or .zip)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratings.importing import movielens_import
from ratings.movielens import ImportFormatError


class Command(BaseCommand):
    help = (
        "Import a MovieLens dataset (ml-100k, ml-1m, ml-10m, ml-20m/25m/latest CSVs or RecBole "
        "atomic files) from a folder or .zip. All or nothing; importing again updates changed scores. "
        "A (user, item) pair rated twice in one file keeps the last row."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="folder or .zip holding the dataset files")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = movielens_import(path=options["path"], progress=True)
        except ImportFormatError as exc:
            raise CommandError(f"{exc.message}\nNothing was imported.") from exc
        if summary.duplicates:
            self.stdout.write(
                f"{summary.duplicates} rows rated a (user, item) pair again; the last row of each pair was kept."
            )
        self.stdout.write(self.style.SUCCESS(f"{summary} ({summary.format}, {summary.seconds:.1f} s)"))
        if options["verbosity"] >= 2:
            self.stdout.write(
                "seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.stage_seconds.items())
            )
