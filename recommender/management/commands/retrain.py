"""Train model versions from the ratings in the database and activate them."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratings.models import Rating
from recommender.engine.registry import parse_params
from recommender.export import ratings_export_shared
from recommender.locks import TrainingAlreadyRunning
from recommender.models import ModelKind, ModelVersion, VersionStatus
from recommender.services import (
    NothingToTrain,
    PromotionRefused,
    algorithm_kind,
    default_algorithm,
    model_train,
)
from recommender.spark import BACKENDS, backend_algorithm


class Command(BaseCommand):
    help = (
        "Retrain models from the database into factor tables and activate them if they pass the "
        "promotion gate. Without --algorithm: the default rating, ranking and similarity models."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--algorithm", action="append", default=[], help="e.g. explicit_als (repeatable)")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="hyperparameter override, e.g. --param factors=32 (repeatable)",
        )
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="queue a Celery task instead of training in this process",
        )
        parser.add_argument(
            "--force", action="store_true", help="activate even if the promotion gate refuses"
        )
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            default=None,
            help="where factor models train for this run: local, or spark (explicit_als and "
            "implicit_als train as spark_als and spark_implicit_als on SPARK_MASTER); "
            "default: TASTEBASE_TRAINING_BACKEND",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="only train kinds that have no active version yet (used by make demo)",
        )

    def handle(
        self,
        *args: Any,
        algorithm: list[str],
        param: list[str],
        run_async: bool,
        force: bool,
        if_missing: bool = False,
        backend: str | None = None,
        **options: Any,
    ) -> None:
        if run_async and backend == "local":
            raise CommandError(
                "--backend local cannot be combined with --async: the worker trains with its own "
                "TASTEBASE_TRAINING_BACKEND; train in this process instead (drop --async)"
            )
        try:
            params = parse_params(param)
            if algorithm:
                jobs = [(algorithm_kind(a), a) for a in algorithm]
            else:
                total = Rating.objects.count()  # counted once for the large-catalog rule of every kind
                jobs = [(kind, default_algorithm(kind, ratings=total)) for kind in ModelKind.values]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if if_missing:
            active = set(
                ModelVersion.objects.filter(status=VersionStatus.ACTIVE).values_list("kind", flat=True)
            )
            for kind, name in jobs:
                if kind in active:
                    self.stdout.write(f"{kind}: an active version exists; skipping {name}")
            jobs = [(kind, name) for kind, name in jobs if kind not in active]
        if params and len(jobs) > 1:
            raise CommandError("--param needs exactly one --algorithm")
        failures = 0
        with ratings_export_shared():  # the kinds of this run read the ratings table once
            for kind, name in jobs:
                if run_async:
                    # The worker applies its own backend setting; --backend spark sends the Spark names.
                    queued = backend_algorithm(name, backend=backend)
                    task_id = self._enqueue(kind, queued, params, force)
                    self.stdout.write(f"queued {queued} ({kind}) as task {task_id}")
                    continue
                failures += self._train(kind, name, params, force, backend)
        if failures:
            raise CommandError(f"{failures} of {len(jobs)} training run(s) did not activate a new version")

    def _enqueue(self, kind: str, algorithm: str, params: dict[str, Any], force: bool) -> str:
        """Queue one training task; an unreachable broker is a CommandError at once, not a hang."""
        from recommender.tasks import BrokerUnavailable, retrain_enqueue

        try:
            return retrain_enqueue(kind=kind, algorithm=algorithm, params=params, force=force)
        except BrokerUnavailable as exc:
            raise CommandError(
                f"could not queue {algorithm} ({kind}): {exc}. Start it, or train in this process without --async."
            ) from None

    def _train(
        self, kind: str, algorithm: str, params: dict[str, Any], force: bool, backend: str | None = None
    ) -> int:
        algorithm = backend_algorithm(algorithm, backend=backend)
        bar = self._progress_bar(f"{algorithm}")
        try:
            version = model_train(
                kind=kind,
                algorithm=algorithm,
                params=params,
                force=force,
                progress=bar.update if bar else None,
                backend=backend,
            )
        except (TrainingAlreadyRunning, NothingToTrain) as exc:
            self.stderr.write(self.style.ERROR(str(exc)))
            return 1
        except PromotionRefused as exc:
            self.stderr.write(self.style.WARNING(str(exc)))
            return 1
        except Exception as exc:
            self.stderr.write(
                self.style.ERROR(f"{algorithm} failed: {exc}; the active version keeps serving")
            )
            return 1
        finally:
            if bar:
                bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"#{version.pk} {algorithm} ({kind}) is {version.status}: "
                f"{json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in version.metrics.items()})} "
                f"timings {version.timings}"
            )
        )
        return 0

    def _progress_bar(self, label: str) -> _Bar | None:
        return _Bar(label) if sys.stderr.isatty() else None


class _Bar:
    """A tqdm bar driven by the pipeline's (stage, percent) reports."""

    def __init__(self, label: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=100, desc=label, unit="%", file=sys.stderr, leave=False)

    def update(self, stage: str, percent: int) -> None:
        self.bar.set_postfix_str(stage)
        self.bar.update(max(percent - self.bar.n, 0))

    def close(self) -> None:
        self.bar.close()
