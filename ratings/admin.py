from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin

from .lists import hidden_add, hidden_remove, watchlist_add, watchlist_remove
from .models import Hidden, Rating, Watchlist
from .services import rating_delete, rating_upsert


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "item", "score", "updated_at"]
    list_filter = ["score"]
    search_fields = ["user__username", "item__title"]
    autocomplete_fields = ["user", "item"]
    list_select_related = ["user", "item"]
    ordering = ["-updated_at", "-id"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False
    list_per_page = 50

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        # Route admin edits through the services so item aggregates stay right.
        if change and ("item" in form.changed_data or "user" in form.changed_data):
            old = Rating.objects.select_related("user", "item").get(pk=obj.pk)
            rating_delete(user=old.user, item=old.item)
        saved = rating_upsert(user=obj.user, item=obj.item, score=obj.score)
        obj.pk = saved.pk
        obj.created_at, obj.updated_at = saved.created_at, saved.updated_at

    def delete_model(self, request, obj):  # type: ignore[no-untyped-def]
        rating_delete(user=obj.user, item=obj.item)

    def delete_queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        for rating in queryset.select_related("user", "item"):
            rating_delete(user=rating.user, item=rating.item)


class _UserListAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A per-user list (hidden items, watchlist); writes go through ``ratings.lists``."""

    list_display = ["user", "item", "created_at"]
    search_fields = ["user__username", "item__title"]
    autocomplete_fields = ["user", "item"]
    list_select_related = ["user", "item"]
    ordering = ["-created_at", "-id"]
    readonly_fields = ["created_at"]
    show_full_result_count = False
    list_per_page = 50
    add: Callable[..., tuple[Any, bool]]
    remove: Callable[..., bool]

    # Through the services (hiding and un-hiding invalidate the user's cached lists).
    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if change:
            old = type(obj).objects.select_related("user", "item").get(pk=obj.pk)
            type(self).remove(user=old.user, item=old.item)
        saved, _ = type(self).add(user=obj.user, item=obj.item)
        obj.pk, obj.created_at = saved.pk, saved.created_at

    def delete_model(self, request, obj):  # type: ignore[no-untyped-def]
        type(self).remove(user=obj.user, item=obj.item)

    def delete_queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        for entry in queryset.select_related("user", "item"):
            type(self).remove(user=entry.user, item=entry.item)


@admin.register(Hidden)
class HiddenAdmin(_UserListAdmin):
    add = staticmethod(hidden_add)
    remove = staticmethod(hidden_remove)


@admin.register(Watchlist)
class WatchlistAdmin(_UserListAdmin):
    add = staticmethod(watchlist_add)
    remove = staticmethod(watchlist_remove)
