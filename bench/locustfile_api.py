"""Locust users for ``bench.bench_api``; run by that script, which writes the config this reads.

``BENCH_API_CONFIG`` names a JSON file::

    {"tokens": [[username, key], ...],        # the users RecommendationsUser picks from
     "mixed_tokens": [[username, key], ...],  # one per MixedUser, none shared (may be empty)
     "items": [item ids], "item_pages": n,    # for item detail, items list and rating writes
     "out": path, "seed": int}

Each run uses one user class (named on locust's command line). Users wait for
nothing between requests (a closed loop), so req/s is what the server gives at
that concurrency. Every request's status and latency is collected here rather
than read from locust's rounded CSV percentiles; when the test stops, this file
writes them, and what each MixedUser's rating writes the server acknowledged,
to ``out`` as JSON for the bench script.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import resource
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

CONFIG: dict[str, Any] = json.loads(Path(os.environ["BENCH_API_CONFIG"]).read_text(encoding="utf-8"))
TOKENS: list[list[str]] = CONFIG["tokens"]
MIXED_TOKENS: list[list[str]] = CONFIG["mixed_tokens"]
ITEMS: list[int] = CONFIG["items"]
ITEM_PAGES: int = CONFIG["item_pages"]
#: Half stars, as the site allows.
SCORES = [s / 2 for s in range(1, 11)]

#: Per request name: latencies (seconds), status counts (0 = no response), first start, last end.
LATENCIES: dict[str, list[float]] = defaultdict(list)
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)
WINDOW: dict[str, list[float]] = {}
ERROR_SAMPLES: list[str] = []
#: username -> item id -> the score of the user's last write of that item the server acknowledged (2xx).
ACKED: dict[str, dict[int, float]] = defaultdict(dict)
#: username -> item ids whose last write failed or had no answer: what the database holds is unknown.
UNCERTAIN: dict[str, set[int]] = defaultdict(set)
#: Token keys RecommendationsUser asked for: a run starts with an empty list cache, so the
#: first request of each is a miss (the list is computed) and later ones are hits.
RECS_ASKED: set[str] = set()
_mixed_slots = itertools.count()
_recs_slots = itertools.count()


@events.request.add_listener
def _record(
    name: str, response_time: float, response: Any, exception: Any, start_time: float | None = None, **_: Any
) -> None:
    status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
    LATENCIES[name].append(response_time / 1000.0)
    STATUSES[name][status] += 1
    if (exception is not None or not 200 <= status < 300) and len(ERROR_SAMPLES) < 20:
        ERROR_SAMPLES.append(f"{name}: status {status}: {exception!r}"[:500])
    if start_time is not None:
        end = start_time + response_time / 1000.0
        window = WINDOW.setdefault(name, [start_time, end])
        window[0], window[1] = min(window[0], start_time), max(window[1], end)


@events.test_stop.add_listener
def _write(**_: Any) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "requests": {
            name: {
                "latencies_s": LATENCIES[name],
                "statuses": {str(k): v for k, v in STATUSES[name].items()},
                "window": WINDOW.get(name),
            }
            for name in LATENCIES
        },
        "error_samples": ERROR_SAMPLES,
        "acked": {user: {str(k): v for k, v in items.items()} for user, items in ACKED.items()},
        "uncertain": {user: sorted(items) for user, items in UNCERTAIN.items() if items},
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "distinct_recommendation_users": len(RECS_ASKED),
    }
    Path(CONFIG["out"]).write_text(json.dumps(result), encoding="utf-8")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


class HealthUser(FastHttpUser):
    """``GET /api/v1/health/``, anonymous."""

    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/api/v1/health/", name="health")


class RecommendationsUser(FastHttpUser):
    """``GET /api/v1/me/recommendations/?n=10`` as a random user of ``tokens`` each time."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random(f"{CONFIG['seed']}-recs-{next(_recs_slots)}")

    @task
    def recommendations(self) -> None:
        _, key = self.rng.choice(TOKENS)
        RECS_ASKED.add(key)
        self.client.get("/api/v1/me/recommendations/?n=10", headers=_auth(key), name="recommendations")


class MixedUser(FastHttpUser):
    """One ML-100K user of its own: 90 % reads (recommendations, item detail, items list), 10 % rating writes."""

    wait_time = constant(0)

    def on_start(self) -> None:
        slot = next(_mixed_slots)
        if slot >= len(MIXED_TOKENS):
            raise RuntimeError(f"more MixedUsers than mixed_tokens ({len(MIXED_TOKENS)})")
        self.username, key = MIXED_TOKENS[slot]
        self.headers = _auth(key)
        self.rng = random.Random(f"{CONFIG['seed']}-mixed-{slot}")

    @task(30)
    def recommendations(self) -> None:
        self.client.get("/api/v1/me/recommendations/?n=10", headers=self.headers, name="recommendations")

    @task(30)
    def item_detail(self) -> None:
        self.client.get(f"/api/v1/items/{self.rng.choice(ITEMS)}/", headers=self.headers, name="item detail")

    @task(30)
    def items_list(self) -> None:
        page = self.rng.randint(1, ITEM_PAGES)
        self.client.get(f"/api/v1/items/?page={page}", headers=self.headers, name="items list")

    @task(10)
    def rate(self) -> None:
        item, score = self.rng.choice(ITEMS), self.rng.choice(SCORES)
        # Unknown until answered: a user stopped mid-request (past --stop-timeout) leaves it so.
        self._remember(item, None)
        response = self.client.put(
            f"/api/v1/ratings/{item}/", json={"score": score}, headers=self.headers, name="rating write"
        )
        self._remember(item, score if 200 <= (response.status_code or 0) < 300 else None)

    def _remember(self, item: int, score: float | None) -> None:
        """``score`` acknowledged for ``item``, or None: the item's stored score is now unknown."""
        if score is None:
            UNCERTAIN[self.username].add(item)
            ACKED[self.username].pop(item, None)
        else:
            UNCERTAIN[self.username].discard(item)
            ACKED[self.username][item] = score
