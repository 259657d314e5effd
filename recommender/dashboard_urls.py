"""The staff dashboard's routes under ``/dashboard/`` (namespace ``dashboard``)."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import dashboard

urlpatterns: list[URLPattern] = [
    path("", dashboard.index, name="index"),
    path("data/", dashboard.data, name="data"),
    path("retrain/", dashboard.retrain, name="retrain"),
    path("tasks/<str:task_id>/", dashboard.task, name="task"),
    path("versions/<int:version_id>/activate/", dashboard.version_activate, name="activate"),
    path("rollback/", dashboard.versions_rollback, name="rollback"),
]
