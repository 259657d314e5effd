from __future__ import annotations

from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        # Fold-in on every rating change: ratings.services calls its listeners
        # after the change commits (site, API, admin alike).
        from ratings.services import rating_change_listeners

        from .services import user_factors_refresh

        if user_factors_refresh not in rating_change_listeners:
            rating_change_listeners.append(user_factors_refresh)
