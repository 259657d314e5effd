"""Offline evaluation of one algorithm on a train/test CSV pair (no database needed).

With ``--tune`` the hyperparameters are chosen first on a validation split
carved from ``--train`` only (``recommender.engine.tune.tune``); the chosen
configuration is then fitted on the whole training file and scored once on
``--test``, which the search never reads.
"""

from __future__ import annotations

import json as _json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.engine.evaluation import REPORT_KEYS, evaluate_algorithm, format_report, read_ratings_csv
from recommender.engine.registry import parse_params
from recommender.engine.tune import VALIDATION_FRACTION, TuneResult, format_params, parse_grid, tune


class Command(BaseCommand):
    help = (
        "Fit --algorithm on --train and report RMSE, MAE, P@10, R@10, NDCG@10, coverage and fit seconds "
        "on --test. CSVs have the header user,item,rating[,timestamp]. With --tune, hyperparameters "
        "are first chosen on a validation split of --train only and reported with the metrics."
    )
    requires_system_checks: list[str] = []  # works without a database or migrations

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", required=True, help="training ratings CSV")
        parser.add_argument("--test", required=True, help="test ratings CSV")
        parser.add_argument("--algorithm", required=True, help="e.g. explicit_als, implicit_als, item_knn")
        parser.add_argument(
            "--param", action="append", default=[], metavar="KEY=VALUE", help="fixed (with --tune: pinned)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        tuning = parser.add_argument_group("tuning (only with --tune)")
        tuning.add_argument(
            "--tune",
            action="store_true",
            help="choose hyperparameters on a validation split of --train, then test once",
        )
        tuning.add_argument(
            "--grid",
            action="append",
            default=[],
            metavar="KEY=V1,V2,...",
            help="search space, replacing the algorithm's default one (engine/tune.py SEARCH_SPACES)",
        )
        tuning.add_argument("--metric", help="validation metric (default: rmse; ndcg@10 for ranking-only)")
        tuning.add_argument("--n-iter", type=int, help="sample N candidates from the grid instead of all")
        tuning.add_argument(
            "--validation-fraction",
            type=float,
            default=VALIDATION_FRACTION,
            help=f"share of --train held out for validation (default {VALIDATION_FRACTION})",
        )
        tuning.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")

    def handle(
        self,
        *args: Any,
        train: str,
        test: str,
        algorithm: str,
        param: list[str],
        json: bool,
        tune: bool,
        grid: list[str],
        **options: Any,
    ) -> None:
        if not tune and (grid or options["metric"] or options["n_iter"]):
            raise CommandError("--grid, --metric and --n-iter only apply with --tune")
        if not Path(test).is_file():  # fail before a long search, not after it
            raise CommandError(f"{test}: no such file")
        try:
            params: dict[str, Any] = parse_params(param)
            train_rows = read_ratings_csv(train)
            tuned = self.search(algorithm, train_rows, params, grid, options) if tune else None
            if tuned is not None:
                params = tuned.params
            report: dict[str, Any] = dict(
                evaluate_algorithm(algorithm, params, train_rows, read_ratings_csv(test))
            )
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        if tuned is not None:
            report |= {
                "chosen_params": tuned.params,
                "validation_metric": tuned.metric,
                "validation_score": tuned.validation_score,
                "search": [] if tuned.search is None else tuned.search.results,
            }
        self.stdout.write(_json.dumps(report) if json else self.describe(report, tuned))

    def search(
        self,
        algorithm: str,
        train_rows: Any,
        pinned: dict[str, Any],
        grid: list[str],
        options: dict[str, Any],
    ) -> TuneResult:
        """The search on the training rows alone; the refit on all of them is ``evaluate_algorithm``'s."""
        return tune(
            train_rows,
            algorithm,
            parse_grid(grid) if grid else None,
            metric=options["metric"],
            n_iter=options["n_iter"],
            fixed_params=pinned,
            validation_fraction=options["validation_fraction"],
            random_state=options["seed"],
            refit=False,
        )

    def describe(self, report: dict[str, Any], tuned: TuneResult | None) -> str:
        metrics = {key: value for key, value in report.items() if key in REPORT_KEYS}
        if tuned is None:
            return format_report(metrics)
        if tuned.search is None:
            head = f"nothing to tune: {format_params(tuned.params)} (a single candidate)"
        else:
            head = (
                f"chosen on validation {tuned.metric} ({tuned.search.n_validation} of the training "
                f"ratings held out): {format_params(tuned.params)}\n"
                f"validation {tuned.metric}  {tuned.validation_score:.4f}  "
                f"(best of {tuned.n_candidates} candidates)\n\n{tuned.table()}\n\n"
                "test, once, after refitting on all of --train:"
            )
        return f"{head}\n{format_report(metrics)}"
