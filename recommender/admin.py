"""Model versions in the admin: read only, metrics as tables, the live version kept.

Versions come from training runs only, so there is nothing to add or edit: the
change page is a view page (no Save buttons). Activating, rolling back and
retraining happen on the staff dashboard (``/dashboard/``, linked from the
changelist and every admin page) or through the "activate" action here.
A live version (or one still training) cannot be deleted: the admin refuses
with a message saying what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import ItemFactor, ItemNeighbor, ModelVersion, UserFactor, VersionStatus

#: Fields shown as tables instead of JSON (they are computed displays below).
TABLE_FIELDS = ["metrics_table", "judged_on", "hyperparameters_table", "timings_table"]


def deletion_refused(version: ModelVersion) -> str | None:
    """Why ``version`` must not be deleted now, or None when it may be."""
    if version.status == VersionStatus.ACTIVE:
        return (
            f"#{version.pk} ({version.algorithm}) is the live {version.kind} model and was not deleted. "
            "Make another version live first (activate one, or roll back, on the dashboard), then delete it."
        )
    if version.status == VersionStatus.TRAINING:
        return (
            f"#{version.pk} ({version.algorithm}) is still training and was not deleted: "
            "wait until its run ends."
        )
    return None


def _number(value: Any, decimals: int = 4) -> str:
    if value is None:
        return "not a finite number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{decimals}f}"


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]]) -> SafeString:
    """A small HTML table; every cell is escaped."""
    header = format_html_join("", "<th scope='col'>{}</th>", ((h,) for h in head))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html(
        '<table class="readonly-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', header, body
    )


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
    fieldsets = [
        (None, {"fields": ["kind", "algorithm", "status", "stage", "progress", "error", "task_id"]}),
        ("Holdout evaluation", {"fields": ["metrics_table", "judged_on"]}),
        ("Configuration", {"fields": ["hyperparameters_table"]}),
        ("Trained on", {"fields": ["n_users", "n_items", "n_ratings", "data_watermark", "exported_at"]}),
        ("Serving", {"fields": ["global_mean", "rating_min", "rating_max", "fold_in_failures"]}),
        ("Timing", {"fields": ["timings_table", "created_at", "finished_at", "activated_at"]}),
    ]
    readonly_fields = [*TABLE_FIELDS, *(f.name for f in ModelVersion._meta.fields)]
    actions = ["activate", "delete_selected"]

    # ---- read-only displays ------------------------------------------------------------

    @admin.display(description="Holdout metric")
    def gate_metric(self, version: ModelVersion) -> str:
        from .services import GATE_METRIC

        metric, _ = GATE_METRIC[version.kind]
        value = version.metrics.get(metric)
        return "—" if value is None else f"{metric} {value:.4f}"

    @admin.display(description="Holdout metrics")
    def metrics_table(self, version: ModelVersion) -> str:
        """This version's holdout metrics beside the live configuration's on the same holdout."""
        from .services import GATE_METRIC

        metrics = version.metrics or {}
        if not metrics:
            return "—"
        gate, higher_is_better = GATE_METRIC[version.kind]
        judged = (version.evaluation or {}).get("incumbent") or {}
        theirs = judged.get("metrics") or {}
        head = ["Metric", "This version"]
        if theirs:
            head.append(f"Live #{judged.get('version')} ({judged.get('algorithm')}) on the same holdout")
        rows = []
        for name, value in metrics.items():
            decimals = 0 if name == "n_users" else 4
            label = name
            if name == gate:
                label += f" — promotion gate ({'higher' if higher_is_better else 'lower'} is better)"
            elif name == "n_users":
                label = "users evaluated"
            row = [label, _number(value, decimals)]
            if theirs:
                row.append(_number(theirs.get(name), decimals) if name in theirs else "—")
            rows.append(row)
        return _table(head, rows)

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

    @admin.display(description="Hyperparameters")
    def hyperparameters_table(self, version: ModelVersion) -> str:
        params = version.hyperparameters or {}
        return _table(["Parameter", "Value"], params.items()) if params else "—"

    @admin.display(description="Seconds per stage")
    def timings_table(self, version: ModelVersion) -> str:
        timings = version.timings or {}
        if not timings:
            return "—"
        rows = [(stage, _number(seconds, 2)) for stage, seconds in timings.items()]
        total = sum(s for s in timings.values() if isinstance(s, int | float))
        return _table(["Stage", "Seconds"], [*rows, ("total", _number(float(total), 2))])

    # ---- permissions: read only, no adding ---------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training runs only

    def has_change_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        # Every field is read only: the change page becomes a view page, without Save buttons.
        return False

    def has_activate_permission(self, request: HttpRequest) -> bool:
        """Who may run the "activate" action: whoever may change model versions."""
        return super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        # Hides the change page's Delete link for a live version; asking anyway is refused below.
        if obj is not None and deletion_refused(obj):
            return False
        return super().has_delete_permission(request, obj)

    # ---- actions --------------------------------------------------------------------------

    @admin.action(
        permissions=["activate"], description="Activate the selected version (passes the promotion gate)"
    )
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        from .services import PromotionRefused, model_version_activate  # loads the engine only when used

        for version in queryset:
            try:
                model_version_activate(version=version)
                self.message_user(request, f"#{version.pk} is now active", messages.SUCCESS)
            except (ValueError, PromotionRefused) as exc:
                self.message_user(request, str(exc), messages.ERROR)

    @admin.action(permissions=["delete"], description="Delete selected model versions (never a live one)")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        """Django's "delete selected", refused as a whole if a live or training version is selected."""
        with transaction.atomic():
            # Locked until deleted: an activation cannot make one of them live meanwhile.
            versions = list(queryset.select_for_update())
            refusals = [reason for reason in map(deletion_refused, versions) if reason]
            for reason in refusals:
                self.message_user(request, reason, messages.ERROR)
            if refusals:
                return None
            return django_delete_selected(self, request, queryset)  # type: ignore[no-any-return]

    # ---- deleting one version ---------------------------------------------------------------

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Refuse, with a message, to delete the live version (or one still training)."""
        try:
            pk = int(unquote(object_id))
        except ValueError:
            return super().delete_view(request, object_id, extra_context)  # the admin's "not found"
        with transaction.atomic():
            version = ModelVersion.objects.select_for_update().filter(pk=pk).first()
            reason = deletion_refused(version) if version is not None else None
            if reason:
                self.message_user(request, reason, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:recommender_modelversion_change", args=[pk]))
            return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(
        self, objs: Iterable[ModelVersion], request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """What deleting ``objs`` removes, counted per table: the default lists every one of a
        version's factor rows (100,000s on a real catalog) on the confirmation page."""
        versions = list(objs)
        pks = [v.pk for v in versions]
        counts = {
            "user factors": UserFactor.objects.filter(version_id__in=pks).count(),
            "item factors": ItemFactor.objects.filter(version_id__in=pks).count(),
            "item neighbours": ItemNeighbor.objects.filter(version_id__in=pks).count(),
        }
        summary = ", ".join(f"{n:,} {name}" for name, n in counts.items() if n) or "no stored rows"
        to_delete: list[Any] = [str(v) for v in versions] + [f"and their cached tables: {summary}"]
        model_count = {"model versions": len(versions), **{k: n for k, n in counts.items() if n}}
        perms_needed = set() if super().has_delete_permission(request) else {"model version"}
        return to_delete, model_count, perms_needed, []
