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
    readonly_fields = ["judged_on", *(f.name for f in ModelVersion._meta.fields)]
    actions = ["activate"]

    @admin.display(description="Holdout metric")
    def gate_metric(self, version: ModelVersion) -> str:
        from .services import GATE_METRIC

        metric, _ = GATE_METRIC[version.kind]
        value = version.metrics.get(metric)
        return "—" if value is None else f"{metric} {value:.4f}"

    @admin.display(description="Judged on")
    def judged_on(self, version: ModelVersion) -> str:
        """The promotion gate's evidence in one line: the holdout and the live configuration's score."""
        from .services import GATE_METRIC

        holdout = (version.evaluation or {}).get("holdout")
        if not holdout:
            return "—"
        metric, _ = GATE_METRIC[version.kind]
        text = (
            f"seed {holdout['seed']}, {holdout['fraction']:.0%} of each user's ratings held out "
            f"({holdout['test_ratings']} ratings; ranking on {holdout['users_sampled']} users), "
            f"data up to {holdout['watermark']}"
        )
        judged = version.evaluation.get("incumbent")
        if not judged:
            return text + "; no live version to compare with"
        value = (judged.get("metrics") or {}).get(metric)
        score = "could not be evaluated" if value is None else f"{metric} {value:.4f}"
        how = "refit on this holdout" if judged.get("refitted") else "same configuration"
        return text + f"; live version #{judged['version']} ({judged['algorithm']}, {how}): {score}"

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
