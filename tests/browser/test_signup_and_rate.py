"""A real person's first visit, in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from ratings.models import Rating
from tests.factories import ItemFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_up_search_rate_and_find_it_under_my_ratings(live_server: Any, page: Any) -> None:
    ItemFactory(title="Toy Story", year=1995)
    ItemFactory(title="Heat", year=1995)
    password = "a-long-enough-pass-123"

    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "dora")
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.click("button[type=submit]")
    page.wait_for_selector("text=dora")

    page.fill("#id_q", "toy")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("text=1 item")
    page.click("a.title:has-text('Toy Story')")

    page.select_option("#id_score", "4.5")
    page.click("button:has-text('Rate')")
    page.wait_for_selector("[data-testid=my-rating]")
    assert "4.5" in page.inner_text("[data-testid=my-rating]")

    page.click("text=My ratings")
    row = page.locator("table.ratings tbody tr")
    assert row.count() == 1
    assert "Toy Story" in row.inner_text()
    assert "4.5" in row.inner_text()
    assert Rating.objects.get(user__username="dora").score == 4.5
