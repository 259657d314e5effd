"""Create (or reset) the demo login, give it a real rating history, and print its credentials."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Item
from ratings.models import Rating
from ratings.selectors import demo_history_source
from ratings.services import ratings_bulk_upsert


class Command(BaseCommand):
    help = (
        "Create or reset the demo user (name from TASTEBASE_DEMO_USERNAME), copy an ML-100K user's "
        "ratings to it so For you is personal at once, and print its password."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default=settings.TASTEBASE_DEMO_USERNAME)
        parser.add_argument("--password", default=None, help="default: a new random password")
        parser.add_argument(
            "--ratings-from",
            default="auto",
            help="copy this user's ratings ('auto': a well-rounded ML-100K user; 'none': no ratings)",
        )

    def handle(
        self, *args: Any, username: str, password: str | None, ratings_from: str, **options: Any
    ) -> None:
        password = password or secrets.token_urlsafe(9)
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.save(update_fields=["password"])
        verb = "Created" if created else "Reset"
        copied = self._copy_history(user, ratings_from)
        self.stdout.write(
            self.style.SUCCESS(f"{verb} demo login — username: {username}  password: {password}{copied}")
        )

    def _copy_history(self, user: Any, ratings_from: str) -> str:
        if ratings_from == "none" or Rating.objects.filter(user=user).exists():
            return ""
        source = demo_history_source() if ratings_from == "auto" else ratings_from
        if source is None:
            return " (no ML-100K users loaded: no ratings copied)"
        rows = list(Rating.objects.filter(user__username=source).values_list("item_id", "score"))
        if not rows:
            raise CommandError(f"there is no user {source!r} with ratings to copy")
        items = Item.objects.in_bulk([pk for pk, _ in rows])
        created, _ = ratings_bulk_upsert(user=user, rows=[(items[pk], score) for pk, score in rows])
        return f" ({created} ratings copied from {source})"
