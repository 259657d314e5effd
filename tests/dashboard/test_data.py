"""Data at a glance: each aggregate against numbers worked out by hand on a tiny table."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ratings.services import item_aggregates_recompute, user_rating_stamps_touch
from recommender.dashboard_selectors import (
    coldest_items,
    data_totals,
    fold_in_failure_versions,
    most_active_users,
    rating_distribution,
    ratings_per_day,
)
from recommender.models import ModelVersion
from tests.factories import ItemFactory, RatingFactory, UserFactory

from .conftest import figures


def noon(day: int) -> datetime:
    return datetime(2024, 1, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def tiny(db: Any) -> dict[str, Any]:
    """ann rates 3 items, ben 2, cy 1; items 4 and 5 (the newest) have no ratings.

    day    Jan 1      Jan 3                  Jan 5
    ann    i1 5.0     i2 4.0, i3 3.5
    ben               i1 4.0                 i2 1.0
    cy                                       i1 4.0
    """
    ann, ben, cy = (UserFactory(username=name) for name in ("ann", "ben", "cy"))
    items = [ItemFactory(title=f"Item {n}") for n in range(1, 6)]
    for user, item, score, day in [
        (ann, 0, 5.0, 1),
        (ann, 1, 4.0, 3),
        (ann, 2, 3.5, 3),
        (ben, 0, 4.0, 3),
        (ben, 1, 1.0, 5),
        (cy, 0, 4.0, 5),
    ]:
        RatingFactory(user=user, item=items[item], score=score, created_at=noon(day), updated_at=noon(day))
    item_aggregates_recompute()
    user_rating_stamps_touch(user_ids=[ann.pk, ben.pk, cy.pk], changed_at=noon(5))
    return {"users": (ann, ben, cy), "items": items}


def test_totals_come_from_the_item_counts_and_the_rating_stamps(tiny: dict[str, Any]) -> None:
    totals = data_totals()

    assert (totals.ratings, totals.raters, totals.items, totals.rated_items) == (6, 3, 5, 3)
    assert totals.unrated_items == 2
    assert totals.mean_score == pytest.approx(21.5 / 6)
    assert totals.ratings_per_rater == pytest.approx(2.0)


def test_ratings_per_day_counts_each_day_up_to_the_latest_rating(tiny: dict[str, Any]) -> None:
    week = ratings_per_day(days=7)
    window = ratings_per_day(days=3, until=date(2024, 1, 4))

    assert [(d.day, d.ratings) for d in week] == [
        (date(2023, 12, 30), 0),
        (date(2023, 12, 31), 0),
        (date(2024, 1, 1), 1),
        (date(2024, 1, 2), 0),
        (date(2024, 1, 3), 3),
        (date(2024, 1, 4), 0),
        (date(2024, 1, 5), 2),
    ]
    assert [(d.day, d.ratings) for d in window] == [
        (date(2024, 1, 2), 0),
        (date(2024, 1, 3), 3),
        (date(2024, 1, 4), 0),
    ]


def test_ratings_per_day_is_empty_without_ratings(db: Any) -> None:
    assert ratings_per_day() == []


def test_the_distribution_lists_every_half_star(tiny: dict[str, Any]) -> None:
    counts = {s.score: s.ratings for s in rating_distribution()}

    assert list(counts) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
    assert counts == {0.5: 0, 1.0: 1, 1.5: 0, 2.0: 0, 2.5: 0, 3.0: 0, 3.5: 1, 4.0: 3, 4.5: 0, 5.0: 1}


def test_most_active_users_rate_most_first(tiny: dict[str, Any]) -> None:
    ann, ben, _ = tiny["users"]

    top = most_active_users(limit=10)
    two = most_active_users(limit=2)

    assert [(u.username, u.ratings) for u in top] == [("ann", 3), ("ben", 2), ("cy", 1)]
    assert [u.mean_score for u in top] == pytest.approx([12.5 / 3, 2.5, 4.0])
    assert top[0].last_rated == noon(3) and top[1].last_rated == noon(5)
    assert [u.user_id for u in two] == [ann.pk, ben.pk]


def test_the_coldest_items_are_the_unrated_newest_first(tiny: dict[str, Any]) -> None:
    items = tiny["items"]

    cold = coldest_items(limit=3)

    assert [(c.item_id, c.ratings) for c in cold] == [(items[4].pk, 0), (items[3].pk, 0), (items[2].pk, 1)]
    assert cold[0].mean_score is None and cold[2].mean_score == 3.5


def test_fold_in_failures_list_live_versions_and_any_with_failures(db: Any) -> None:
    live = ModelVersion.objects.create(kind="rating", algorithm="explicit_als", status="active")
    failing = ModelVersion.objects.create(
        kind="ranking", algorithm="implicit_als", status="retired", fold_in_failures=2
    )
    ModelVersion.objects.create(kind="rating", algorithm="explicit_als", status="retired")

    assert fold_in_failure_versions() == [failing, live]


def test_the_data_page_shows_the_numbers_and_draws_the_charts(as_staff: Client, tiny: dict[str, Any]) -> None:
    ModelVersion.objects.create(
        kind="ranking", algorithm="implicit_als", status="retired", fold_in_failures=7
    )

    html = as_staff.get(reverse("dashboard:data")).content.decode()

    charts = figures(html)
    per_day, distribution = charts["Ratings per day"], charts["Rating distribution"]
    assert per_day.count('<rect class="bar') == 60
    assert re.findall(r"<title>([A-Z][a-z]{2} \d+ \w+ 2024): ([1-9]\d*) rating", per_day) == [
        ("Mon 1 Jan 2024", "1"),
        ("Wed 3 Jan 2024", "3"),
        ("Fri 5 Jan 2024", "2"),
    ]
    assert "6 new or changed ratings, Nov 7 – Jan 5, 2024" in per_day
    assert distribution.count('<rect class="bar') == 10
    assert 'data-value="3"' in distribution and "4 stars: 3 ratings" in distribution
    assert re.findall(r">(ann|ben|cy)</a>", html) == ["ann", "ben", "cy"]
    assert "<strong>6</strong>" in html and "<strong>3</strong>" in html  # ratings, raters
    assert "Item 5" in html and ">7</td>" in html  # the coldest item, the fold-in failures
