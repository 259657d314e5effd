""" "One training run at a time": a lock with expiry, a heartbeat and a fencing token.

With Redis configured the lock is a Redis key (``SET NX PX``); on the embedded
default it is a ``TrainingLock`` row. Either way the value is the holder's
unique token and the holder renews the expiry from a heartbeat thread (only
while the token still matches), so a worker killed with SIGKILL frees the lock
within ``TASTEBASE_TRAINING_LOCK_TTL`` seconds and the next run can start.

A run that stalls past the TTL (a paused VM, a stuck heartbeat) may lose the
lock to another run without noticing. So the holder checks it still owns the
lock (:meth:`TrainingLockHandle.ensure_held`) before it writes its tables,
before it marks its version ready, and inside the activation transaction
(fencing): a run that lost the lock fails with :class:`TrainingLockLost` and
changes nothing that serves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


class TrainingAlreadyRunning(RuntimeError):
    """Raised when another training run holds the lock."""


class TrainingLockLost(RuntimeError):
    """This run's lock expired or was taken over: it must not persist or activate anything."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _RedisLock:
    def __init__(self, name: str, ttl: float) -> None:
        from django_redis import get_redis_connection

        self.client = get_redis_connection("default")
        self.key = f"tastebase:lock:{name}"
        self.ttl_ms = int(ttl * 1000)
        self.owner = _owner()

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def holder(self) -> str:
        raw = self.client.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else str(raw or "")

    def renew(self) -> None:
        # Renew only while we still own it (compare-and-set in one Lua step).
        self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0",
            1,
            self.key,
            self.owner,
            self.ttl_ms,
        )

    def held(self) -> bool:
        return self.holder() == self.owner

    def release(self) -> None:
        self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
            1,
            self.key,
            self.owner,
        )


class _DatabaseLock:
    def __init__(self, name: str, ttl: float) -> None:
        self.name = name
        self.ttl = timedelta(seconds=ttl)
        self.owner = _owner()

    def acquire(self) -> bool:
        from .models import TrainingLock

        now = timezone.now()
        with transaction.atomic():
            TrainingLock.objects.filter(name=self.name, expires_at__lt=now).delete()
        try:
            with transaction.atomic():
                TrainingLock.objects.create(
                    name=self.name, owner=self.owner, acquired_at=now, expires_at=now + self.ttl
                )
        except IntegrityError:
            return False
        return True

    def holder(self) -> str:
        from .models import TrainingLock

        return TrainingLock.objects.filter(name=self.name).values_list("owner", flat=True).first() or ""

    def renew(self) -> None:
        from .models import TrainingLock

        # Only an unexpired lock we own is renewed: once it lapsed, another run may start.
        now = timezone.now()
        TrainingLock.objects.filter(name=self.name, owner=self.owner, expires_at__gte=now).update(
            expires_at=now + self.ttl
        )

    def held(self) -> bool:
        from .models import TrainingLock

        return TrainingLock.objects.filter(
            name=self.name, owner=self.owner, expires_at__gte=timezone.now()
        ).exists()

    def release(self) -> None:
        from .models import TrainingLock

        TrainingLock.objects.filter(name=self.name, owner=self.owner).delete()


class TrainingLockHandle:
    """What a run holds while it trains: the lock's name and this run's token."""

    def __init__(self, lock: _RedisLock | _DatabaseLock, name: str, ttl: float) -> None:
        self._lock = lock
        self.name = name
        self.ttl = ttl

    @property
    def token(self) -> str:
        return self._lock.owner

    def renew(self) -> None:
        self._lock.renew()

    def ensure_held(self, doing: str) -> None:
        """Raise :class:`TrainingLockLost` unless this run still owns the lock."""
        if not self._lock.held():
            holder = self._lock.holder()
            raise TrainingLockLost(
                f"training lock {self.name!r} was lost before {doing}: it expired after "
                f"{self.ttl:g} s without renewal"
                + (f" and is now held by {holder}" if holder else "")
                + "; this run's version is not used, the active version keeps serving"
            )


def training_lock_holder(name: str = "training") -> str:
    """The token of the run holding the named lock now, or "" when it is free.

    Only looks (never acquires, renews or frees anything): an API can answer
    "a training run is in progress" before queuing one. A lapsed database lock
    counts as free, as the next :func:`training_lock` will take it.
    """
    if settings.REDIS_URL:
        return _RedisLock(name, float(settings.TASTEBASE_TRAINING_LOCK_TTL)).holder()
    from .models import TrainingLock

    live = TrainingLock.objects.filter(name=name, expires_at__gte=timezone.now())
    return live.values_list("owner", flat=True).first() or ""


@contextmanager
def training_lock(name: str = "training") -> Iterator[TrainingLockHandle]:
    """Hold the named lock for the block, or raise TrainingAlreadyRunning."""
    ttl = float(settings.TASTEBASE_TRAINING_LOCK_TTL)
    lock: _RedisLock | _DatabaseLock = (
        _RedisLock(name, ttl) if settings.REDIS_URL else _DatabaseLock(name, ttl)
    )
    if not lock.acquire():
        raise TrainingAlreadyRunning(
            f"another training run is in progress (lock {name!r} held by {lock.holder() or 'unknown'}); "
            "not starting a second one"
        )
    handle = TrainingLockHandle(lock, name, ttl)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(ttl / 3):
            try:
                handle.renew()
            except Exception:
                # A busy database (SQLite's write lock) or a Redis hiccup: the
                # next beat retries well before the TTL runs out.
                logger.warning("could not renew training lock %r; retrying", name, exc_info=True)
            finally:
                close_old_connections()

    beat = threading.Thread(target=heartbeat, name=f"lock-heartbeat-{name}", daemon=True)
    beat.start()
    try:
        yield handle
    finally:
        stop.set()
        beat.join(timeout=5)
        lock.release()
