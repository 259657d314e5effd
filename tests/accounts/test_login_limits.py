"""django-axes limits sign-in attempts: per username and address, on the site, the admin and the API."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.accounts import client_ip_address
from tests.accounts.conftest import login_post
from tests.api.conftest import assert_error
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_on")]


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_four_wrong_passwords_only_show_the_form_error(client, alice) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        response = login_post(client, "alice", "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = login_post(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert _signed_in(client)


def test_the_fifth_wrong_password_locks_out_even_the_right_one(client, alice) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        login_post(client, "alice", "wrong")
    response = login_post(client, "alice", "wrong")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert "Too many sign-in attempts" in page
    assert "15 minutes" in page
    assert reverse("password_reset") in page
    assert '<header class="site-header">' in page  # the site's own page, not a bare message

    response = login_post(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert not _signed_in(client)


def test_a_lockout_holds_one_username_at_one_address_only(client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        login_post(client, "alice", "wrong", address="203.0.113.7")
    assert login_post(client, "alice", PASSWORD, address="203.0.113.7").status_code == 429

    # The attacker's address cannot lock alice out from her own.
    assert login_post(Client(), "alice", PASSWORD, address="198.51.100.2").status_code == 302
    # Nor bob from the attacker's address.
    assert login_post(Client(), "bob", PASSWORD, address="203.0.113.7").status_code == 302


def test_signing_in_resets_the_count(client, alice) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        login_post(client, "alice", "wrong")
    assert login_post(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        assert login_post(client, "alice", "wrong").status_code == 200
    assert login_post(client, "alice", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        login_post(client, "alice", "wrong")
    assert login_post(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert login_post(client, "alice", PASSWORD).status_code == 302


def test_the_limit_and_cool_off_follow_the_settings(client, alice, settings) -> None:  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(hours=1)
    assert login_post(client, "alice", "wrong").status_code == 200
    response = login_post(client, "alice", "wrong")
    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert "1 hour" in response.content.decode()


def test_the_admin_log_in_is_limited_too(client, staff) -> None:  # type: ignore[no-untyped-def]
    url = reverse("admin:login")
    for _ in range(4):
        assert client.post(url, {"username": "staff", "password": "wrong"}).status_code == 200
    assert client.post(url, {"username": "staff", "password": "wrong"}).status_code == 429
    assert client.post(url, {"username": "staff", "password": PASSWORD}).status_code == 429


def test_api_token_sign_ins_count_and_lock_out_in_the_error_shape(alice) -> None:  # type: ignore[no-untyped-def]
    api, url = APIClient(), reverse("api:token")
    for _ in range(4):
        response = api.post(url, {"username": "alice", "password": "wrong"}, format="json")
        assert_error(response, 401, "authentication_failed")
    response = api.post(url, {"username": "alice", "password": "wrong"}, format="json")
    error = assert_error(response, 429, "throttled")
    assert "Try again in 15 minutes" in error["message"]
    assert response["Retry-After"] == "900"
    assert_error(api.post(url, {"username": "alice", "password": PASSWORD}, format="json"), 429, "throttled")

    elsewhere = api.post(
        url, {"username": "alice", "password": PASSWORD}, format="json", REMOTE_ADDR="10.1.2.3"
    )
    assert elsewhere.status_code == 200 and elsewhere.json()["token"]


def test_the_site_and_the_api_share_one_count(client, alice) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        login_post(client, "alice", "wrong")
    api = APIClient()
    assert (
        api.post(reverse("api:token"), {"username": "alice", "password": "x"}, format="json").status_code
        == 401
    )
    assert (
        api.post(reverse("api:token"), {"username": "alice", "password": "x"}, format="json").status_code
        == 429
    )
    assert login_post(client, "alice", PASSWORD).status_code == 429


def test_a_password_reset_lifts_the_lockout(client, alice) -> None:  # type: ignore[no-untyped-def]
    alice.email = "alice@example.com"
    alice.save()
    for _ in range(5):
        login_post(client, "alice", "wrong")
    assert login_post(client, "alice", PASSWORD).status_code == 429

    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/" in line)
    form_url = client.get(link.strip())["Location"]
    new = "a brand new passphrase 42"
    done = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert done.status_code == 302

    assert login_post(client, "alice", new).status_code == 302
    assert _signed_in(client)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "1.1.1.1", "192.0.2.10"),  # no proxy: a client's own header is ignored
        (1, "6.6.6.6, 198.51.100.4", "198.51.100.4"),  # what our one proxy saw, not the client's claim
        (2, "6.6.6.6, 198.51.100.4, 10.0.0.5", "198.51.100.4"),
        (2, "198.51.100.4", "192.0.2.10"),  # fewer entries than proxies: not behind them after all
    ],
)
def test_the_address_comes_from_the_trusted_proxies_only(settings, proxies, forwarded, expected) -> None:  # type: ignore[no-untyped-def]
    settings.TASTEBASE_PROXY_COUNT = proxies
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip_address(request) == expected


def _settings_of(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AXES_", "EMAIL_", "DATABASE_URL", "REDIS", "CELERY_"))
    }
    clean.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.AXES_ENABLED, s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()), "
            "s.AXES_LOCKOUT_PARAMETERS, s.AUTHENTICATION_BACKENDS[0], s.MIDDLEWARE[-1], s.EMAIL_BACKEND)",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", **env},
        capture_output=True,
        text=True,
    )


def test_the_defaults_lock_a_username_and_address_pair_for_15_minutes_after_5_failures() -> None:
    result = _settings_of()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "True 5 900 [['username', 'ip_address']] axes.backends.AxesStandaloneBackend "
        "axes.middleware.AxesMiddleware django.core.mail.backends.console.EmailBackend"
    )


def test_the_environment_sets_the_limits_and_the_mail_backend() -> None:
    result = _settings_of(
        AXES_FAILURE_LIMIT="3",
        AXES_COOLOFF_MINUTES="60",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["True", "3", "3600"]
    assert result.stdout.split()[-1] == "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AXES_FAILURE_LIMIT": "five"}, "AXES_FAILURE_LIMIT"),
        ({"AXES_FAILURE_LIMIT": "0"}, "AXES_FAILURE_LIMIT"),
        ({"AXES_COOLOFF_MINUTES": "-1"}, "AXES_COOLOFF_MINUTES"),
        ({"AXES_ENABLED": "maybe"}, "AXES_ENABLED"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
        ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_SSL"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str], named: str) -> None:
    result = _settings_of(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr
