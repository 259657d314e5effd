from __future__ import annotations

from django.contrib import admin

from .models import Genre, Item


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    search_fields = ["name"]
    list_display = ["name"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["title", "year", "rating_count", "rating_mean", "source", "external_id"]
    list_filter = ["source", "genres"]
    search_fields = ["title", "=external_id"]
    autocomplete_fields = ["genres"]
    readonly_fields = ["rating_count", "rating_sum", "rating_mean", "created_at"]
    # Counting 20M-row tables on every changelist is the usual admin slowdown.
    show_full_result_count = False
    list_per_page = 50
