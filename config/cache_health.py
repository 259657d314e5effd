"""How many cache errors this process has ignored.

django-redis is told (settings ``DJANGO_REDIS_IGNORE_EXCEPTIONS``) to treat a
failing Redis as a cache miss and to log each ignored error to
``DJANGO_REDIS_LOGGER``; the :class:`CacheErrorCounter` handler attached to that
logger in ``LOGGING`` counts them, and a health endpoint can show the total.
"""

from __future__ import annotations

import logging
import threading

_lock = threading.Lock()
_errors = 0


def cache_errors_total() -> int:
    """Cache errors ignored by this process since it started."""
    return _errors


class CacheErrorCounter(logging.Handler):
    """A logging handler that counts the records it gets and prints nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        global _errors
        with _lock:
            _errors += 1
