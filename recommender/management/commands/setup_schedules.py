"""Create (or update) the periodic training schedule in django-celery-beat; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from recommender.schedules import schedules_setup


class Command(BaseCommand):
    help = "Create or update the nightly retrain and hourly similarity refresh (editable in the admin)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, created in schedules_setup():
            self.stdout.write(f"{'created' if created else 'kept'}: {name}")
