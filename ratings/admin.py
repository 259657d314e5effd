from __future__ import annotations

from django.contrib import admin

from .models import Rating
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
