"""The account page and deleting an account: everything of theirs goes, item stats stay exact."""

from __future__ import annotations

from typing import Any

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.urls import reverse
from rest_framework.authtoken.models import Token

from catalog.account_services import user_delete
from catalog.models import Item
from ratings.lists import hidden_add, watchlist_add
from ratings.models import Hidden, Rating, UserRatingStamp, Watchlist
from ratings.services import rating_upsert
from recommender.cache import user_generation
from tests.accounts.conftest import login_post
from tests.conftest import PASSWORD
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(alice: Any, bob: Any) -> dict[str, Any]:
    """alice and bob rate through the services, as the site does; alice also hides and saves items."""
    heat, toy, alien, solo = (ItemFactory(title=t) for t in ("Heat", "Toy Story", "Alien", "Solo"))
    rating_upsert(user=alice, item=heat, score=5.0)
    rating_upsert(user=alice, item=toy, score=1.5)
    rating_upsert(user=alice, item=solo, score=3.0)  # alice is its only rater
    rating_upsert(user=bob, item=heat, score=3.0)
    rating_upsert(user=bob, item=toy, score=4.5)
    rating_upsert(user=bob, item=alien, score=4.0)
    hidden_add(user=alice, item=alien)
    watchlist_add(user=alice, item=alien)
    watchlist_add(user=bob, item=solo)
    Token.objects.create(user=alice)
    return {"heat": heat, "toy": toy, "alien": alien, "solo": solo}


def _assert_item_stats_match_the_ratings_table() -> None:
    for item in Item.objects.all():
        truth = Rating.objects.filter(item=item).aggregate(n=Count("id"), total=Sum("score"))
        n, total = truth["n"], truth["total"] or 0.0
        assert (item.rating_count, item.rating_sum) == (n, total), item.title
        assert item.rating_mean == (total / n if n else None), item.title


# ---- the account page -----------------------------------------------------------


def test_the_account_page_needs_a_signed_in_user(client) -> None:  # type: ignore[no-untyped-def]
    for name in ("account_settings", "account_delete"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_account_page_shows_what_i_have_and_where_to_change_it(client, alice, rated) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    page = client.get(reverse("account_settings")).content.decode()
    assert "Account settings" in page and "alice" in page
    assert reverse("password_change") in page
    assert reverse("account_delete") in page
    assert "Delete my account" in page
    assert '<dt>Ratings</dt><dd><a href="' in page and ">3</a>" in page


def test_an_invalid_email_is_refused_with_a_message(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(reverse("account_settings"), {"email": "not-an-address"})
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    alice.refresh_from_db()
    assert alice.email == ""


def test_an_email_can_be_removed(client, alice) -> None:  # type: ignore[no-untyped-def]
    alice.email = "alice@example.com"
    alice.save()
    client.force_login(alice)
    assert (
        "Email removed"
        in client.post(reverse("account_settings"), {"email": ""}, follow=True).content.decode()
    )
    alice.refresh_from_db()
    assert alice.email == ""


# ---- deleting ----------------------------------------------------------------------


def test_the_delete_page_says_what_goes(client, alice, rated) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    page = client.get(reverse("account_delete")).content.decode()
    assert "Your 3 ratings" in page
    assert "Your watchlist (1) and hidden items (1)" in page
    assert "cannot be undone" in page


def test_a_wrong_password_deletes_nothing(client, alice, rated) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(reverse("account_delete"), {"password": "nope"})
    assert response.status_code == 200
    assert "That is not your password" in response.content.decode()
    assert User.objects.filter(pk=alice.pk).exists()
    assert Rating.objects.filter(user=alice).count() == 3


def test_deleting_my_account_removes_everything_of_mine_and_signs_me_out(client, alice, bob, rated) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(reverse("account_delete"), {"password": PASSWORD}, follow=True)

    assert response.redirect_chain[0][0] == reverse("catalog:item_list")
    page = response.content.decode()
    assert "Your account alice and its 3 ratings are deleted. Goodbye!" in page
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="alice").exists()
    for model in (Rating, Hidden, Watchlist, Token, UserRatingStamp):
        assert not model.objects.filter(user_id=alice.pk).exists(), model.__name__
    # bob keeps everything.
    assert Rating.objects.filter(user=bob).count() == 3
    assert Watchlist.objects.filter(user=bob).count() == 1
    assert login_post(client, "alice", PASSWORD).status_code == 200  # no such account any more


def test_item_stats_are_exact_after_a_deletion(alice, bob, rated) -> None:  # type: ignore[no-untyped-def]
    result = user_delete(user=alice)

    assert (result.username, result.ratings, result.items_updated) == ("alice", 3, 3)
    heat, toy, alien, solo = (Item.objects.get(pk=rated[k].pk) for k in ("heat", "toy", "alien", "solo"))
    assert (heat.rating_count, heat.rating_sum, heat.rating_mean) == (1, 3.0, 3.0)
    assert (toy.rating_count, toy.rating_sum, toy.rating_mean) == (1, 4.5, 4.5)
    assert (alien.rating_count, alien.rating_sum, alien.rating_mean) == (1, 4.0, 4.0)  # never rated by alice
    assert (solo.rating_count, solo.rating_sum, solo.rating_mean) == (0, 0.0, None)
    _assert_item_stats_match_the_ratings_table()


def test_later_ratings_still_add_up_after_a_deletion(alice, bob, charlie, rated) -> None:  # type: ignore[no-untyped-def]
    user_delete(user=alice)
    rating_upsert(user=charlie, item=rated["heat"], score=4.0)
    rating_upsert(user=charlie, item=rated["solo"], score=2.5)
    rating_upsert(user=bob, item=rated["toy"], score=5.0)
    _assert_item_stats_match_the_ratings_table()
    assert Item.objects.get(pk=rated["heat"].pk).rating_mean == 3.5


def test_a_user_who_rated_nothing_is_deleted_too(charlie, rated) -> None:  # type: ignore[no-untyped-def]
    result = user_delete(user=charlie)
    assert (result.ratings, result.items_updated) == (0, 0)
    assert not User.objects.filter(username="charlie").exists()
    _assert_item_stats_match_the_ratings_table()


@pytest.mark.usefixtures("axes_on")
def test_my_sign_in_records_go_with_my_account(client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    login_post(client, "alice", "wrong")
    login_post(client, "bob", "wrong")
    assert login_post(client, "alice", PASSWORD).status_code == 302
    assert AccessLog.objects.filter(username="alice").exists()
    login_post(client, "alice", "wrong again")  # after the success reset the count
    assert AccessAttempt.objects.filter(username="alice").exists()

    user_delete(user=User.objects.get(username="alice"))
    assert not AccessLog.objects.filter(username="alice").exists()
    assert not AccessAttempt.objects.filter(username="alice").exists()
    assert AccessAttempt.objects.filter(username="bob").exists()


def test_my_cached_lists_are_dropped_once_the_deletion_commits(
    alice, rated, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    user_id = alice.pk
    before = user_generation(user_id)
    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=alice)
    assert user_generation(user_id) == before + 1


def test_a_new_account_with_no_ratings_is_deleted_with_a_plain_goodbye(client, charlie) -> None:  # type: ignore[no-untyped-def]
    client.force_login(charlie)
    page = client.post(reverse("account_delete"), {"password": PASSWORD}, follow=True).content.decode()
    assert "Your account charlie is deleted. Goodbye!" in page
