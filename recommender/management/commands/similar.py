"""Print the items most similar to one item."""

from __future__ import annotations

import json as _json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import Item
from recommender.selectors import similar_items


class Command(BaseCommand):
    help = "Show the items most similar to one: similar --item ID [-n 10] [--json]"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--item", type=int, required=True, help="item id (database id)")
        parser.add_argument("-n", type=int, default=10)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, item: int, n: int, json: bool, **options: Any) -> None:
        target = Item.objects.filter(pk=item).first()
        if target is None:
            raise CommandError(f"there is no item with id {item}")
        rows = [
            {"item_id": s.item_id, "title": str(s.item), "score": s.score}
            for s in similar_items(item=target, limit=n)
        ]
        if json:
            self.stdout.write(_json.dumps(rows))
            return
        self.stdout.write(f"Like {target}:")
        for rank, row in enumerate(rows, 1):
            self.stdout.write(f"{rank:>3}. {row['score']:.3f}  {row['title']}")
