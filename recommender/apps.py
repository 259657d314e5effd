from __future__ import annotations

from django.apps import AppConfig


def _refresh_user(user_id: int) -> None:
    # Imported on first use: the engine (numba, scipy) is not needed to start
    # every management command or web process.
    from .services import user_factors_refresh

    user_factors_refresh(user_id)


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        # Fold-in on every rating change: ratings.services calls its listeners
        # after the change commits (site, API, admin alike).
        from ratings.services import rating_change_listeners

        if _refresh_user not in rating_change_listeners:
            rating_change_listeners.append(_refresh_user)

        from . import checks  # noqa: F401  (registers the system checks)
