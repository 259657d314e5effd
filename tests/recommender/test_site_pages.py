"""The site's pages over trained models: home, For you, the rating widget, watchlist and
hide, onboarding, the item page's panels, the demo account and the start-up warm-up."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.templatetags.item_charts import score_histogram
from ratings.lists import hidden_add, watchlist_add
from ratings.models import Hidden, Rating, Watchlist
from ratings.selectors import items_also_liked, items_popular_recently
from ratings.services import rating_upsert
from recommender.selectors import for_you_list, onboarding_items
from recommender.serving import serving_cache, serving_warm_up
from tests.factories import UserFactory
from tests.recommender.conftest import Planted
from tests.recommender.test_pipeline import train

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trained(planted: Planted) -> Planted:
    train("rating")
    train("ranking")
    train("similarity")
    return planted


def _card_ids(html: str, testid: str) -> list[int]:
    """Item ids of the cards inside the list marked ``data-testid=testid``, in page order."""
    start = html.index(f'data-testid="{testid}"')
    end = html.index("</ul>", start)
    return [int(pk) for pk in re.findall(r'data-item-id="(\d+)"', html[start:end])]


def test_for_you_is_ordered_by_the_stars_it_shows_and_explains_each_item(
    client: Any, trained: Planted
) -> None:
    fan = trained.user("action")
    client.force_login(fan)
    response = client.get(reverse("recommender:for_you"))
    rows = response.context["rows"]
    assert rows and response.context["personalized"]
    stars = [row.predicted for row in rows]
    assert all(s is not None for s in stars) and stars == sorted(stars, reverse=True)
    assert "ordered by the stars we think you'd give them" in response.context["order_note"]
    assert 'data-testid="order-note"' in response.content.decode()
    assert all(row.explanation for row in rows[:3])
    mine = dict(Rating.objects.filter(user=fan).values_list("item_id", "score"))
    for row in rows:
        for liked in row.explanation:
            assert mine[liked.id] == liked.score >= 4.0  # "because you rated X 5★": your own score
    assert re.search(
        r"Because you rated <a [^>]+><em>Film \d\d</em></a> \d(\.5)?★", response.content.decode()
    )


def test_without_a_personal_model_there_are_no_predicted_stars(client: Any, trained: Planted) -> None:
    newcomer = UserFactory()
    client.force_login(newcomer)
    response = client.get(reverse("recommender:for_you"))
    assert not response.context["personalized"]
    assert response.context["rows"] and all(row.predicted is None for row in response.context["rows"])
    assert 'data-testid="predicted"' not in response.content.decode()
    assert "What people love most" in response.content.decode()


def test_for_you_filters_and_paginates(client: Any, trained: Planted) -> None:
    fan = trained.user("romance")
    client.force_login(fan)
    url = reverse("recommender:for_you")
    everything = [row.item.id for row in client.get(url).context["rows"]]
    late = client.get(url, {"year_min": 2005}).context["rows"]
    assert late and all(row.item.year >= 2005 for row in late)
    watching = trained.items[everything[0] - trained.items[0].pk]
    watchlist_add(user=fan, item=watching)
    kept = [row.item.id for row in client.get(url, {"exclude_watchlisted": "on"}).context["rows"]]
    assert watching.pk not in kept and set(kept) == set(everything) - {watching.pk}
    bad = client.get(url, {"year_min": 3000})
    assert "Ensure this value is less than or equal to 2100" in bad.content.decode()
    listing = for_you_list(user=fan)
    assert len(listing.results) <= 200


def test_rating_inline_with_htmx_answers_with_the_widget_and_updates_for_you(
    client: Any, trained: Planted
) -> None:
    fan = trained.user("action")
    client.force_login(fan)
    before = [row.item.id for row in client.get(reverse("recommender:for_you")).context["rows"]]
    target = before[0]
    response = client.post(reverse("ratings:rate", args=[target]), {"score": "1.5"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "rated"
    body = response.content.decode()
    assert body.lstrip().startswith('<form class="rate"')  # the widget alone, not a page
    assert 'value="1.5" checked>' in body and "Your recommendations were updated." in body
    assert Rating.objects.get(user=fan, item_id=target).score == 1.5
    after = [row.item.id for row in client.get(reverse("recommender:for_you")).context["rows"]]
    assert target not in after and after != before

    bad = client.post(reverse("ratings:rate", args=[target]), {"score": "7"}, **HTMX)
    assert bad.status_code == 200 and "Pick a rating between 0.5 and 5.0" in bad.content.decode()
    assert "HX-Trigger" not in bad
    assert Rating.objects.get(user=fan, item_id=target).score == 1.5

    cleared = client.post(reverse("ratings:delete", args=[target]), **HTMX)
    assert "Rating removed." in cleared.content.decode() and " checked>" not in cleared.content.decode()
    assert not Rating.objects.filter(user=fan, item_id=target).exists()


def test_watchlist_and_hide_toggle_in_place_and_without_javascript(client: Any, trained: Planted) -> None:
    fan, other = trained.user("action"), trained.user("action", 1)
    film = trained.items[15]
    client.force_login(fan)
    on = client.post(reverse("ratings:watchlist_toggle", args=[film.pk]), **HTMX)
    assert "✓ On your watchlist" in on.content.decode() and 'aria-pressed="true"' in on.content.decode()
    assert Watchlist.objects.filter(user=fan, item=film).exists()
    page = client.get(reverse("ratings:watchlist"))
    assert [row.item.id for row in page.context["rows"]] == [film.pk]
    off = client.post(reverse("ratings:watchlist_toggle", args=[film.pk]), {"next": "/for-you/"})  # no JS
    assert off.status_code == 302 and off["Location"] == "/for-you/"
    assert not Watchlist.objects.filter(user=fan).exists()

    hidden = client.post(reverse("ratings:hide_toggle", args=[film.pk]), **HTMX)
    assert "Hidden · show again" in hidden.content.decode()
    assert (
        Hidden.objects.filter(user=fan, item=film).exists() and not Hidden.objects.filter(user=other).exists()
    )


def test_a_hidden_item_is_gone_from_for_you_and_similar_lists_for_that_user_only(
    client: Any, trained: Planted
) -> None:
    fan, other = trained.user("action"), trained.user("action", 1)
    client.force_login(fan)
    first = client.get(reverse("recommender:for_you")).context["rows"][0].item.id
    anchor = trained.items[0]
    similar_before = [
        s.item_id for s in client.get(reverse("catalog:item_detail", args=[anchor.pk])).context["similar"]
    ]
    client.post(reverse("ratings:hide_toggle", args=[first]))
    assert first not in [row.item.id for row in client.get(reverse("recommender:for_you")).context["rows"]]
    if first in similar_before:
        similar_after = client.get(reverse("catalog:item_detail", args=[anchor.pk])).context["similar"]
        assert first not in [s.item_id for s in similar_after]
    client.force_login(other)  # another person's similar list is untouched
    assert [
        s.item_id for s in client.get(reverse("catalog:item_detail", args=[anchor.pk])).context["similar"]
    ] == (similar_before)


def test_lists_and_their_actions_require_signing_in(client: Any, trained: Planted) -> None:
    film = trained.items[3]
    for name in ("ratings:watchlist_toggle", "ratings:hide_toggle", "ratings:rate", "ratings:delete"):
        response = client.post(reverse(name, args=[film.pk]), {"score": "4.0"})
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("ratings:watchlist"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("recommender:onboarding"))["Location"].startswith(reverse("login"))
    assert client.get(reverse("ratings:watchlist_toggle", args=[film.pk])).status_code in (302, 405)
    assert not Watchlist.objects.exists() and not Hidden.objects.exists()


def test_home_shows_for_you_to_a_known_user_and_shelves_to_everyone(client: Any, trained: Planted) -> None:
    anonymous = client.get(reverse("catalog:home")).content.decode()
    assert "Find your next favourite film" in anonymous and 'data-testid="shelf-for-you"' not in anonymous
    assert 'data-testid="shelf-popular-now"' in anonymous and 'data-testid="shelf-top-rated"' in anonymous
    fan = trained.user("action")
    client.force_login(fan)
    home = client.get(reverse("catalog:home")).content.decode()
    for_you = _card_ids(home, "shelf-for-you")
    action_ids = {item.pk for item in trained.items[:10]}
    assert for_you and set(for_you[:3]) <= action_ids  # an action fan's list starts with action films
    assert not set(for_you) & set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))


def test_signing_up_welcomes_you_into_onboarding(client: Any, trained: Planted) -> None:
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "a-long-enough-passw0rd", "password2": "a-long-enough-passw0rd"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("recommender:onboarding")
    assert "Welcome to Tastebase, newbie!" in response.content.decode()
    assert response.context["rated"] == 0 and len(response.context["rows"]) == 23  # every rated planted film


def test_onboarding_offers_varied_unrated_items_and_counts_to_ten(client: Any, trained: Planted) -> None:
    user = UserFactory()
    client.force_login(user)
    offered = onboarding_items(user=user, limit=6)
    genres = {card.genres[0] for card in offered}
    assert genres == {"Action", "Romance"}  # round-robin over genres, not the six most rated of one
    for card in offered[:4]:
        rating_upsert(user=user, item=trained.items[card.id - trained.items[0].pk], score=4.0)
    page = client.get(reverse("recommender:onboarding"))
    assert page.context["rated"] == 4 and not page.context["done"]
    assert not {row.item.id for row in page.context["rows"]} & {c.id for c in offered[:4]}
    shown = ",".join(str(row.item.id) for row in page.context["rows"][:5])
    later = client.get(reverse("recommender:onboarding"), {"shown": shown})
    assert not {row.item.id for row in later.context["rows"]} & {int(x) for x in shown.split(",")}
    for item in trained.items[:10]:
        rating_upsert(user=user, item=item, score=4.5)
    progress = client.get(reverse("recommender:onboarding_progress"))
    assert progress.context["done"] and "your recommendations are ready" in progress.content.decode()
    assert for_you_list(user=user).personalized  # personal at once: the ratings were folded in


def test_the_item_page_shows_the_histogram_similar_and_also_liked(client: Any, trained: Planted) -> None:
    film = trained.items[2]
    response = client.get(reverse("catalog:item_detail", args=[film.pk]))
    html = response.content.decode()
    assert 'data-testid="histogram"' in html and 'data-testid="similar"' in html
    also = response.context["also_liked"]
    assert also and all(card.genres == ("Action",) for card in also[:5])  # action fans like action


def test_the_histogram_draws_bars_in_proportion_and_marks_your_score() -> None:
    drawn = score_histogram([(1.0, 2), (1.5, 0), (2.0, 8)], mine=2.0)
    heights = [bar["height"] for bar in drawn["bars"]]
    assert heights[1] == 0 and heights[2] == pytest.approx(4 * heights[0])
    assert [bar["mine"] for bar in drawn["bars"]] == [False, False, True]
    assert drawn["total"] == 10 and score_histogram([], mine="")["bars"] == []


def test_people_who_liked_this_also_liked_is_normalised_by_popularity(trained: Planted) -> None:
    film = trained.items[0]  # an action film
    ranked = items_also_liked(item_id=film.pk, limit=10)
    ids = [pk for pk, _ in ranked]
    action_ids = {item.pk for item in trained.items[:10]}
    assert ids and set(ids[:5]) <= action_ids and film.pk not in ids
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    everything = items_also_liked(item_id=film.pk, limit=100)
    assert items_also_liked(item_id=film.pk, limit=5, exclude=ids[:2]) == everything[2:7]


def test_popular_now_counts_the_most_recent_ratings(trained: Planted) -> None:
    late = UserFactory()
    film = trained.items[23]  # rated by nobody in the planted data
    rating_upsert(user=late, item=film, score=3.0)
    assert items_popular_recently(limit=3, window=1) == [film.pk]


def test_the_demo_account_gets_a_real_history_and_a_personal_list(trained: Planted, capsys: Any) -> None:
    source = trained.user("romance")
    call_command("create_demo_user", username="demo", password="x-demo-pass", ratings_from=source.username)
    out = capsys.readouterr().out
    n = Rating.objects.filter(user=source).count()
    assert f"{n} ratings copied from {source.username}" in out
    from django.contrib.auth.models import User

    demo = User.objects.get(username="demo")
    assert dict(Rating.objects.filter(user=demo).values_list("item_id", "score")) == dict(
        Rating.objects.filter(user=source).values_list("item_id", "score")
    )
    assert for_you_list(user=demo).order == "predicted"
    call_command("create_demo_user", username="demo", password="again")  # a reset copies nothing twice
    assert Rating.objects.filter(user=demo).count() == n


def test_warm_up_loads_the_live_versions_and_their_fold_in(trained: Planted) -> None:
    serving_cache.clear()
    warmed = serving_warm_up()
    assert {w.split()[0] for w in warmed} == {"rating", "ranking"}
    assert set(serving_cache.active()) == {"rating", "ranking"}


def test_hidden_items_are_left_out_of_for_you(trained: Planted) -> None:
    fan = trained.user("action")
    first = for_you_list(user=fan).results[0].item_id
    hidden_add(user=fan, item=trained.items[first - trained.items[0].pk])
    assert first not in [r.item_id for r in for_you_list(user=fan).results]


def test_browse_shows_your_predicted_stars_and_orders_and_filters_by_them(
    client: Any, trained: Planted
) -> None:
    fan = trained.user("action")
    client.force_login(fan)
    url = reverse("catalog:item_list")
    rated = set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))
    ordered = client.get(url, {"sort": "predicted"}).context["rows"]
    unrated = [row for row in ordered if row.item.id not in rated]
    stars = [row.predicted for row in ordered]
    known = [s for s in stars if s is not None]
    assert len(known) >= 20 and stars[: len(known)] == sorted(known, reverse=True)  # unknown films last
    assert unrated and 'data-testid="predicted"' in client.get(url, {"sort": "predicted"}).content.decode()
    fresh = client.get(url, {"sort": "predicted", "hide_rated": "on"}).context["rows"]
    assert [row.item.id for row in fresh] == [row.item.id for row in unrated]
    hidden = fresh[0].item.id
    hidden_add(user=fan, item=trained.items[hidden - trained.items[0].pk])
    assert hidden not in [row.item.id for row in client.get(url).context["rows"]]


def test_browse_without_a_personal_model_says_so_and_anonymous_has_no_personal_options(
    client: Any, trained: Planted
) -> None:
    url = reverse("catalog:item_list")
    anonymous = client.get(url, {"sort": "predicted", "hide_rated": "on"})
    assert "hide_rated" not in anonymous.context["form"].fields
    assert anonymous.context["form"].errors["sort"] == ["Pick an order from the list."]
    assert len(anonymous.context["rows"]) == 24  # the default order, nothing hidden
    client.force_login(UserFactory())
    newcomer = client.get(url, {"sort": "predicted"})
    assert "Rate a few films first" in newcomer.content.decode()
    assert all(row.predicted is None for row in newcomer.context["rows"])
