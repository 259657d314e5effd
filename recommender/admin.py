from __future__ import annotations

from django.contrib import admin, messages

from .models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "kind",
        "algorithm",
        "status",
        "stage",
        "progress",
        "n_ratings",
        "gate_metric",
        "fold_in_failures",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status", "algorithm"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

    @admin.display(description="Holdout metric")
    def gate_metric(self, version: ModelVersion) -> str:
        from .services import GATE_METRIC

        metric, _ = GATE_METRIC[version.kind]
        value = version.metrics.get(metric)
        return "—" if value is None else f"{metric} {value:.4f}"

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # versions come from training runs only

    @admin.action(description="Activate the selected version (passes the promotion gate)")
    def activate(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from .services import PromotionRefused, model_version_activate  # loads the engine only when used

        for version in queryset:
            try:
                model_version_activate(version=version)
                self.message_user(request, f"#{version.pk} is now active", messages.SUCCESS)
            except (ValueError, PromotionRefused) as exc:
                self.message_user(request, str(exc), messages.ERROR)
