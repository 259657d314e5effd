"""Account pages: settings (email), password change and reset, deleting the account;
and the two hooks django-axes calls: the lockout response and the client's address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.debug import sensitive_post_parameters

from config.api import error_body
from config.typealias import AuthenticatedHttpRequest
from ratings.lists import user_list_counts

from .account_forms import AccountDeleteForm, EmailForm
from .account_services import user_delete, user_email_update, user_lockout_clear


@login_required
def account_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The account page: email address, a link to change the password, deleting the account."""
    form = EmailForm(request.POST or None, initial={"email": request.user.email})
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        user_email_update(user=request.user, email=email)
        messages.success(request, f"Password-reset links now go to {email}." if email else "Email removed.")
        return redirect("account_settings")
    return render(
        request,
        "registration/account_settings.html",
        {"email_form": form, "counts": user_list_counts(user=request.user)},
    )


@sensitive_post_parameters("password")
@login_required
def account_delete(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Confirm with the password, delete everything, sign out, say so."""
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        deleted = user_delete(user=request.user)
        logout(request)
        what = f"Your account {deleted.username}"
        if deleted.ratings:
            what += f" and its {deleted.ratings} rating{'s' if deleted.ratings != 1 else ''}"
        messages.success(request, f"{what} {'are' if deleted.ratings else 'is'} deleted. Goodbye!")
        return redirect("catalog:item_list")
    return render(
        request,
        "registration/account_delete.html",
        {"form": form, "counts": user_list_counts(user=request.user)},
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view (other sessions are signed out), back to the account page with a message."""

    template_name = "registration/password_change.html"
    success_url = reverse_lazy("account_settings")

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Password changed. Other devices signed in as you are signed out.")
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view; a new password also lifts a sign-in lockout of that username."""

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:
        response = super().form_valid(form)
        user_lockout_clear(username=form.user.get_username())
        return response


# ---- django-axes hooks (settings.AXES_LOCKOUT_CALLABLE, AXES_CLIENT_IP_CALLABLE) ----


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 once a username failed too often from one address: the API's error shape under
    ``/api/``, the lockout page elsewhere. ``Retry-After`` is the full cool-off, which
    every further failure restarts."""
    cooloff: timedelta = settings.AXES_COOLOFF_TIME
    wait = _duration(cooloff)
    match = getattr(request, "resolver_match", None)
    if match is not None and "api" in match.namespaces:
        message = f"Too many failed sign-ins for this username from your address. Try again in {wait}."
        response: HttpResponse = JsonResponse(error_body("throttled", message), status=429)
    else:
        response = render(
            request,
            "registration/lockout.html",
            {"wait": wait, "failure_limit": settings.AXES_FAILURE_LIMIT},
            status=429,
        )
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response


def client_ip_address(request: HttpRequest) -> str | None:
    """The address a sign-in came from: ``REMOTE_ADDR``, or behind ``TASTEBASE_PROXY_COUNT``
    proxies the entry that many places from the right of ``X-Forwarded-For`` (what the
    outermost of our proxies saw; entries further left are the client's own claims)."""
    count: int = settings.TASTEBASE_PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= count:
            return forwarded[-count]
    address: str | None = request.META.get("REMOTE_ADDR")
    return address


def _duration(delta: timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
