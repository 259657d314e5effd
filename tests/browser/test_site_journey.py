"""A new person's first visit, in Debian's chromium, on MovieLens 100K with trained models.

Sign up → onboarding (rate 10) → For you is personal and explained → one more 5★
changes it → hide an item and it is gone everywhere → watchlist add and remove →
keyboard-only rating → the catalogue on a phone has no horizontal scroll. Every main
page is saved as a full-page screenshot under ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command

from ratings.models import Hidden, Rating, Watchlist
from recommender.models import ItemNeighbor, ModelVersion, VersionStatus
from recommender.selectors import for_you_list
from recommender.services import model_train

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "a-long-enough-pass-123"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ml100k_site(live_server: Any) -> Any:
    """ML-100K imported and the three default kinds trained (small iteration counts: this
    is about the site, not the models' accuracy)."""
    call_command("load_demo_data", verbosity=0)
    model_train(kind="rating", algorithm="explicit_als", params={"factors": 16, "iterations": 8})
    model_train(kind="ranking", algorithm="implicit_als", params={"factors": 16, "iterations": 8})
    model_train(kind="similarity", algorithm="item_knn", params={})
    assert ModelVersion.objects.filter(status=VersionStatus.ACTIVE).count() == 3
    return live_server


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def card_ids(page: Any, list_testid: str) -> list[int]:
    return [
        int(x)
        for x in page.locator(f"[data-testid={list_testid}] li.item").evaluate_all(
            "cards => cards.map(c => c.dataset.itemId)"
        )
    ]


def rate_card(page: Any, item_id: int, score: str) -> None:
    """Click the half star ``score`` of the item's widget and wait for the saved answer."""
    page.click(f'label[for="rate-{item_id}-{score}"]')
    page.wait_for_selector(f'[data-testid=rate-{item_id}] .rate-status:has-text("Saved {score}")')


def test_a_new_person_signs_up_onboards_and_gets_explained_recommendations(
    ml100k_site: Any, page: Any
) -> None:
    base = ml100k_site.url
    page.goto(f"{base}/")
    shot(page, "home-anonymous")
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", "dora")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")

    # Onboarding: a welcome, progress, and films to rate inline.
    page.wait_for_url(re.compile(r"/welcome/"))
    assert "Welcome to Tastebase, dora!" in page.inner_text(".messages")
    shot(page, "onboarding")
    offered = card_ids(page, "onboarding-items")
    assert len(offered) == 24
    for item_id in offered[:10]:
        rate_card(page, item_id, "4.5")
    page.wait_for_selector("[data-testid=onboarding-progress]:has-text('10 of 10 rated')")
    page.click("[data-testid=onboarding-done]")

    # For you: personal (not the popularity list), every item explained.
    page.wait_for_url(re.compile(r"/for-you/"))
    shot(page, "for-you")
    mine = card_ids(page, "for-you")
    popular = [r.item_id for r in for_you_list(user=AnonymousUser()).results[: len(mine)]]
    assert mine and mine != popular
    assert (
        page.locator("[data-testid=for-you] li.item").count()
        == page.locator("[data-testid=for-you] [data-testid=because]").count()
    )
    assert "ordered by the stars we think you'd give them" in page.inner_text("[data-testid=order-note]")
    assert not set(mine) & set(offered[:10])

    # One more rating, 5★, and the list changes on the next view.
    rate_card(page, mine[3], "5.0")
    assert "Your recommendations were updated." in page.inner_text(f"[data-testid=rate-{mine[3]}]")
    page.reload()
    after = card_ids(page, "for-you")
    assert mine[3] not in after and after != mine

    # Not interested: gone from For you, the home row and every similar list.
    gone = after[0]
    page.click(f"[data-testid=actions-{gone}] button:has-text('Not interested')")
    page.wait_for_selector(f"[data-testid=actions-{gone}] button:has-text('Hidden')")
    assert Hidden.objects.filter(user__username="dora", item_id=gone).exists()
    page.reload()
    assert gone not in card_ids(page, "for-you")
    page.goto(f"{base}/")
    shot(page, "home-signed-in")
    assert gone not in card_ids(page, "shelf-for-you")
    anchor = (
        ItemNeighbor.objects.filter(neighbor_id=gone)
        .order_by("rank")
        .values_list("item_id", flat=True)
        .first()
    )
    if anchor is not None:
        page.goto(f"{base}/items/{anchor}/")
        assert f"/items/{gone}/" not in page.inner_html("[data-testid=similar]")

    # Watchlist: add from For you, see it on its page, remove it there.
    page.goto(f"{base}/for-you/")
    wanted = card_ids(page, "for-you")[1]
    page.click(f"[data-testid=actions-{wanted}] button:has-text('Watchlist')")
    page.wait_for_selector(f"[data-testid=actions-{wanted}] button:has-text('On your watchlist')")
    page.goto(f"{base}/me/watchlist/")
    shot(page, "watchlist")
    assert card_ids(page, "watchlist") == [wanted]
    page.click(f"[data-testid=actions-{wanted}] button:has-text('On your watchlist')")
    page.wait_for_selector(f"[data-testid=actions-{wanted}] button:has-text('+ Watchlist')")
    assert not Watchlist.objects.filter(user__username="dora").exists()

    # Keyboard only: tab to the star widget on an item page, arrow keys, and it saves.
    target = after[5]
    page.goto(f"{base}/items/{target}/")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "score":
            break
    else:
        pytest.fail("the rating widget cannot be reached with Tab")
    page.keyboard.press("Space")  # the first (0.5) star
    for _ in range(6):
        page.keyboard.press("ArrowRight")  # up to 3.5
    page.wait_for_selector(f'[data-testid=rate-{target}] .rate-status:has-text("Saved 3.5")')
    assert Rating.objects.get(user__username="dora", item_id=target).score == 3.5
    shot(page, "item-page")

    page.fill("#site-search", "star wars")
    page.press("#site-search", "Enter")
    page.wait_for_url(re.compile(r"/browse/\?q=star"))
    assert "Star Wars" in page.inner_text("ul.items li.item >> nth=0")
    shot(page, "browse-search")
    page.goto(f"{base}/me/ratings/")
    shot(page, "my-ratings")


