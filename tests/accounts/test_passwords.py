"""Changing a password while signed in, and resetting a forgotten one by email."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.accounts.conftest import login_post
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NEW = "a brand new passphrase 42"


def _reset_link(body: str) -> str:
    match = re.search(r"https?://testserver(/accounts/password/reset/[^\s]+/)", body)
    assert match, body
    return match.group(1)


# ---- change -------------------------------------------------------------------


def test_changing_the_password_needs_the_old_one(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "Change password" in page.content.decode()

    response = client.post(
        reverse("password_change"),
        {"old_password": "not it", "new_password1": NEW, "new_password2": NEW},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_changed_password_keeps_me_in_and_signs_other_devices_out(client, alice) -> None:  # type: ignore[no-untyped-def]
    other_device = Client()
    other_device.force_login(alice)
    client.force_login(alice)

    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("account_settings")
    assert "Password changed" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert client.get(reverse("account_settings")).status_code == 200
    assert other_device.get(reverse("account_settings")).status_code == 302  # to the log-in page


def test_a_weak_new_password_is_refused(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert response.status_code == 200
    assert "too common" in response.content.decode()


def test_the_change_page_needs_a_signed_in_user(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("password_change"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# ---- reset --------------------------------------------------------------------


@pytest.mark.usefixtures("axes_on")
def test_a_forgotten_password_is_reset_through_the_emailed_link(client, alice) -> None:  # type: ignore[no-untyped-def]
    alice.email = "alice@example.com"
    alice.save()
    assert "Forgot your password?" in client.get(reverse("login")).content.decode()

    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your Tastebase password"
    assert "alice" in message.body

    link = _reset_link(message.body)
    response = client.get(link)  # the token moves into the session, out of the URL
    assert response.status_code == 302
    form_url = response["Location"]
    assert "set-password" in form_url
    page = client.get(form_url)
    assert page.status_code == 200 and "Set a new password" in page.content.decode()

    response = client.post(form_url, {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    assert "Your new password is set" in client.get(response["Location"]).content.decode()

    assert login_post(Client(), "alice", PASSWORD).status_code == 200  # the old one is gone
    assert login_post(Client(), "alice", NEW).status_code == 302

    # The link worked once.
    again = client.get(link)
    assert again.status_code == 200
    assert "This link no longer works" in again.content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, alice) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []
    assert "Check your email" in client.get(reverse("password_reset_done")).content.decode()


def test_a_tampered_link_is_refused(client, alice) -> None:  # type: ignore[no-untyped-def]
    alice.email = "alice@example.com"
    alice.save()
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    link = _reset_link(mail.outbox[0].body)
    page = client.get(link[:-3] + "xx/")
    assert "This link no longer works" in page.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_the_email_saved_on_the_account_page_is_the_one_resets_go_to(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(reverse("account_settings"), {"email": "Alice@Example.COM"}, follow=True)
    assert "Password-reset links now go to" in response.content.decode()
    assert User.objects.get(pk=alice.pk).email == "Alice@example.com"  # the domain is case-insensitive

    Client().post(reverse("password_reset"), {"email": "alice@example.com"})
    assert [m.to for m in mail.outbox] == [["Alice@example.com"]]
