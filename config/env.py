"""Small helpers that read settings from the environment and fail loudly.

A bad value stops start-up with an ``ImproperlyConfigured`` naming the
variable, instead of silently running with a default.
"""

from __future__ import annotations

import os
from collections.abc import Collection

from celery.schedules import ParseException, crontab
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def envfloat(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None


def envlist(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def envurl(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a valid URL; expected a scheme among {', '.join(schemes)}"
        )
    return raw.strip()


def envchoice(name: str, default: str, *, choices: Collection[str]) -> str:
    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(sorted(choices))}")
    return value


#: The five fields of a cron expression, in order, as Celery and django-celery-beat name them.
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def crontab_fields(expression: str) -> dict[str, str]:
    """``"30 3 * * *"`` -> ``{"minute": "30", "hour": "3", ...}``, checked by Celery's own parser.

    The result fits both ``celery.schedules.crontab(**fields)`` and
    ``django_celery_beat.models.CrontabSchedule(**fields)``. Raises ``ValueError``
    saying what is wrong.
    """
    parts = expression.split()
    if len(parts) != len(CRON_FIELDS):
        raise ValueError(f"expected 5 fields ({' '.join(CRON_FIELDS)}), got {len(parts)}")
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    where = ""
    try:
        # One field at a time first, so the message can say which one is wrong.
        for field, value in fields.items():
            where = f"{field} {value!r}: "
            crontab(**{field: value})
        where = ""
        crontab(**fields)  # then together: day 31 never comes in February
    except (ValueError, ParseException) as exc:
        raise ValueError(f"{where}{exc}") from None
    return fields


def envcron(name: str, default: str) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return " ".join(crontab_fields(raw).values())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a valid cron expression: {exc}") from None


def envrate(name: str, default: str) -> str:
    """A throttle rate such as ``"120/minute"`` (DRF's ``N/second|minute|hour|day``)."""
    raw = os.environ.get(name)
    value = default if raw is None or raw.strip() == "" else raw.strip()
    count, sep, period = value.partition("/")
    if not sep or not count.isdigit() or int(count) < 1 or period not in {"second", "minute", "hour", "day"}:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate; use N/second, N/minute, N/hour or N/day (N >= 1)"
        )
    return value