def test_the_catalogue_fits_a_phone_without_horizontal_scroll(ml100k_site: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page = context.new_page()
    try:
        for path, name in (("/", "home-phone"), ("/browse/", "browse-phone"), ("/items/50/", "item-phone")):
            page.goto(f"{ml100k_site.url}{path}")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
            shot(page, name)
    finally:
        context.close()


def test_staff_retrain_now_and_watch_the_bar_reach_a_new_live_version(
    ml100k_site: Any, page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the embedded default the run happens in the request; with a broker (the Postgres
    leg) a real Celery worker takes it from its own queue while the page polls."""
    from django.conf import settings

    from config.celery import app
    from tests.factories import UserFactory

    worker = None
    if settings.REDIS_URL:
        from tests.recommender.test_celery import Worker

        worker = Worker(queue=f"browser-{uuid.uuid4().hex[:8]}")
        monkeypatch.setitem(app.conf, "task_default_queue", worker.queue)
        worker.start()
    try:
        staff = UserFactory(username="operator", is_staff=True)
        staff.set_password(PASSWORD)
        staff.save()
        live_before = ModelVersion.objects.get(kind="ranking", status=VersionStatus.ACTIVE).pk
        page.goto(f"{ml100k_site.url}/accounts/login/?next=/dashboard/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(re.compile(r"/dashboard/"))
        shot(page, "dashboard")
        page.select_option("#retrain-card select[name=kind]", "ranking")
        page.click("#retrain-card button:has-text('Retrain now')")
        page.wait_for_selector("#training-progress[data-state=live]", timeout=180_000)
        assert "100%" in page.inner_text("#training-progress")
        shot(page, "dashboard-retrained")
        live_after = ModelVersion.objects.get(kind="ranking", status=VersionStatus.ACTIVE).pk
        assert live_after > live_before
        page.goto(f"{ml100k_site.url}/dashboard/data/")
        shot(page, "dashboard-data")
    finally:
        if worker is not None:
            worker.stop()
