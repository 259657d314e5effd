"""The dashboard's front page: live versions, metrics over time, activate and roll back."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from recommender.models import ModelVersion, VersionStatus
from recommender.services import PromotionRefused
from tests.recommender.conftest import Planted
from tests.recommender.test_pipeline import train

from .conftest import HTMX, figures, section

INDEX = reverse("dashboard:index")
ROLLBACK = reverse("dashboard:rollback")
QUICK = {"factors": 4, "iterations": 8, "regularization": 1.0}


def activate_url(version: ModelVersion) -> str:
    return reverse("dashboard:activate", kwargs={"version_id": version.pk})


def live_card(html: str, kind: str) -> str:
    return section(html, f"live-{kind}")


@pytest.fixture
def refused(planted: Planted) -> tuple[ModelVersion, ModelVersion]:
    """A live rating version and a worse one the gate kept out (ready)."""
    good = train("rating")
    with pytest.raises(PromotionRefused):
        # Users folded in under a huge penalty: every prediction is the item's mean score.
        train("rating", params={"serving_regularization": 1e5})
    return good, ModelVersion.objects.get(status=VersionStatus.READY)


def test_an_empty_site_says_nothing_is_live_and_how_to_start(as_staff: Client) -> None:
    html = as_staff.get(INDEX).content.decode()

    for kind in ("rating", "ranking", "similarity"):
        assert "Nothing live" in live_card(html, kind)
        assert f"No {kind} versions yet" in section(html, f"kind-{kind}")
    assert "No RMSE yet." in figures(section(html, "kind-rating"))["RMSE"]


def test_the_page_shows_each_live_version_and_one_chart_point_per_version(
    as_staff: Client, refused: tuple[ModelVersion, ModelVersion]
) -> None:
    good, worse = refused
    ranking = train("ranking", params=QUICK)
    failed = ModelVersion.objects.create(
        kind="rating", algorithm="explicit_als", status="failed", error="boom"
    )

    html = as_staff.get(INDEX).content.decode()

    rating_card = live_card(html, "rating")
    assert "Live" in rating_card and good.algorithm in rating_card and f"#{good.pk}" in rating_card
    assert f"{good.metrics['rmse']:.4f}" in rating_card
    assert f"#{ranking.pk}" in live_card(html, "ranking")
    assert "Nothing live" in live_card(html, "similarity")

    panel = section(html, "kind-rating")
    charts = figures(panel)
    assert set(charts) == {"RMSE", "NDCG@10", "Catalog coverage"}
    # Two versions have metrics (the failed one has none): two points, the live one highlighted.
    rmse = charts["RMSE"]
    assert rmse.count('<circle class="point') == 2
    assert rmse.count("point--highlight") == 1
    assert f"#{good.pk} (active" in rmse and f"#{worse.pk} (ready" in rmse
    assert f'data-value="{good.metrics["rmse"]:.4f}"' in rmse
    # The versions table: one row each, newest first, with the action each allows.
    rows = re.findall(r'<tr class="dash-row dash-row--(\w+)" id="version-(\d+)"', panel)
    assert rows == [("failed", str(failed.pk)), ("ready", str(worse.pk)), ("active", str(good.pk))]
    assert activate_url(worse) in panel and activate_url(good) not in panel
    assert "boom" in panel
    assert figures(section(html, "kind-ranking"))["NDCG@10"].count('<circle class="point') == 1


def test_activating_a_version_the_gate_refuses_shows_its_reason_and_offers_to_force(
    as_staff: Client, refused: tuple[ModelVersion, ModelVersion]
) -> None:
    good, worse = refused

    response = as_staff.post(activate_url(worse), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200  # htmx only swaps 2xx answers in
    assert html.lstrip().startswith('<section class="dash-card dash-kind-panel" id="kind-rating"')
    assert f"promotion gate refused version #{worse.pk}: holdout rmse" in html
    assert f"Activate #{worse.pk} anyway" in html and 'name="force" value="on"' in html
    assert 'id="live-rating" hx-swap-oob="true"' in html and f"#{good.pk}" in live_card(html, "rating")
    assert ModelVersion.objects.get(kind="rating", status="active").pk == good.pk


def test_forcing_the_activation_makes_it_live_and_updates_the_live_card(
    as_staff: Client, refused: tuple[ModelVersion, ModelVersion]
) -> None:
    good, worse = refused

    html = as_staff.post(activate_url(worse), {"force": "on"}, **HTMX).content.decode()

    assert f"#{worse.pk} ({worse.algorithm}) is now the live rating model." in html
    assert f"#{worse.pk}" in live_card(html, "rating")
    worse.refresh_from_db()
    good.refresh_from_db()
    assert worse.status == VersionStatus.ACTIVE and good.status == VersionStatus.RETIRED


def test_without_javascript_a_refusal_renders_the_page_and_a_success_redirects(
    as_staff: Client, refused: tuple[ModelVersion, ModelVersion]
) -> None:
    _, worse = refused

    refusal = as_staff.post(activate_url(worse))
    forced = as_staff.post(activate_url(worse), {"force": "on"})
    after = as_staff.get(forced["Location"])

    assert refusal.status_code == 409
    assert f"promotion gate refused version #{worse.pk}" in section(refusal.content.decode(), "kind-rating")
    assert b"<!doctype html>" in refusal.content  # the whole page
    assert forced.status_code == 302 and forced["Location"] == f"{INDEX}#kind-rating"
    assert f"#{worse.pk} ({worse.algorithm}) is now the live rating model." in after.content.decode()


def test_a_version_that_cannot_be_activated_says_why(as_staff: Client) -> None:
    failed = ModelVersion.objects.create(kind="ranking", algorithm="implicit_als", status="failed")

    html = as_staff.post(activate_url(failed), {"force": "on"}, **HTMX).content.decode()

    assert f"version #{failed.pk} is failed; only ready or retired versions can be activated" in html
    assert "anyway" not in html
    assert as_staff.post(reverse("dashboard:activate", kwargs={"version_id": 999_999})).status_code == 404


def test_rollback_goes_back_to_the_previous_version_or_to_the_one_chosen(
    as_staff: Client, planted: Planted
) -> None:
    first = train("ranking", params=QUICK)
    second = train("ranking", params=QUICK, force=True)

    back = as_staff.post(ROLLBACK, {"kind": "ranking"}, **HTMX).content.decode()
    assert f"Rolled back: #{first.pk} (implicit_als) is live again." in back
    assert f"#{first.pk}" in live_card(back, "ranking")
    assert ModelVersion.objects.get(kind="ranking", status="active").pk == first.pk
    assert f"Roll back to #{second.pk}" in back  # the other one is retired now

    forward = as_staff.post(ROLLBACK, {"kind": "ranking", "to": second.pk})
    assert forward.status_code == 302
    assert ModelVersion.objects.get(kind="ranking", status="active").pk == second.pk


def test_rollback_with_nowhere_to_go_says_so(as_staff: Client) -> None:
    html = as_staff.post(ROLLBACK, {"kind": "rating"}, **HTMX).content.decode()

    assert "no ready or retired rating version to roll back to" in html
    assert as_staff.post(ROLLBACK, {"kind": "popularity"}).status_code == 400
