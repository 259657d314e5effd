"""The API's throttles: DRF's anonymous, per-user and scoped rates, counted in fixed windows.

DRF's own throttles keep a list of every request's timestamp in the window
under one cache key: each request reads the list, trims it and writes it back
(two round trips carrying up to N timestamps, N the rate), and two requests at
once can both read the same list and one write is lost, so bursts get through.
These count with one atomic ``INCR`` per request on a key per window instead:
O(1) and exact under concurrency. The price is the fixed window's edge: up to
2N requests can pass in the N-window straddling a window boundary.

``Retry-After`` is the time left in the current window.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rest_framework import throttling

if TYPE_CHECKING:  # rest_framework.views imports the throttle classes from settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class FixedWindowMixin:
    """``allow_request`` and ``wait`` of a :class:`~rest_framework.throttling.SimpleRateThrottle`
    as a fixed-window counter; put it first among the bases. ``cache``, ``timer``, ``rate``,
    ``num_requests``, ``duration`` and ``get_cache_key`` come from the DRF class."""

    window_end: float = 0.0
    now: float = 0.0

    def allow_request(self, request: Request, view: APIView) -> bool:
        self_: Any = self  # the DRF throttle this is mixed into
        if self_.rate is None:
            return True
        key = self_.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self_.timer()
        window = math.floor(self.now / self_.duration)
        self.window_end = (window + 1) * self_.duration
        count = self._count(f"{key}:w{window}", self_.cache, self_.duration + 1)
        # None: the cache is down (django-redis ignores its errors); let the request through
        # rather than fail every request of the site.
        return count is None or count <= self_.num_requests

    @staticmethod
    def _count(key: str, cache: Any, timeout: int) -> int | None:
        """Add one to ``key``'s count and return it (the key outlives its window by a second)."""
        try:
            return cache.incr(key)  # type: ignore[no-any-return]
        except ValueError:  # the window's first request
            if cache.add(key, 1, timeout):
                return 1
            try:
                return cache.incr(key)  # type: ignore[no-any-return]  # another request added it first
            except ValueError:  # expired in between: count this one as the first
                cache.set(key, 1, timeout)
                return 1

    def wait(self) -> float:
        """Seconds until the window ends (DRF turns it into ``Retry-After``)."""
        return max(self.window_end - self.now, 1.0)


class AnonRateThrottle(FixedWindowMixin, throttling.AnonRateThrottle):
    """Anonymous requests per client IP (``DEFAULT_THROTTLE_RATES["anon"]``)."""


class UserRateThrottle(FixedWindowMixin, throttling.UserRateThrottle):
    """Signed-in requests per user (``DEFAULT_THROTTLE_RATES["user"]``)."""


class ScopedRateThrottle(FixedWindowMixin, throttling.ScopedRateThrottle):
    """Requests to views with a ``throttle_scope`` (such as ``login``), per user or IP."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        # As DRF's ScopedRateThrottle: the rate is known only once the view is.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
