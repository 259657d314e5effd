"""Read-side queries about ratings."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from catalog.models import Item

from .models import Rating


def rating_for(*, user: User | AnonymousUser, item: Item) -> Rating | None:
    if not user.is_authenticated:
        return None
    return Rating.objects.filter(user_id=user.pk, item=item).first()


def ratings_of_user(*, user: User) -> QuerySet[Rating]:
    """A user's ratings, most recently changed first."""
    return Rating.objects.filter(user=user).select_related("item").order_by("-updated_at", "-id")
