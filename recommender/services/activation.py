"""Activation behind the promotion gate, with fencing; rollback; pruning.

The gate fails closed: a candidate whose gate metric is missing or not
finite is refused, and it is compared with the live version only on the
holdout both were judged on in the same run (``ModelVersion.evaluation``).
Inside the activation transaction the run re-checks that it still owns the
training lock (fencing), that the candidate is still ``ready`` and that its
tables are not empty; users whose ratings changed after the candidate's
export are folded in before it serves.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recommender.engine.interactions import Interactions

from ..locks import TrainingLockHandle
from ..models import ModelKind, ModelVersion, VersionStatus
from .foldin import version_fold_in_changed_users
from .persistence import version_rows_delete, version_tables_empty

#: The holdout metric each kind is judged by, and whether higher is better.
GATE_METRIC: dict[str, tuple[str, bool]] = {
    ModelKind.RATING: ("rmse", False),
    ModelKind.RANKING: ("ndcg@10", True),
    ModelKind.SIMILARITY: ("ndcg@10", True),
}

#: A rating stamped up to this long before the export started may still be missing
#: from it (its transaction committed after the export's snapshot): check those too.
EXPORT_SLACK = timedelta(seconds=60)


class PromotionRefused(Exception):
    """The promotion gate kept a trained version from replacing the active one."""

    def __init__(self, version: ModelVersion, message: str) -> None:
        super().__init__(message)
        self.version = version


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def promotion_gate(candidate: ModelVersion, current: ModelVersion | None) -> str | None:
    """None if ``candidate`` may become active (replacing ``current``); else why not."""
    metric, higher_is_better = GATE_METRIC[candidate.kind]
    new = candidate.metrics.get(metric)
    if not _finite(new):
        return (
            f"promotion gate refused version #{candidate.pk}: its holdout {metric} is "
            f"{'missing' if new is None else new} (not a finite number), so it cannot be trusted; "
            "use --force to activate it anyway"
        )
    if current is None:
        return None
    judged = (candidate.evaluation or {}).get("incumbent") or {}
    if judged.get("version") != current.pk:
        against = f"#{judged['version']}" if judged.get("version") else "no live version"
        return (
            f"promotion gate refused version #{candidate.pk}: it was judged against {against}, but "
            f"#{current.pk} is active now, so the two were never compared on the same holdout; "
            "retrain, or use --force"
        )
    old = (judged.get("metrics") or {}).get(metric)
    if not _finite(old):
        return None  # the live configuration could not be evaluated on this holdout: nothing to beat
    margin = settings.TASTEBASE_PROMOTION_MARGIN
    worse_by = (old - new) if higher_is_better else (new - old)
    if worse_by > margin:
        return (
            f"promotion gate refused version #{candidate.pk}: holdout {metric} {new:.4f} is worse than "
            f"active version #{current.pk}'s configuration's {old:.4f} on the same holdout by "
            f"{worse_by:.4f} (allowed margin {margin}); use --force to activate it anyway"
        )
    return None


def model_version_activate(
    *,
    version: ModelVersion,
    force: bool = False,
    lock: TrainingLockHandle | None = None,
    trained_on: Interactions | None = None,
) -> ModelVersion:
    """Make ``version`` the active one of its kind, in one transaction.

    ``force`` skips the gate but never the emptiness check. ``lock`` (a
    training run's handle) is re-checked inside the transaction, so a run
    that lost its lock cannot activate. ``trained_on`` (the exported ratings,
    when the caller still has them) lets the fold-in pass skip users whose
    ratings the version already learned.
    """
    activatable = (VersionStatus.READY, VersionStatus.RETIRED, VersionStatus.ACTIVE)
    with transaction.atomic():
        candidate = ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
        if candidate is None or candidate.status not in activatable:
            status = "deleted" if candidate is None else candidate.status
            raise ValueError(
                f"version #{version.pk} is {status}; only ready or retired versions can be activated"
            )
        if lock is not None:
            lock.ensure_held(f"activating version #{candidate.pk}")
        empty = version_tables_empty(candidate)
        if empty:
            raise ValueError(f"{empty}; it can never be activated")
        current = (
            ModelVersion.objects.select_for_update()
            .filter(kind=candidate.kind, status=VersionStatus.ACTIVE)
            .exclude(pk=candidate.pk)
            .first()
        )
        if not force:
            reason = promotion_gate(candidate, current)
            if reason:
                raise PromotionRefused(candidate, reason)
        if candidate.kind != ModelKind.SIMILARITY and candidate.exported_at is not None:
            # Ratings made after the export (during training) reach the version before it serves.
            since = candidate.exported_at - EXPORT_SLACK
            pass_started = timezone.now()
            version_fold_in_changed_users(version=candidate, since=since, trained_on=trained_on)
            # A rating committed while this pass ran may have been folded into the
            # old version only: one more pass once the new version is live.
            catch_up = candidate

            def _catch_up() -> None:
                version_fold_in_changed_users(
                    version=catch_up, since=pass_started - EXPORT_SLACK, trained_on=trained_on
                )

            transaction.on_commit(_catch_up, robust=True)
        if current is not None:
            # Retire first: at most one active version per kind is a database constraint.
            ModelVersion.objects.filter(pk=current.pk).update(status=VersionStatus.RETIRED)
        ModelVersion.objects.filter(pk=candidate.pk).update(
            status=VersionStatus.ACTIVE, activated_at=timezone.now()
        )
    version.refresh_from_db()
    return version


def model_version_rollback(*, kind: str, version_id: int | None = None) -> ModelVersion:
    """Re-activate ``version_id``, or the most recently retired version of ``kind``."""
    candidates = ModelVersion.objects.filter(
        kind=kind, status__in=[VersionStatus.READY, VersionStatus.RETIRED]
    )
    target = (
        candidates.filter(pk=version_id).first()
        if version_id is not None
        else candidates.filter(status=VersionStatus.RETIRED).order_by("-activated_at", "-pk").first()
    )
    if target is None:
        raise ValueError(f"no ready or retired {kind} version to roll back to")
    return model_version_activate(version=target, force=True)


def model_versions_prune(*, kind: str, keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` inactive versions of ``kind``; never the active one."""
    keep = settings.TASTEBASE_KEEP_VERSIONS if keep is None else keep
    inactive = ModelVersion.objects.filter(kind=kind).exclude(
        status__in=[VersionStatus.ACTIVE, VersionStatus.TRAINING]
    )
    doomed = list(inactive.order_by("-created_at", "-pk").values_list("pk", flat=True)[keep:])
    for pk in doomed:
        version_rows_delete(pk)
    ModelVersion.objects.filter(pk__in=doomed).delete()
    return len(doomed)
