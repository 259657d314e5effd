"""Offline evaluation of one algorithm on a train/test CSV pair (no database needed)."""

from __future__ import annotations

import json as _json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.engine.evaluation import evaluate_algorithm, format_report, read_ratings_csv
from recommender.engine.registry import parse_params


class Command(BaseCommand):
    help = (
        "Fit --algorithm on --train and report RMSE, MAE, P@10, R@10, NDCG@10, coverage and fit seconds "
        "on --test. CSVs have the header user,item,rating[,timestamp]."
    )
    requires_system_checks: list[str] = []  # works without a database or migrations

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", required=True, help="training ratings CSV")
        parser.add_argument("--test", required=True, help="test ratings CSV")
        parser.add_argument("--algorithm", required=True, help="e.g. explicit_als, implicit_als, item_knn")
        parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(
        self, *args: Any, train: str, test: str, algorithm: str, param: list[str], json: bool, **options: Any
    ) -> None:
        try:
            report = evaluate_algorithm(
                algorithm, parse_params(param), read_ratings_csv(train), read_ratings_csv(test)
            )
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_json.dumps(report) if json else format_report(report))
