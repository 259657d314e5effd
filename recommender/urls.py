from __future__ import annotations

from django.urls import path

from . import views

app_name = "recommender"

urlpatterns = [
    path("for-you/", views.for_you, name="for_you"),
    path("welcome/", views.onboarding, name="onboarding"),
    path("welcome/progress/", views.onboarding_progress, name="onboarding_progress"),
]
