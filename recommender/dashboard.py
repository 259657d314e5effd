"""The staff dashboard at ``/dashboard/``: model versions, retraining with live progress,
and the ratings data at a glance.

Views are adapters: they parse a form, call one service or selector — the same ones
the staff API (:mod:`recommender.api`) calls, so the two cannot disagree — and render.
Every action is an ordinary POST form that works without JavaScript: a success
redirects back with a message, a refusal re-renders the page with its reason. With
htmx (``request.htmx``) the same POST answers with only the fragment to swap in, plus
out-of-band swaps for whatever else on the page it changed (the live-model card).

Staff only: anonymous visitors are sent to the login page, signed-in users who are
not staff get a 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails
from rest_framework import exceptions

from config.celery import app as celery_app
from config.typealias import AuthenticatedHttpRequest

from .api import retrain_request
from .dashboard_selectors import (
    KindOverview,
    coldest_items,
    data_totals,
    fold_in_failure_versions,
    kind_overview,
    kind_overviews,
    live_version,
    most_active_users,
    rating_distribution,
    ratings_per_day,
)
from .engine.registry import make_model, parse_params
from .models import ModelKind, ModelVersion, VersionStatus
from .selectors import training_task_status
from .services import GATE_METRIC, PromotionRefused, model_version_activate, model_version_rollback
from .services import servable_algorithms as servable_algorithm_kinds
from .services.activation import promotion_gate
from .templatetags.charts import ChartDatum

logger = logging.getLogger(__name__)


class DashboardRequest(AuthenticatedHttpRequest):
    """A request that passed :func:`staff_required` (django-htmx's middleware sets ``htmx``)."""

    htmx: HtmxDetails


View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Staff only: anonymous visitors go to the login page (a whole-page redirect for an
    htmx request, so the login form is not swapped into a fragment); others get a 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            htmx: HtmxDetails | None = getattr(request, "htmx", None)
            if htmx:
                page = htmx.current_url_abs_path or reverse("dashboard:index")
                return HttpResponseClientRedirect(redirect_to_login(page).url)
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The dashboard is for staff.")
        return view(request, *args, **kwargs)

    return guarded


# ---- forms -----------------------------------------------------------------------------------


class RetrainForm(forms.Form):
    """Kind, algorithm and a few hyperparameters; the registry checks them (``retrain_request``)."""

    kind = forms.ChoiceField(
        choices=[(kind, kind.capitalize()) for kind in ModelKind.values], initial=ModelKind.RANKING
    )
    algorithm = forms.ChoiceField(required=False)
    params = forms.CharField(
        required=False,
        max_length=500,
        label="Parameters",
        help_text="key=value pairs separated by spaces; blank: the algorithm's defaults",
        widget=forms.TextInput(attrs={"placeholder": "factors=32 iterations=10", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        by_kind: dict[str, list[tuple[str, str]]] = {kind: [] for kind in ModelKind.values}
        for name, kind in sorted(servable_algorithm_kinds().items()):
            by_kind[kind].append((name, name))
        defaults = settings.TASTEBASE_DEFAULT_ALGORITHMS
        algorithm = self.fields["algorithm"]
        assert isinstance(algorithm, forms.ChoiceField)
        algorithm.choices = [
            ("", "Configured default"),
            *((kind.capitalize(), by_kind[kind]) for kind in ModelKind.values if by_kind[kind]),
        ]
        large = settings.TASTEBASE_LARGE_CATALOG_ALGORITHMS
        algorithm.help_text = " · ".join(
            f"{kind}: {defaults[kind]}"
            + (
                f" ({large[kind]} above {settings.TASTEBASE_LARGE_CATALOG_RATINGS:,} ratings)"
                if kind in large and large[kind] != defaults[kind]
                else ""
            )
            for kind in ModelKind.values
        )

    def clean_params(self) -> dict[str, str]:
        text: str = self.cleaned_data["params"]
        try:
            return parse_params(text.replace(",", " ").split())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class ActivateForm(forms.Form):
    force = forms.BooleanField(required=False)


class RollbackForm(forms.Form):
    kind = forms.ChoiceField(choices=ModelKind.choices)
    to = forms.IntegerField(required=False, min_value=1)


# ---- what the templates draw -------------------------------------------------------------------

#: The holdout metrics charted for each kind: (metric key, title, decimals).
CHARTED_METRICS: dict[str, list[tuple[str, str, int]]] = {
    ModelKind.RATING: [("rmse", "RMSE", 4), ("ndcg@10", "NDCG@10", 4), ("coverage", "Catalog coverage", 3)],
    ModelKind.RANKING: [("ndcg@10", "NDCG@10", 4), ("coverage", "Catalog coverage", 3)],
    ModelKind.SIMILARITY: [("ndcg@10", "NDCG@10", 4), ("coverage", "Catalog coverage", 3)],
}
#: Error metrics: the smaller the better (every other charted metric: the larger).
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


@dataclass(frozen=True)
class Notice:
    """The outcome of an action, shown in the panel it concerns."""

    level: str  # "success" or "error"
    text: str
    force_version: int | None = None  # the gate refused this version: offer "activate anyway"


@dataclass(frozen=True)
class MetricChart:
    title: str
    caption: str
    decimals: int
    points: list[ChartDatum]


@dataclass(frozen=True)
class VersionRow:
    version: ModelVersion
    gate_value: float | None
    params: str  # "factors=64 iterations=15"
    metrics: str  # "rmse 0.9022 · ndcg@10 0.0744 · ..."
    timings: str  # "export 0.3 s · fit 1.4 s · ..."
    action: str  # "activate" (ready), "rollback" (retired) or ""


@dataclass(frozen=True)
class KindPanel:
    overview: KindOverview
    gate_metric: str
    gate_caption: str  # "lower is better"
    charts: list[MetricChart]
    rows: list[VersionRow]
    notice: Notice | None = None

    @property
    def kind(self) -> str:
        return self.overview.kind

    @property
    def live_gate_value(self) -> float | None:
        live = self.overview.live
        return _metric(live, self.gate_metric) if live is not None else None


def _metric(version: ModelVersion, metric: str) -> float | None:
    value = (version.metrics or {}).get(metric)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _better(metric: str) -> str:
    return "lower is better" if metric in LOWER_IS_BETTER else "higher is better"


def _kind_panel(overview: KindOverview, notice: Notice | None = None) -> KindPanel:
    gate_metric, _ = GATE_METRIC[overview.kind]
    charts = []
    for metric, title, decimals in CHARTED_METRICS[overview.kind]:
        points = [
            ChartDatum(
                label=f"#{point.version_id}",
                value=point.value,
                title=(
                    f"#{point.version_id} ({point.status}, trained {point.created_at:%Y-%m-%d %H:%M}): "
                    f"{title} {point.value:.{decimals}f}"
                ),
                highlight=point.status == VersionStatus.ACTIVE,
                tag="live" if point.status == VersionStatus.ACTIVE else "",
            )
            for point in overview.metric_history(metric)
        ]
        caption = _better(metric) + (" · the promotion gate's metric" if metric == gate_metric else "")
        charts.append(MetricChart(title=title, caption=caption, decimals=decimals, points=points))
    rows = [
        VersionRow(
            version=version,
            gate_value=_metric(version, gate_metric),
            params=" ".join(f"{key}={value}" for key, value in (version.hyperparameters or {}).items()),
            metrics=" · ".join(
                f"{key} {value:.4f}"
                for key, value in (version.metrics or {}).items()
                if isinstance(value, float) and key != "n_users"
            ),
            timings=" · ".join(
                f"{stage} {seconds:.1f} s"
                for stage, seconds in (version.timings or {}).items()
                if isinstance(seconds, int | float)
            ),
            action={VersionStatus.READY: "activate", VersionStatus.RETIRED: "rollback"}.get(
                VersionStatus(version.status), ""
            ),
        )
        for version in overview.versions
    ]
    return KindPanel(
        overview=overview,
        gate_metric=gate_metric,
        gate_caption=_better(gate_metric),
        charts=charts,
        rows=rows,
        notice=notice,
    )


@dataclass(frozen=True)
class TrainingProgress:
    """Where a training task is, in the words and numbers the progress bar shows."""

    task_id: str
    state: str  # "queued", "running", "live", "refused", "failed", "replaced", "unknown"
    headline: str
    detail: str = ""
    percent: int = 0
    stage: str = ""
    version: ModelVersion | None = None
    kind: str | None = None

    @property
    def final(self) -> bool:
        """The run is over: the bar stops polling."""
        return self.state in {"live", "refused", "failed", "replaced"}


def training_progress(*, task_id: str) -> TrainingProgress:
    """The task's state from the task status selector (the one behind the staff API's
    ``tasks/{id}/``) and the version it created, as one of a few plain states.

    On the embedded default the run happened inside the request that queued it and
    Celery keeps no result, so the version alone tells the outcome; a refusal's
    reason then comes from the promotion gate itself.
    """
    try:
        task = training_task_status(task_id=task_id)
    except Exception as exc:  # the result backend (Redis) is unreachable: keep polling
        logger.warning("could not read task %s: %s", task_id, exc)
        return TrainingProgress(
            task_id,
            "unknown",
            "Cannot read the run's state",
            f"the task result backend is unavailable: {exc}",
        )
    version = task.version
    result = task.result or {}
    if version is None:
        if task.state == "FAILURE":
            return TrainingProgress(task_id, "failed", "The run failed before training", task.error)
        if result.get("status") in ("refused", "failed"):
            return TrainingProgress(task_id, str(result["status"]), "The run did not start", result["error"])
        if celery_app.conf.task_always_eager:
            # In-process and finished, yet no version: model_train refused before creating one.
            return TrainingProgress(
                task_id,
                "failed",
                "The run did not start",
                "it stopped before creating a version (another training run held the lock, or an "
                "error: see the server log)",
            )
        return TrainingProgress(
            task_id, "queued", "Queued: waiting for a worker", f"Celery state {task.state}"
        )

    name = f"#{version.pk} {version.algorithm}"

    def of_version(state: str, headline: str, detail: str, percent: int) -> TrainingProgress:
        return TrainingProgress(
            task_id, state, headline, detail, percent, stage=version.stage, version=version, kind=version.kind
        )

    if version.status == VersionStatus.FAILED or task.state == "FAILURE":
        error = version.error or task.error or "see the server log"
        return of_version("failed", f"{name} failed", error, version.progress)
    if version.status == VersionStatus.ACTIVE:
        return of_version("live", f"{name} is live", _passed(version), 100)
    if version.status == VersionStatus.RETIRED:
        return of_version("replaced", f"{name} went live and has since been replaced", "", 100)
    finished = version.stage == "done" or task.state == "SUCCESS"
    if version.status == VersionStatus.READY and finished:
        reason = result.get("error") or promotion_gate(version, live_version(kind=version.kind))
        detail = reason or "it is ready; activate it from its row below"
        return of_version("refused", f"{name} was trained but not activated", detail, 100)
    return of_version("running", f"Training {name}", "", version.progress)


def _passed(version: ModelVersion) -> str:
    """How a live version got through the gate: its holdout score beside the configuration it replaced."""
    metric, _ = GATE_METRIC[version.kind]
    new = _metric(version, metric)
    judged = (version.evaluation or {}).get("incumbent") or {}
    old = (judged.get("metrics") or {}).get(metric)
    if new is None:
        return "it was activated"
    if not judged:
        return f"it passed the promotion gate: holdout {metric} {new:.4f}, with no live version to beat"
    if not isinstance(old, int | float):
        return f"it passed the promotion gate: holdout {metric} {new:.4f}"
    return (
        f"it passed the promotion gate: holdout {metric} {new:.4f} against {old:.4f} "
        f"for live version #{judged.get('version')}'s configuration on the same holdout"
    )


def _running_progress(overviews: list[KindOverview]) -> TrainingProgress | None:
    """The progress of a run queued from here or the API (it has a task id), if one is training."""
    for overview in overviews:
        for version in overview.training:
            if version.task_id:
                return training_progress(task_id=version.task_id)
    return None


def _algorithm_parameters() -> dict[str, dict[str, Any]]:
    """Each servable algorithm's hyperparameters and their defaults (the form's cheat sheet)."""
    return {name: make_model(name).get_params() for name in sorted(servable_algorithm_kinds())}


def _index_context(
    *,
    retrain_form: RetrainForm | None = None,
    progress: TrainingProgress | None = None,
    notice_for: tuple[str, Notice] | None = None,
) -> dict[str, Any]:
    overviews = kind_overviews()
    panels = [
        _kind_panel(o, notice_for[1] if notice_for and notice_for[0] == o.kind else None) for o in overviews
    ]
    return {
        "panels": panels,
        "retrain_form": retrain_form or RetrainForm(),
        "progress": progress or _running_progress(overviews),
        "algorithm_parameters": _algorithm_parameters(),
        "eager": bool(celery_app.conf.task_always_eager),
    }


# ---- pages ---------------------------------------------------------------------------------------


@require_GET
@staff_required
def index(request: DashboardRequest) -> HttpResponse:
    """Live models, retrain now, and each kind's versions with their metrics over time."""
    return render(request, "dashboard/index.html", _index_context())


@require_GET
@staff_required
def data(request: DashboardRequest) -> HttpResponse:
    """The ratings data at a glance: totals, activity per day, the score histogram, who rates
    most, what nobody rates, and fold-in failures."""
    per_day = ratings_per_day(days=60)
    distribution = rating_distribution()
    context = {
        "totals": data_totals(),
        "per_day": [
            ChartDatum(
                label=f"{d.day:%b} {d.day.day}",
                value=d.ratings,
                title=f"{d.day:%a} {d.day.day} {d.day:%b %Y}: {d.ratings:,} rating{'' if d.ratings == 1 else 's'}",
            )
            for d in per_day
        ],
        "per_day_caption": (
            f"{sum(d.ratings for d in per_day):,} new or changed ratings, "
            f"{per_day[0].day:%b} {per_day[0].day.day} – {per_day[-1].day:%b} {per_day[-1].day.day}, "
            f"{per_day[-1].day.year} (the 60 days up to the latest rating)"
            if per_day
            else ""
        ),
        "distribution": [
            ChartDatum(
                label=f"{s.score:g}",
                value=s.ratings,
                title=f"{s.score:g} stars: {s.ratings:,} rating{'' if s.ratings == 1 else 's'}",
            )
            for s in distribution
        ],
        "active_users": most_active_users(limit=10),
        "cold_items": coldest_items(limit=10),
        "fold_in_versions": fold_in_failure_versions(),
    }
    return render(request, "dashboard/data.html", context)


# ---- actions -------------------------------------------------------------------------------------


def _after_action(request: DashboardRequest, *, kind: str, notice: Notice) -> HttpResponse:
    """htmx: the kind's panel (and, out of band, its live card). Without JavaScript: a success
    goes back to the page (POST/redirect/GET); a refusal re-renders it with the reason (409)."""
    if request.htmx:
        panel = _kind_panel(kind_overview(kind=kind), notice)
        return render(request, "dashboard/_kind_response.html", {"panel": panel})
    if notice.level == "success":
        messages.success(request, notice.text)
        return redirect(f"{reverse('dashboard:index')}#kind-{kind}")
    context = _index_context(notice_for=(kind, notice))
    return render(request, "dashboard/index.html", context, status=409)


@require_POST
@staff_required
def version_activate(request: DashboardRequest, version_id: int) -> HttpResponse:
    """Make a ready version live behind the promotion gate (``force`` skips the gate),
    as ``POST /api/v1/models/{id}/activate/`` does."""
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = ActivateForm(request.POST)
    force = bool(form.is_valid() and form.cleaned_data["force"])
    try:
        version = model_version_activate(version=version, force=force)
    except PromotionRefused as exc:
        notice = Notice("error", str(exc), force_version=version.pk)
    except ValueError as exc:  # not activatable: failed, training, empty tables
        notice = Notice("error", str(exc))
    else:
        notice = Notice(
            "success", f"#{version.pk} ({version.algorithm}) is now the live {version.kind} model."
        )
    return _after_action(request, kind=version.kind, notice=notice)


@require_POST
@staff_required
def versions_rollback(request: DashboardRequest) -> HttpResponse:
    """Re-activate version ``to``, or the kind's most recently retired one, as
    ``POST /api/v1/models/rollback/`` does (no gate: it served before)."""
    form = RollbackForm(request.POST)
    if not form.is_valid():
        return HttpResponse(f"Bad rollback request: {form.errors.as_text()}", status=400)
    kind = form.cleaned_data["kind"]
    try:
        version = model_version_rollback(kind=kind, version_id=form.cleaned_data["to"])
    except ValueError as exc:
        notice = Notice("error", str(exc))
    else:
        notice = Notice("success", f"Rolled back: #{version.pk} ({version.algorithm}) is live again.")
    return _after_action(request, kind=kind, notice=notice)


@require_POST
@staff_required
def retrain(request: DashboardRequest) -> HttpResponse:
    """Start a training run through ``recommender.api.retrain_request`` (the staff API's
    ``models/retrain/``: registry check, "a run is in progress" check, then
    ``tasks.retrain_enqueue``) and show its progress.

    Without a broker the run happens inside this request, so the answer already
    holds its final state.
    """
    form = RetrainForm(request.POST)
    if form.is_valid():
        cleaned = form.cleaned_data
        try:
            queued = retrain_request(
                kind=cleaned["kind"], algorithm=cleaned["algorithm"] or None, params=cleaned["params"]
            )
        except exceptions.ValidationError as exc:
            fields = exc.detail if isinstance(exc.detail, dict) else {None: exc.detail}
            for name, errors in fields.items():
                target = name if name in form.fields else None
                for error in errors if isinstance(errors, list) else [errors]:
                    form.add_error(target, str(error))
        except exceptions.APIException as exc:  # 409: a run holds the lock; 503: no broker
            form.add_error(None, str(exc.detail))
        else:
            if not request.htmx:
                return redirect("dashboard:task", task_id=queued["task_id"])
            progress = training_progress(task_id=queued["task_id"])
            fresh = RetrainForm(initial={"kind": cleaned["kind"], "algorithm": cleaned["algorithm"]})
            return _retrain_response(request, form=fresh, progress=progress)
    if request.htmx:  # errors: 200, or htmx would not swap them in
        return _retrain_response(request, form=form, progress=None)
    return render(request, "dashboard/index.html", _index_context(retrain_form=form), status=400)


def _retrain_response(
    request: DashboardRequest, *, form: RetrainForm, progress: TrainingProgress | None
) -> HttpResponse:
    context: dict[str, Any] = {
        "retrain_form": form,
        "progress": progress,
        "algorithm_parameters": _algorithm_parameters(),
        "eager": bool(celery_app.conf.task_always_eager),
        "panel": _final_panel(progress),
    }
    return render(request, "dashboard/_retrain_response.html", context)


def _final_panel(progress: TrainingProgress | None) -> KindPanel | None:
    """The kind's refreshed panel once a run ended: its versions and charts changed."""
    if progress is None or not progress.final or progress.kind is None:
        return None
    return _kind_panel(kind_overview(kind=progress.kind))


@require_GET
@staff_required
def task(request: DashboardRequest, task_id: str) -> HttpResponse:
    """A training run's progress: the bar alone for htmx's polling (with the kind's panel
    out of band once it ends), a page that refreshes itself without JavaScript."""
    progress = training_progress(task_id=task_id)
    if request.htmx:
        # Only the dashboard's front page has the panels to update out of band.
        on_index = urlsplit(request.htmx.current_url_abs_path or "").path == reverse("dashboard:index")
        context = {"progress": progress, "panel": _final_panel(progress) if on_index else None}
        return render(request, "dashboard/_progress_response.html", context)
    return render(request, "dashboard/task.html", {"progress": progress})
