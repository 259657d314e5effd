"""List model versions, activate one, or roll back to the previous one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.models import ModelKind, ModelVersion
from recommender.services import PromotionRefused, model_version_activate, model_version_rollback


class Command(BaseCommand):
    help = "modelversions [list | activate ID [--force] | rollback [--kind KIND] [--to ID]]"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", default="list", choices=["list", "activate", "rollback"])
        parser.add_argument("version_id", nargs="?", type=int)
        parser.add_argument("--kind", choices=ModelKind.values, default=ModelKind.RATING)
        parser.add_argument("--to", type=int, dest="to", help="rollback target version id")
        parser.add_argument(
            "--force", action="store_true", help="activate even if the promotion gate refuses"
        )

    def handle(
        self,
        *args: Any,
        action: str,
        version_id: int | None,
        kind: str,
        to: int | None,
        force: bool,
        **options: Any,
    ) -> None:
        try:
            if action == "list":
                self._list()
            elif action == "activate":
                if version_id is None:
                    raise CommandError("activate needs a version id: modelversions activate ID")
                version = ModelVersion.objects.filter(pk=version_id).first()
                if version is None:
                    raise CommandError(f"there is no model version #{version_id}")
                version = model_version_activate(version=version, force=force)
                self.stdout.write(
                    self.style.SUCCESS(f"#{version.pk} is now the active {version.kind} version")
                )
            else:
                version = model_version_rollback(kind=kind, version_id=to or version_id)
                self.stdout.write(
                    self.style.SUCCESS(f"rolled back: #{version.pk} is the active {kind} version")
                )
        except (ValueError, PromotionRefused) as exc:
            raise CommandError(str(exc)) from None

    def _list(self) -> None:
        header = f"{'id':>5}  {'kind':<10} {'algorithm':<14} {'status':<9} {'users':>7} {'items':>6} {'ratings':>9}  metrics"
        self.stdout.write(header)
        for v in ModelVersion.objects.order_by("-created_at", "-pk"):
            metrics = ", ".join(
                f"{k}={val:.4f}"
                for k, val in v.metrics.items()
                if isinstance(val, float) and k in {"rmse", "ndcg@10", "precision@10"}
            )
            judged = (v.evaluation or {}).get("incumbent") or {}
            against = ""
            if judged.get("version"):
                live_metrics = ", ".join(
                    f"{k}={val:.4f}"
                    for k, val in (judged.get("metrics") or {}).items()
                    if isinstance(val, float) and k in {"rmse", "ndcg@10"}
                )
                against = f"  vs #{judged['version']} on the same holdout: {live_metrics or 'n/a'}"
            failures = f"  fold-in failures: {v.fold_in_failures}" if v.fold_in_failures else ""
            self.stdout.write(
                f"{v.pk:>5}  {v.kind:<10} {v.algorithm:<14} {v.status:<9} {v.n_users:>7} {v.n_items:>6} "
                f"{v.n_ratings:>9}  {metrics}{against}{failures}"
                f"{'  error: ' + v.error.splitlines()[-1] if v.error else ''}"
            )
