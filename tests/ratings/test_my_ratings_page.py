"""The My ratings page: sort, the inline widget, CSV export and import, and who may do what."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ratings.forms import RATING_SORT_CHOICES
from ratings.models import Rating
from ratings.selectors import RATING_PAGE_SORTS
from ratings.services import rating_upsert
from tests.factories import GenreFactory, ItemFactory, RatingFactory

PAGE = reverse("ratings:my_ratings")
EXPORT = reverse("ratings:export")
IMPORT = reverse("ratings:import")


@pytest.fixture
def films(db):  # type: ignore[no-untyped-def]
    drama = GenreFactory(name="Drama")
    heat = ItemFactory(title="Heat", year=1995)
    heat.genres.add(drama, GenreFactory(name="Crime"))
    alien = ItemFactory(title="alien", year=1979)
    casablanca = ItemFactory(title="Casablanca", year=1942)
    casablanca.genres.add(drama)
    return {"heat": heat, "alien": alien, "casablanca": casablanca}


@pytest.fixture
def alices_ratings(alice, films):  # type: ignore[no-untyped-def]
    """Heat rated longest ago (3.0), alien 5.0, Casablanca most recently (1.5)."""
    now = timezone.now()
    for days_ago, (name, score) in zip(
        (3, 2, 1), [("heat", 3.0), ("alien", 5.0), ("casablanca", 1.5)], strict=True
    ):
        when = now - timedelta(days=days_ago)
        RatingFactory(user=alice, item=films[name], score=score, created_at=when, updated_at=when)
    return films


def titles(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [rating.item.title for rating in response.context["page"]]


def upload(text: str | bytes, name: str = "ratings.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text, content_type="text/csv")


def scores(user) -> dict[int, float]:  # type: ignore[no-untyped-def]
    return dict(Rating.objects.filter(user=user).values_list("item_id", "score"))


# ---- the page -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["Casablanca", "alien", "Heat"]),
        ("oldest", ["Heat", "alien", "Casablanca"]),
        ("score-high", ["alien", "Heat", "Casablanca"]),
        ("score-low", ["Casablanca", "Heat", "alien"]),
        ("title", ["alien", "Casablanca", "Heat"]),  # case does not matter
        ("", ["Casablanca", "alien", "Heat"]),
        ("nonsense'; DROP TABLE", ["Casablanca", "alien", "Heat"]),  # unknown: the default, no error
    ],
)
def test_it_sorts_by_date_score_or_title(client, alice, alices_ratings, sort, expected) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.get(PAGE, {"sort": sort})
    assert response.status_code == 200
    assert titles(response) == expected


def test_the_sort_select_offers_every_sort_and_shows_the_current_one(client, alice, alices_ratings) -> None:  # type: ignore[no-untyped-def]
    assert [key for key, _ in RATING_SORT_CHOICES] == list(RATING_PAGE_SORTS)
    client.force_login(alice)
    html = client.get(PAGE, {"sort": "score-low"}).content.decode()
    assert '<form class="ratings-sort" method="get"' in html
    assert '<option value="score-low" selected>' in html


def test_page_links_keep_the_sort(client, alice, films) -> None:  # type: ignore[no-untyped-def]
    for n in range(51):
        RatingFactory(user=alice, item=ItemFactory(title=f"Film {n:02}"))
    client.force_login(alice)
    html = client.get(PAGE, {"sort": "title"}).content.decode()
    assert 'href="?sort=title&amp;page=2"' in html


def test_each_row_has_the_title_link_year_genres_widget_and_date(client, alice, alices_ratings) -> None:  # type: ignore[no-untyped-def]
    heat = alices_ratings["heat"]
    client.force_login(alice)
    response = client.get(PAGE)
    html = response.content.decode()
    assert f'href="{reverse("catalog:item_detail", args=[heat.pk])}">Heat</a>' in html
    assert ">1995<" in html
    assert "Crime, Drama" in html
    # The site's half-star widget, posting to the rate URL with Heat's 3.0 checked, and its Clear.
    assert f'action="{reverse("ratings:rate", args=[heat.pk])}"' in html
    assert f'id="rate-{heat.pk}-3.0" name="score" value="3.0" checked' in html
    assert f'formaction="{reverse("ratings:delete", args=[heat.pk])}"' in html
    assert "You have rated 3 films." in html
    assert f'href="{EXPORT}"' in html
    assert f'action="{IMPORT}"' in html and 'enctype="multipart/form-data"' in html


def test_the_page_lists_only_your_ratings_in_few_queries(
    client, alice, bob, alices_ratings, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    rating_upsert(user=bob, item=ItemFactory(title="Bob's film"), score=2.0)
    for n in range(20):
        RatingFactory(user=alice, item=ItemFactory(title=f"Film {n}"))
    client.force_login(alice)
    with django_assert_max_num_queries(8):  # session, user, count, page, genres: not one per row
        response = client.get(PAGE)
    assert "Bob's film" not in titles(response)
    assert len(titles(response)) == 23


def test_someone_without_ratings_is_pointed_to_onboarding_and_browse(client, charlie) -> None:  # type: ignore[no-untyped-def]
    client.force_login(charlie)
    html = client.get(PAGE).content.decode()
    assert 'data-testid="ratings-empty"' in html
    assert f'href="{reverse("recommender:onboarding")}"' in html
    assert f'href="{reverse("catalog:item_list")}"' in html
    assert f'action="{IMPORT}"' in html  # a newcomer can bring their ratings along
    assert 'href="' + EXPORT not in html


def test_the_page_loads_its_own_stylesheet(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    assert "css/my_ratings.css" in client.get(PAGE).content.decode()


# ---- export ---------------------------------------------------------------------


def test_the_export_is_a_csv_download_of_your_ratings_only(client, alice, bob, alices_ratings) -> None:  # type: ignore[no-untyped-def]
    rating_upsert(user=bob, item=alices_ratings["heat"], score=0.5)
    client.force_login(alice)
    response = client.get(EXPORT)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="tastebase-ratings-alice.csv"'
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = []
    for name in sorted(alices_ratings, key=lambda name: alices_ratings[name].pk):  # item id order
        item = alices_ratings[name]
        rating = Rating.objects.get(user=alice, item=item)
        rated_at = rating.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        expected.append([str(item.pk), item.title, str(item.year), f"{rating.score:.1f}", rated_at])
    assert rows == [["item_id", "title", "year", "score", "rated_at"], *expected]
    assert [row[3] for row in rows[1:]] == ["3.0", "5.0", "1.5"]


def test_the_export_streams_tuples_never_rating_objects(client, alice, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    Rating.objects.bulk_create(
        [
            Rating(user=alice, item=item, score=4.0, created_at=timezone.now(), updated_at=timezone.now())
            for item in ItemFactory.create_batch(1200)
        ]
    )

    def no_instances(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the export built a Rating instance")

    monkeypatch.setattr(Rating, "from_db", classmethod(no_instances))
    client.force_login(alice)
    chunks = list(client.get(EXPORT).streaming_content)
    assert len(chunks) > 1  # written out as it is read
    assert sum(chunk.count(b"\n") for chunk in chunks) == 1201


# ---- import ---------------------------------------------------------------------


def test_an_import_applies_every_row_and_says_how_many_were_new_or_changed(
    client, alice, alices_ratings
) -> None:  # type: ignore[no-untyped-def]
    heat, alien = alices_ratings["heat"], alices_ratings["alien"]
    up = ItemFactory(title="Up", year=2009)
    client.force_login(alice)
    text = f"item_id,score\n{heat.pk},4.5\n{alien.pk},5.0\n{up.pk},2\n"
    response = client.post(IMPORT, {"file": upload(text)}, follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "Imported 3 ratings (1 new, 1 changed)." in response.content.decode()
    assert scores(alice) == {heat.pk: 4.5, alien.pk: 5.0, up.pk: 2.0, alices_ratings["casablanca"].pk: 1.5}


def test_an_import_with_errors_applies_nothing_and_lists_them_by_line(client, alice, alices_ratings) -> None:  # type: ignore[no-untyped-def]
    heat = alices_ratings["heat"]
    before = scores(alice)
    client.force_login(alice)
    text = f"item_id,score\n{heat.pk},4.5\n{heat.pk},2\nx,4\n"
    response = client.post(IMPORT, {"file": upload(text)})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported: 2 problems in the file" in html
    assert f"<strong>Line 3:</strong> item {heat.pk} is already on line 2." in html
    assert "<strong>Line 4:</strong> item_id &#x27;x&#x27; is not a whole number." in html
    assert scores(alice) == before
    assert titles(response) == ["Casablanca", "alien", "Heat"]  # the page is still there around the errors
    # A second upload form sits under the errors, so the import panel need not cover them.
    assert html.count(f'action="{IMPORT}"') == 2
    assert html.count('name="csrfmiddlewaretoken"') >= 2


def test_importing_one_rating_says_so_in_the_singular(client, alice, films) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(IMPORT, {"file": upload(f"item_id,score\n{films['heat'].pk},4\n")}, follow=True)
    assert "Imported 1 rating (1 new, 0 changed)." in response.content.decode()


def test_only_the_first_twenty_errors_are_listed(client, alice, films) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    text = "item_id,score\n" + "".join(f"film{n},4\n" for n in range(25))
    html = client.post(IMPORT, {"file": upload(text)}).content.decode()
    assert html.count("<li><strong>Line ") == 20
    assert "…and 5 more." in html
    assert "Nothing was imported: 25 problems in the file" in html


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "The file is empty."),
        (b"item_id,score\n1,4\xff\n", "<strong>Line 2:</strong> this line is not UTF-8 text"),
        (b"film,stars\n1,4\n", "<strong>Line 1:</strong> unknown column &#x27;film&#x27; in the header."),
    ],
)
def test_an_unreadable_file_is_reported(client, alice, content, expected) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(IMPORT, {"file": upload(content)})
    assert response.status_code == 400
    assert expected in response.content.decode()


def test_a_file_over_the_limit_is_refused(client, alice, films, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TASTEBASE_RATINGS_IMPORT_MAX_ROWS = 2
    client.force_login(alice)
    pks = [item.pk for item in films.values()]
    response = client.post(IMPORT, {"file": upload("item_id,score\n" + "".join(f"{pk},4\n" for pk in pks))})
    assert "The file has more than 2 ratings (line 4 is one too many)" in response.content.decode()
    response = client.post(IMPORT, {"file": upload("item_id,score\n" + "9" * 400 + ",4\n")})
    assert "The file is larger than 400 bytes." in response.content.decode()
    assert not Rating.objects.filter(user=alice).exists()


def test_posting_without_a_file_shows_the_form_error(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    response = client.post(IMPORT, {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_export_then_import_through_the_site_changes_nothing(client, alice, alices_ratings) -> None:  # type: ignore[no-untyped-def]
    before = list(
        Rating.objects.filter(user=alice).order_by("pk").values_list("item_id", "score", "updated_at")
    )
    client.force_login(alice)
    exported = b"".join(client.get(EXPORT).streaming_content)
    response = client.post(IMPORT, {"file": upload(exported)}, follow=True)
    assert "Imported 3 ratings (0 new, 0 changed)." in response.content.decode()
    assert (
        list(Rating.objects.filter(user=alice).order_by("pk").values_list("item_id", "score", "updated_at"))
        == before
    )


# ---- who may do what ----------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, EXPORT])
def test_anonymous_visitors_are_sent_to_log_in(client, db, url) -> None:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_anonymous_import_is_refused(client, films) -> None:  # type: ignore[no-untyped-def]
    response = client.post(IMPORT, {"file": upload(f"item_id,score\n{films['heat'].pk},4\n")})
    assert response["Location"].startswith(reverse("login"))
    assert not Rating.objects.exists()


def test_an_import_without_the_csrf_token_is_refused(alice, films) -> None:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(IMPORT, {"file": upload(f"item_id,score\n{films['heat'].pk},4\n")})
    assert response.status_code == 403
    assert not Rating.objects.exists()


def test_an_import_only_ever_writes_the_signed_in_users_ratings(client, alice, bob, films) -> None:  # type: ignore[no-untyped-def]
    heat = films["heat"]
    rating_upsert(user=bob, item=heat, score=1.0)
    client.force_login(alice)
    # Neither a form field nor a column can name another user.
    client.post(IMPORT, {"file": upload(f"item_id,score\n{heat.pk},5\n"), "user": bob.pk, "username": "bob"})
    response = client.post(IMPORT, {"file": upload(f"user,item_id,score\nbob,{heat.pk},0.5\n")})
    assert "unknown column &#x27;user&#x27;" in response.content.decode()
    assert scores(bob) == {heat.pk: 1.0}
    assert scores(alice) == {heat.pk: 5.0}


def test_import_and_export_answer_only_their_methods(client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    assert client.get(IMPORT).status_code == 405
    assert client.post(EXPORT).status_code == 405
