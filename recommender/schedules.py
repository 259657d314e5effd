"""Default periodic tasks, stored in django-celery-beat's tables (editable in the admin)."""

from __future__ import annotations

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.env import crontab_fields

DEFAULT_SCHEDULES = {
    "tastebase: nightly full retrain": ("recommender.tasks.retrain_all", "TASTEBASE_RETRAIN_CRON"),
    "tastebase: hourly similarity refresh": (
        "recommender.tasks.refresh_similarity",
        "TASTEBASE_SIMILARITY_CRON",
    ),
}


def _crontab(expression: str) -> CrontabSchedule:
    # The one cron parser: the settings checked the expression with it at start-up.
    schedule, _ = CrontabSchedule.objects.get_or_create(**crontab_fields(expression), timezone="UTC")
    return schedule


def schedules_setup() -> list[tuple[str, bool]]:
    """Create missing default schedules; existing ones (maybe edited by staff) are kept."""
    result = []
    for name, (task, setting) in DEFAULT_SCHEDULES.items():
        exists = PeriodicTask.objects.filter(name=name).exists()
        if not exists:
            PeriodicTask.objects.create(name=name, task=task, crontab=_crontab(getattr(settings, setting)))
        result.append((name, not exists))
    return result
