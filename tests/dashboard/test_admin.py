"""The model versions in the admin: readable metrics, no Save on a read-only page, the live
version kept from deletion, and links to the dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from recommender.models import ItemFactor, ModelVersion, UserFactor, VersionStatus
from tests.factories import ItemFactory, UserFactory

CHANGELIST = reverse("admin:recommender_modelversion_changelist")


def change_url(version: ModelVersion) -> str:
    return reverse("admin:recommender_modelversion_change", args=[version.pk])


def delete_url(version: ModelVersion) -> str:
    return reverse("admin:recommender_modelversion_delete", args=[version.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def live(db: Any) -> ModelVersion:
    return ModelVersion.objects.create(
        kind="rating",
        algorithm="explicit_als",
        status=VersionStatus.ACTIVE,
        hyperparameters={"factors": 64, "regularization": 1.3},
        metrics={"rmse": 0.912345, "ndcg@10": 0.0744, "coverage": None, "n_users": 892.0},
        evaluation={
            "holdout": {
                "seed": 0,
                "fraction": 0.1,
                "test_ratings": 10,
                "users_sampled": 9,
                "watermark": None,
            },
            "incumbent": {"version": 3, "algorithm": "sgd_mf", "refitted": True, "metrics": {"rmse": 0.93}},
        },
        timings={"export": 0.25, "fit": 1.5},
    )


@pytest.fixture
def retired(db: Any) -> ModelVersion:
    """An old version with stored tables (one user and one item factor)."""
    version = ModelVersion.objects.create(
        kind="rating", algorithm="explicit_als", status=VersionStatus.RETIRED
    )
    UserFactor.objects.create(version=version, user=UserFactory(), bias=0, vector=b"")
    ItemFactor.objects.create(version=version, item=ItemFactory(), bias=0, vector=b"")
    return version


def test_metrics_hyperparameters_and_timings_read_as_tables(as_staff: Client, live: ModelVersion) -> None:
    html = as_staff.get(change_url(live)).content.decode()

    assert '{"rmse"' not in html and "{&quot;rmse&quot;" not in html  # no raw JSON
    assert "<td>rmse — promotion gate (lower is better)</td><td>0.9123</td><td>0.9300</td>" in html
    assert "<th scope='col'>Live #3 (sgd_mf) on the same holdout</th>" in html
    assert "<td>coverage</td><td>not a finite number</td><td>—</td>" in html
    assert "<td>users evaluated</td><td>892</td>" in html
    assert "<td>factors</td><td>64</td>" in html and "<td>regularization</td><td>1.3</td>" in html
    assert "<td>fit</td><td>1.50</td>" in html and "<td>total</td><td>1.75</td>" in html


def test_the_read_only_change_page_has_no_save_buttons(as_staff: Client, live: ModelVersion) -> None:
    page = as_staff.get(change_url(live))
    html = page.content.decode()

    assert page.status_code == 200
    for button in ('name="_save"', 'name="_continue"', 'name="_addanother"'):
        assert button not in html
    assert "Close" in html
    assert as_staff.post(change_url(live), {"algorithm": "changed"}).status_code == 403
    live.refresh_from_db()
    assert live.algorithm == "explicit_als"


def test_the_live_version_cannot_be_deleted(as_staff: Client, live: ModelVersion) -> None:
    page = as_staff.get(change_url(live)).content.decode()
    asked = as_staff.get(delete_url(live))
    confirmed = as_staff.post(delete_url(live), {"post": "yes"})

    assert delete_url(live) not in page  # no Delete link
    for response in (asked, confirmed):
        assert response.status_code == 302 and response["Location"] == change_url(live)
        assert any(
            f"#{live.pk} (explicit_als) is the live rating model and was not deleted" in m
            for m in messages_of(response)
        )
    assert ModelVersion.objects.filter(pk=live.pk).exists()


def test_a_version_still_training_cannot_be_deleted(as_staff: Client) -> None:
    training = ModelVersion.objects.create(
        kind="ranking", algorithm="implicit_als", status=VersionStatus.TRAINING
    )

    response = as_staff.post(delete_url(training), {"post": "yes"})

    assert response.status_code == 302 and "still training" in " ".join(messages_of(response))
    assert ModelVersion.objects.filter(pk=training.pk).exists()


def test_an_old_version_is_deleted_after_a_confirmation_that_counts_its_rows(
    as_staff: Client, retired: ModelVersion
) -> None:
    confirmation = as_staff.get(delete_url(retired)).content.decode()
    deleted = as_staff.post(delete_url(retired), {"post": "yes"})

    assert "and their cached tables: 1 user factors, 1 item factors" in confirmation
    assert "User factors: 1" in confirmation
    assert deleted.status_code == 302
    assert not ModelVersion.objects.filter(pk=retired.pk).exists()
    assert not UserFactor.objects.exists() and not ItemFactor.objects.exists()


def test_deleting_a_selection_with_the_live_version_is_refused_as_a_whole(
    as_staff: Client, live: ModelVersion, retired: ModelVersion
) -> None:
    body = {"action": "delete_selected", "_selected_action": [live.pk, retired.pk], "post": "yes"}

    response = as_staff.post(CHANGELIST, body)

    assert response.status_code == 302
    assert any("is the live rating model and was not deleted" in m for m in messages_of(response))
    assert ModelVersion.objects.count() == 2


def test_deleting_a_selection_of_old_versions_works(
    as_staff: Client, live: ModelVersion, retired: ModelVersion
) -> None:
    confirmation = as_staff.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [retired.pk]})
    done = as_staff.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [retired.pk], "post": "yes"}
    )

    assert confirmation.status_code == 200 and b"Are you sure" in confirmation.content
    assert done.status_code == 302
    assert list(ModelVersion.objects.values_list("pk", flat=True)) == [live.pk]


def test_the_admin_links_to_the_dashboard(as_staff: Client, live: ModelVersion) -> None:
    changelist = as_staff.get(CHANGELIST).content.decode()
    change = as_staff.get(change_url(live)).content.decode()
    index = as_staff.get(reverse("admin:index")).content.decode()

    assert f'<a href="{reverse("dashboard:index")}">Open the model dashboard</a>' in changelist
    assert f'href="{reverse("dashboard:index")}#version-{live.pk}"' in change
    assert f'<a href="{reverse("dashboard:index")}">Dashboard</a> /' in index


def test_the_activate_action_still_goes_through_the_gate(
    as_staff: Client, retired: ModelVersion, live: ModelVersion
) -> None:
    ModelVersion.objects.filter(pk=retired.pk).update(status=VersionStatus.READY, metrics={})

    response = as_staff.post(CHANGELIST, {"action": "activate", "_selected_action": [retired.pk]})

    assert response.status_code == 302
    assert any(f"promotion gate refused version #{retired.pk}" in m for m in messages_of(response))
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == live.pk
