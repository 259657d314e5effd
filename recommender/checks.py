"""System checks: each configured default model can serve the kind it is set for.

Settings already reject names the engine's registry does not know; whether a
model fills the rating, ranking or similarity tables is known only by its class
(``serving_kind``), so it is checked here, once the apps are loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from recommender.engine.registry import ALGORITHM_PATHS, get_algorithm

#: kind -> the environment variable that chooses its model (see config/settings.py).
VARIABLES = {
    "rating": "TASTEBASE_RATING_ALGORITHM",
    "ranking": "TASTEBASE_RANKING_ALGORITHM",
    "similarity": "TASTEBASE_SIMILARITY_ALGORITHM",
}


def _serving_kind(name: str) -> str | None:
    return getattr(get_algorithm(name), "serving_kind", None)


def _able_to_serve(kind: str) -> list[str]:
    able = []
    for name in sorted(ALGORITHM_PATHS):
        try:
            if _serving_kind(name) == kind:
                able.append(name)
        except ImportError:  # an optional model that fails to import only loses its own name
            continue
    return able


@register()
def default_algorithms_check(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    configured = [
        (kind, name, VARIABLES.get(kind, "TASTEBASE_DEFAULT_ALGORITHMS"))
        for kind, name in settings.TASTEBASE_DEFAULT_ALGORITHMS.items()
    ]
    configured += [
        (kind, name, VARIABLES.get(kind, "TASTEBASE_LARGE_CATALOG_ALGORITHMS") + "_LARGE")
        for kind, name in settings.TASTEBASE_LARGE_CATALOG_ALGORITHMS.items()
    ]
    for kind, name, variable in configured:
        try:
            serves = _serving_kind(name)
        except (ValueError, ImportError) as exc:
            errors.append(Error(f"{variable}={name!r}: {exc}", id="recommender.E001"))
            continue
        if serves != kind:
            able = _able_to_serve(kind)
            errors.append(
                Error(
                    f"{variable}={name!r} cannot serve {kind} "
                    f"({'it serves ' + serves if serves else 'the site cannot serve it at all'})",
                    hint=f"Set {variable} to one of: {', '.join(able) or '(none)'}.",
                    id="recommender.E002",
                )
            )
    return errors
