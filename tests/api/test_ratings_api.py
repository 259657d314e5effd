"""The ratings API: your own ratings only — list, read, set, remove, and rate many at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import Item
from ratings.models import Rating
from ratings.services import item_aggregates_recompute, rating_change_listeners, rating_upsert
from tests.api.conftest import as_user, assert_error
from tests.factories import ItemFactory, RatingFactory, UserFactory

RATING_KEYS = {"item", "score", "created_at", "updated_at"}


def detail(item: Item | int) -> str:
    return reverse("api:rating_detail", kwargs={"item_id": item if isinstance(item, int) else item.pk})


def stats(item: Item) -> tuple[int, float, float | None]:
    item.refresh_from_db()
    return item.rating_count, item.rating_sum, item.rating_mean


def many_items(n: int) -> list[Item]:
    """``n`` items in one INSERT, in id order."""
    Item.objects.bulk_create(ItemFactory.build_batch(n))
    return list(Item.objects.order_by("-id")[:n])[::-1]


@pytest.fixture
def listener_calls() -> Iterator[list[int]]:
    """The user ids rating-change listeners are called with (after commit), in order."""
    calls: list[int] = []
    rating_change_listeners.append(calls.append)
    yield calls
    rating_change_listeners.remove(calls.append)


# ---- who may call -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "name", "body"),
    [
        ("get", "ratings", None),
        ("get", "rating_detail", None),
        ("put", "rating_detail", {"score": 4.0}),
        ("delete", "rating_detail", None),
        ("post", "ratings_bulk", {"ratings": [{"item": 1, "score": 4.0}]}),
    ],
)
def test_anonymous_visitors_get_401_and_nothing_changes(api, method: str, name: str, body: Any) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    url = reverse(f"api:{name}", kwargs={"item_id": item.pk} if name == "rating_detail" else {})
    assert_error(getattr(api, method)(url, body, format="json"), 401, "not_authenticated")
    assert Rating.objects.count() == 0


# ---- GET ratings/ -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_only_your_own_ratings_most_recent_first(api, alice, bob) -> None:  # type: ignore[no-untyped-def]
    first, second, bobs = ItemFactory(title="First"), ItemFactory(title="Second"), ItemFactory(title="Bob's")
    rating_upsert(user=alice, item=first, score=3.0)
    rating_upsert(user=alice, item=second, score=4.5)
    rating_upsert(user=bob, item=bobs, score=1.0)
    rating_upsert(user=bob, item=first, score=5.0)
    body = as_user(api, alice).get(reverse("api:ratings")).json()
    assert body["count"] == 2
    assert [(r["item"]["title"], r["score"]) for r in body["results"]] == [("Second", 4.5), ("First", 3.0)]
    row = body["results"][1]
    assert set(row) == RATING_KEYS and row["item"]["rating_count"] == 2 and row["item"]["rating_mean"] == 4.0
    assert row["created_at"] == row["updated_at"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-updated_at", ["C", "B", "A"]),
        ("updated_at", ["A", "B", "C"]),
        ("-score", ["B", "C", "A"]),
        ("score", ["A", "C", "B"]),
    ],
)
def test_every_ordering_sorts_your_ratings(api, alice, ordering: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    for title, score in (("A", 2.0), ("B", 5.0), ("C", 3.5)):
        rating_upsert(user=alice, item=ItemFactory(title=title), score=score)
    results = as_user(api, alice).get(reverse("api:ratings"), {"ordering": ordering}).json()["results"]
    assert [r["item"]["title"] for r in results] == expected


@pytest.mark.django_db
def test_the_item_filter_keeps_your_rating_of_that_item(api, alice, bob) -> None:  # type: ignore[no-untyped-def]
    wanted, other = ItemFactory(), ItemFactory()
    rating_upsert(user=alice, item=wanted, score=4.0)
    rating_upsert(user=alice, item=other, score=2.0)
    rating_upsert(user=bob, item=other, score=1.0)
    as_user(api, alice)
    results = api.get(reverse("api:ratings"), {"item": wanted.pk}).json()["results"]
    assert [r["item"]["id"] for r in results] == [wanted.pk]
    as_user(api, bob)
    assert api.get(reverse("api:ratings"), {"item": wanted.pk}).json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ordering": "item"}, "ordering"),
        ({"item": "abc"}, "item"),
        ({"item": "0"}, "item"),
        ({"item": str(2**64)}, "item"),
    ],
)
def test_malformed_list_parameters_are_a_400(api, alice, params, field: str) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(as_user(api, alice).get(reverse("api:ratings"), params), 400, "invalid")
    assert list(error["fields"]) == [field]
    if field == "ordering":
        assert all(
            key in error["fields"]["ordering"][0] for key in ("-updated_at", "updated_at", "-score", "score")
        )


@pytest.mark.django_db
def test_the_list_is_paginated_with_a_bounded_number_of_queries(  # type: ignore[no-untyped-def]
    api, alice, django_assert_max_num_queries
) -> None:
    for item in many_items(30):
        RatingFactory(user=alice, item=item, score=3.0)
    as_user(api, alice)
    with django_assert_max_num_queries(4):  # token, count, page with items, genres
        body = api.get(reverse("api:ratings"), {"page_size": 20}).json()
    assert body["count"] == 30 and len(body["results"]) == 20 and body["next"]


# ---- GET / PUT / DELETE ratings/{item_id}/ --------------------------------------------


@pytest.mark.django_db
def test_put_creates_with_201_then_changes_with_200_and_keeps_aggregates_exact(api, alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rating_upsert(user=bob, item=item, score=2.0)
    as_user(api, alice)
    created = api.put(detail(item), {"score": 4.0}, format="json")
    assert created.status_code == 201
    assert set(created.json()) == RATING_KEYS and created.json()["score"] == 4.0
    assert created.json()["item"]["id"] == item.pk
    assert stats(item) == (2, 6.0, 3.0)
    changed = api.put(detail(item), {"score": 5.0}, format="json")
    assert changed.status_code == 200 and changed.json()["score"] == 5.0
    assert changed.json()["created_at"] == created.json()["created_at"]
    assert datetime.fromisoformat(changed.json()["updated_at"]) > datetime.fromisoformat(
        created.json()["updated_at"]
    )
    assert stats(item) == (2, 7.0, 3.5)
    assert api.put(detail(item), {"score": 5.0}, format="json").status_code == 200  # same score: still 200
    assert Rating.objects.get(user=alice, item=item).score == 5.0
    assert item_aggregates_recompute() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"score": 5.5}, "outside 0.5–5.0"),
        ({"score": 0}, "outside 0.5–5.0"),
        ({"score": 3.3}, "not a multiple of 0.5"),
        ({"score": "abc"}, "valid number"),
        ({"score": None}, "null"),
        ({}, "required"),
    ],
)
def test_put_rejects_a_score_that_is_not_a_half_star_naming_the_field(api, alice, body, message: str) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    error = assert_error(as_user(api, alice).put(detail(item), body, format="json"), 400, "invalid")
    assert list(error["fields"]) == ["score"]
    assert message in error["fields"]["score"][0]
    assert Rating.objects.count() == 0 and stats(item) == (0, 0.0, None)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_unknown_item_is_a_404(api, alice, method: str) -> None:  # type: ignore[no-untyped-def]
    missing = ItemFactory().pk + 1
    response = getattr(as_user(api, alice), method)(detail(missing), {"score": 4.0}, format="json")
    assert f"No item with id {missing}" in assert_error(response, 404, "not_found")["message"]
    assert_error(getattr(api, method)(detail(10**30), {"score": 4.0}, format="json"), 404, "not_found")
    assert Rating.objects.count() == 0


@pytest.mark.django_db
def test_get_returns_your_rating_or_a_404(api, alice) -> None:  # type: ignore[no-untyped-def]
    rated, unrated = ItemFactory(), ItemFactory()
    rating_upsert(user=alice, item=rated, score=3.5)
    as_user(api, alice)
    body = api.get(detail(rated)).json()
    assert set(body) == RATING_KEYS and body["score"] == 3.5 and body["item"]["id"] == rated.pk
    assert "not rated" in assert_error(api.get(detail(unrated)), 404, "not_found")["message"]


@pytest.mark.django_db
def test_delete_removes_your_rating_with_204_then_404(api, alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rating_upsert(user=alice, item=item, score=4.0)
    rating_upsert(user=bob, item=item, score=2.0)
    as_user(api, alice)
    response = api.delete(detail(item))
    assert response.status_code == 204 and not response.content
    assert stats(item) == (1, 2.0, 2.0)
    assert_error(api.delete(detail(item)), 404, "not_found")
    assert list(Rating.objects.values_list("user__username", flat=True)) == ["bob"]


@pytest.mark.django_db
def test_bob_can_neither_see_nor_change_alices_rating_by_any_route(api, alice, bob) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rating_upsert(user=alice, item=item, score=4.0)
    as_user(api, bob)
    assert_error(api.get(detail(item)), 404, "not_found")
    assert_error(api.delete(detail(item)), 404, "not_found")
    assert api.get(reverse("api:ratings")).json()["count"] == 0
    assert api.get(reverse("api:ratings"), {"item": item.pk}).json()["count"] == 0
    assert api.get(reverse("api:item_detail", kwargs={"item_id": item.pk})).json()["your_rating"] is None
    # Bob's writes make Bob's own rating, never touch Alice's.
    assert api.put(detail(item), {"score": 1.0}, format="json").status_code == 201
    bulk = api.post(
        reverse("api:ratings_bulk"), {"ratings": [{"item": item.pk, "score": 2.0}]}, format="json"
    )
    assert bulk.json() == {"created": 0, "updated": 1}
    assert Rating.objects.get(user=alice, item=item).score == 4.0
    assert Rating.objects.get(user=bob, item=item).score == 2.0
    assert stats(item) == (2, 6.0, 3.0)


# ---- POST ratings/bulk/ --------------------------------------------------------------


def bulk(api: APIClient, rows: list[dict[str, Any]]) -> Any:
    return api.post(reverse("api:ratings_bulk"), {"ratings": rows}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{}, {"ratings": []}, {"ratings": "4.5"}, {"ratings": [{"item": 1, "score": 4.0}] * 1001}],
    ids=["missing", "empty", "not-a-list", "1001-rows"],
)
def test_bulk_needs_one_to_a_thousand_rows(api, alice, body) -> None:  # type: ignore[no-untyped-def]
    response = as_user(api, alice).post(reverse("api:ratings_bulk"), body, format="json")
    assert list(assert_error(response, 400, "invalid")["fields"]) == ["ratings"]
    assert Rating.objects.count() == 0


@pytest.mark.django_db
def test_a_malformed_row_is_named_by_its_position(api, alice) -> None:  # type: ignore[no-untyped-def]
    item = ItemFactory()
    rows = [{"item": item.pk, "score": 4.0}, {"item": "first", "score": 4.0}, {"score": "x"}]
    error = assert_error(bulk(as_user(api, alice), rows), 400, "invalid")
    assert set(error["fields"]["ratings"]) == {"1", "2"}
    assert set(error["fields"]["ratings"]["1"]) == {"item"}
    assert set(error["fields"]["ratings"]["2"]) == {"item", "score"}
    assert Rating.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_row", "field", "message"),
    [
        ("unknown item", "item", "no item with id"),
        ("score above five", "score", "outside 0.5–5.0"),
        ("score not a half star", "score", "not a multiple of 0.5"),
        ("item given twice", "item", "already in row 3"),
    ],
)
def test_one_bad_row_among_a_thousand_applies_nothing_and_is_named(  # type: ignore[no-untyped-def]
    api, alice, bob, bad_row: str, field: str, message: str
) -> None:
    items = many_items(1000)
    rating_upsert(user=alice, item=items[0], score=1.0)  # an existing rating must stay as it is
    rating_upsert(user=bob, item=items[1], score=2.0)
    rows = [{"item": item.pk, "score": 4.0} for item in items]
    if bad_row == "unknown item":
        rows[500]["item"] = items[-1].pk + 1
    elif bad_row == "score above five":
        rows[500]["score"] = 5.5
    elif bad_row == "score not a half star":
        rows[500]["score"] = 4.25
    else:
        rows[500]["item"] = items[3].pk
    error = assert_error(bulk(as_user(api, alice), rows), 400, "invalid")
    assert list(error["fields"]) == ["ratings"] and list(error["fields"]["ratings"]) == ["500"]
    assert list(error["fields"]["ratings"]["500"]) == [field]
    assert message in error["fields"]["ratings"]["500"][field][0]
    assert "500" in error["message"]
    assert Rating.objects.count() == 2 and Rating.objects.get(user=alice).score == 1.0
    assert stats(items[0]) == (1, 1.0, 1.0) and stats(items[500]) == (0, 0.0, None)
    assert item_aggregates_recompute() == 0


@pytest.mark.django_db
def test_every_bad_row_is_reported_at_once(api, alice) -> None:  # type: ignore[no-untyped-def]
    first, second = ItemFactory(), ItemFactory()
    missing = second.pk + 1
    rows = [
        {"item": first.pk, "score": 4.0},
        {"item": missing, "score": 4.0},
        {"item": second.pk, "score": 0.0},
        {"item": first.pk, "score": 6.0},
    ]
    error = assert_error(bulk(as_user(api, alice), rows), 400, "invalid")
    assert error["fields"]["ratings"] == {
        "1": {"item": [f"no item with id {missing}"]},
        "2": {"score": ["score 0.0 is outside 0.5–5.0"]},
        "3": {"item": [f"item {first.pk} is already in row 0"], "score": ["score 6.0 is outside 0.5–5.0"]},
    }
    assert Rating.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_good_thousand_rows_are_applied_at_once_with_one_fold_in(  # type: ignore[no-untyped-def]
    api, alice, bob, listener_calls, django_assert_max_num_queries
) -> None:
    items = many_items(1000)
    rating_upsert(user=alice, item=items[0], score=1.0)  # changed by the batch
    rating_upsert(user=alice, item=items[1], score=4.5)  # rewritten with the same score
    rating_upsert(user=bob, item=items[0], score=3.0)  # someone else's rating of the same items
    rating_upsert(user=bob, item=items[999], score=2.5)
    listener_calls.clear()
    scores = [0.5 + (i % 10) / 2 for i in range(1000)]  # every half star
    scores[1] = 4.5
    rows = [{"item": item.pk, "score": score} for item, score in zip(items, scores, strict=True)]
    as_user(api, alice)
    with django_assert_max_num_queries(40):  # about 25 (11 of them aggregate updates), not one per row
        response = bulk(api, rows)
    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 998, "updated": 2}
    assert listener_calls == [alice.pk]  # the fold-in ran once, after commit
    assert Rating.objects.filter(user=alice).count() == 1000
    assert dict(Rating.objects.filter(user=alice).values_list("item_id", "score")) == {
        item.pk: score for item, score in zip(items, scores, strict=True)
    }
    assert stats(items[0]) == (2, 3.5, 1.75)
    assert stats(items[1]) == (1, 4.5, 4.5)
    assert stats(items[999]) == (2, 2.5 + scores[999], (2.5 + scores[999]) / 2)
    assert item_aggregates_recompute() == 0  # every aggregate was already exact


@pytest.mark.django_db(transaction=True)
def test_repeating_a_bulk_request_only_updates(api, alice, listener_calls) -> None:  # type: ignore[no-untyped-def]
    items = many_items(3)
    rows = [{"item": item.pk, "score": 3.0} for item in items]
    as_user(api, alice)
    assert bulk(api, rows).json() == {"created": 3, "updated": 0}
    assert bulk(api, rows).json() == {"created": 0, "updated": 3}
    assert listener_calls == [alice.pk, alice.pk]
    assert [stats(item) for item in items] == [(1, 3.0, 3.0)] * 3
    assert item_aggregates_recompute() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and concurrent writers: the Postgres leg"
)
def test_concurrent_bulk_requests_sharing_items_neither_deadlock_nor_drift(api) -> None:  # type: ignore[no-untyped-def]
    from tests.recommender.test_concurrency import run_threads

    items = many_items(200)
    users = [UserFactory(username=f"bulk{u}") for u in range(6)]
    rng = np.random.default_rng(7)

    def writer(user: Any, seed: int) -> Any:
        order = np.random.default_rng(seed).permutation(len(items))  # each batch in its own order
        rows = [{"item": items[i].pk, "score": float(rng.choice(np.arange(1, 11) / 2))} for i in order]

        def send() -> None:
            client = as_user(APIClient(), user)
            for _ in range(4):  # create, then change ratings, three times
                response = bulk(client, rows)
                assert response.status_code == 200, response.json()
                rows.reverse()
                for row in rows[:50]:
                    row["score"] = 5.5 - row["score"]

        return send

    def single(user: Any) -> Any:
        return lambda: [rating_upsert(user=user, item=items[i], score=4.0) for i in range(0, 200, 7)]

    errors = run_threads([writer(user, seed) for seed, user in enumerate(users)] + [single(users[0])])
    assert errors == []
    assert Rating.objects.count() == 6 * 200
    assert item_aggregates_recompute() == 0
