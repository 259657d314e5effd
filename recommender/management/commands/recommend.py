"""Print a user's recommendations as the site would show them."""

from __future__ import annotations

import json as _json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.selectors import recommendations_for_user


class Command(BaseCommand):
    help = "Show the recommendations for one user: recommend --user USERNAME [-n 10] [--json]"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("-n", type=int, default=10)
        parser.add_argument("--genre", default=None)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, user: str, n: int, genre: str | None, json: bool, **options: Any) -> None:
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"there is no user {user!r}")
        recs = recommendations_for_user(user=account, limit=n, genre=genre)
        rows: list[dict[str, Any]] = [
            {
                "item_id": r.item_id,
                "title": str(r.item),
                "predicted_rating": r.predicted_rating,
                "score": r.score,
                "explanation": [str(i) for i in r.explanation],
                "source": r.source,
            }
            for r in recs
        ]
        if json:
            self.stdout.write(_json.dumps(rows))
            return
        for rank, row in enumerate(rows, 1):
            stars = f"{row['predicted_rating']:.1f}★" if row["predicted_rating"] is not None else "  -  "
            because = f"  because you liked {', '.join(row['explanation'])}" if row["explanation"] else ""
            self.stdout.write(f"{rank:>3}. {stars}  {row['title']}  [{row['source']}]{because}")
