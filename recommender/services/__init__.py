"""The training pipeline and serving writes: ORM -> engine -> cached tables.

* :mod:`.training`: ``model_train`` (export, holdout fit, judging against the
  live configuration on the same holdout, refit, persist, activate);
* :mod:`.persistence`: writing a fitted model's tables;
* :mod:`.activation`: the promotion gate, activation with fencing, rollback, pruning;
* :mod:`.foldin`: a user's factors from their current ratings, after each rating
  change and for users who rated while a version trained.

Views, tasks and commands import from here; nothing here imports selectors.
"""

from __future__ import annotations

from .activation import (
    GATE_METRIC,
    PromotionRefused,
    model_version_activate,
    model_version_rollback,
    model_versions_prune,
)
from .foldin import user_factors_refresh, user_fold_in_version, version_fold_in_changed_users
from .training import NothingToTrain, algorithm_kind, default_algorithm, model_train, servable_algorithms

__all__ = [
    "GATE_METRIC",
    "NothingToTrain",
    "PromotionRefused",
    "algorithm_kind",
    "default_algorithm",
    "model_train",
    "model_version_activate",
    "model_version_rollback",
    "model_versions_prune",
    "servable_algorithms",
    "user_factors_refresh",
    "user_fold_in_version",
    "version_fold_in_changed_users",
]
