"""Retrain -> factor tables -> activation -> serving, on the real database."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.urls import reverse

from ratings.models import Rating
from ratings.services import rating_upsert
from recommender.export import ratings_export
from recommender.locks import TrainingAlreadyRunning, training_lock
from recommender.models import (
    ItemFactor,
    ItemNeighbor,
    ModelVersion,
    UserFactor,
    VersionStatus,
    vector_from_bytes,
)
from recommender.selectors import recommendations_for_user, similar_items
from recommender.services import (
    PromotionRefused,
    model_train,
    model_version_rollback,
    model_versions_prune,
)
from recommender.serving import serving_cache

FAST: dict[str, dict[str, Any]] = {
    "explicit_als": {"factors": 4, "iterations": 8},
    # Strong enough a penalty that the toy ranking is stable in the iterations (at
    # regularization 1 up to 7 of the 40 planted users get the other genre first).
    "implicit_als": {"factors": 4, "iterations": 8, "regularization": 20.0, "alpha": 5.0},
    # Score-aware: planted users also rate films they dislike, which a co-occurrence measure
    # (the served default, Jaccard) counts as likeness; these tests are about the pipeline.
    "item_knn": {"k": 10, "similarity": "pearson_baseline", "shrinkage": 100},
    "sgd_mf": {"factors": 4},
    "bayesian_svdpp_served": {"factors": 4, "burn_in": 10, "samples": 20, "serving_samples": 10},
}


def train(kind: str, **overrides: Any) -> ModelVersion:
    from django.conf import settings

    algorithm = overrides.pop("algorithm", settings.TASTEBASE_DEFAULT_ALGORITHMS[kind])
    params: dict[str, Any] = {**FAST.get(algorithm, {}), **overrides.pop("params", {})}
    return model_train(kind=kind, algorithm=algorithm, params=params, **overrides)


pytestmark = pytest.mark.django_db(transaction=True)


def test_export_matches_the_ratings_table(planted) -> None:  # type: ignore[no-untyped-def]
    data, watermark = ratings_export()
    assert data.nnz == Rating.objects.count()
    assert watermark == max(Rating.objects.values_list("updated_at", flat=True))
    users, items, scores = data.to_raw_arrays()
    from_db = sorted(Rating.objects.values_list("user_id", "item_id", "score"))
    assert sorted(zip(users.tolist(), items.tolist(), scores.astype(float).tolist(), strict=True)) == from_db


@pytest.mark.parametrize("kind", ["rating", "ranking"])
def test_retrain_activates_a_version_with_one_factor_row_per_user_and_item(planted, kind: str) -> None:  # type: ignore[no-untyped-def]
    version = train(kind)
    assert version.status == VersionStatus.ACTIVE
    n_users = Rating.objects.values("user").distinct().count()
    n_items = Rating.objects.values("item").distinct().count()
    assert UserFactor.objects.filter(version=version).count() == n_users == version.n_users
    assert ItemFactor.objects.filter(version=version).count() == n_items == version.n_items
    assert version.n_ratings == Rating.objects.count()
    assert set(version.timings) >= {"export", "fit", "evaluate", "refit", "persist"}
    assert version.metrics["ndcg@10"] is not None and 0 <= version.metrics["ndcg@10"] <= 1
    if kind == "rating":
        assert 0 < version.metrics["rmse"] < 1.5
    vector = vector_from_bytes(ItemFactor.objects.filter(version=version).first().vector)  # type: ignore[union-attr]
    params = version.hyperparameters
    if (
        version.algorithm == "bayesian_svdpp_served"
    ):  # serving_samples whitened samples of [q_i; 1] side by side
        assert vector.shape == (int(params["serving_samples"]) * (int(params["factors"]) + 1),)
    else:
        assert vector.shape == (int(params["factors"]),)


def test_similarity_retrain_fills_the_neighbour_table(planted) -> None:  # type: ignore[no-untyped-def]
    version = train("similarity")
    assert version.status == VersionStatus.ACTIVE
    film0 = planted.items[0]
    neighbours = similar_items(item=film0, limit=5)
    assert len(neighbours) == 5
    assert ItemNeighbor.objects.filter(version=version, item=film0).exists()
    # Item 0 is an action film: its nearest neighbours are the other action films.
    assert all(n.item.title < "Film 10" for n in neighbours)
    assert [n.score for n in neighbours] == sorted((n.score for n in neighbours), reverse=True)


def test_recommendations_follow_taste_and_exclude_rated_items(planted) -> None:  # type: ignore[no-untyped-def]
    train("rating")
    train("ranking")
    fan = planted.user("action")
    rated = set(Rating.objects.filter(user=fan).values_list("item_id", flat=True))
    recs = recommendations_for_user(user=fan, limit=3)
    assert len(recs) == 3
    assert not rated & {r.item_id for r in recs}
    assert all(r.source == "ranking" for r in recs)
    unrated_action = {i.pk for i in planted.items[:10]} - rated
    assert recs[0].item_id in unrated_action
    assert all(r.predicted_rating is not None and 0.5 <= r.predicted_rating <= 5.0 for r in recs)
    # Explanations name things the user actually rated highly.
    liked = set(Rating.objects.filter(user=fan, score__gte=4).values_list("item_id", flat=True))
    assert recs[0].explanation and {i.pk for i in recs[0].explanation} <= liked
    # Asking to include rated items may bring them back.
    everything = recommendations_for_user(user=fan, limit=24, exclude_rated=False)
    assert rated <= {r.item_id for r in everything}


def test_genre_filter(planted) -> None:  # type: ignore[no-untyped-def]
    train("ranking")
    fan = planted.user("action")
    recs = recommendations_for_user(user=fan, limit=5, genre="Romance")
    assert recs and all("Romance" in r.item.genres for r in recs)


def test_cold_start_user_gets_damped_popularity(planted, charlie) -> None:  # type: ignore[no-untyped-def]
    train("ranking")
    recs = recommendations_for_user(user=charlie, limit=5)
    assert {r.source for r in recs} == {"popularity"}
    # Item 20 has a single 3.0 rating; damping keeps it below the well-liked films.
    counts = [r.item.rating_count for r in recs]
    assert min(counts) >= 5


def test_promotion_gate_refuses_a_worse_model_and_force_overrides(planted) -> None:  # type: ignore[no-untyped-def]
    good = train("rating", algorithm="explicit_als")
    with pytest.raises(PromotionRefused, match="promotion gate refused"):
        train("rating", algorithm="explicit_als", params={"regularization": 1000.0, "iterations": 1})
    refused = ModelVersion.objects.exclude(pk=good.pk).get()
    assert refused.status == VersionStatus.READY
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE, kind="rating").pk == good.pk
    forced = train(
        "rating", algorithm="explicit_als", params={"regularization": 1000.0, "iterations": 1}, force=True
    )
    assert forced.status == VersionStatus.ACTIVE
    good.refresh_from_db()
    assert good.status == VersionStatus.RETIRED


def test_rollback_reactivates_the_previous_version(planted) -> None:  # type: ignore[no-untyped-def]
    first = train("ranking")
    second = train("ranking", force=True)
    assert second.status == VersionStatus.ACTIVE
    back = model_version_rollback(kind="ranking")
    assert back.pk == first.pk and back.status == VersionStatus.ACTIVE
    second.refresh_from_db()
    assert second.status == VersionStatus.RETIRED
    # Serving follows the switch on the next request.
    assert serving_cache.active()["ranking"].version_id == first.pk


def test_a_failed_training_leaves_the_active_version_serving(planted) -> None:  # type: ignore[no-untyped-def]
    good = train("ranking")
    fan = planted.user("action")
    before = [r.item_id for r in recommendations_for_user(user=fan, limit=5)]
    with pytest.raises(ValueError):
        train("ranking", params={"factors": -3})
    failed = ModelVersion.objects.get(status=VersionStatus.FAILED)
    assert "factors" in failed.error or "negative" in failed.error
    assert not UserFactor.objects.filter(version=failed).exists()
    assert ModelVersion.objects.get(status=VersionStatus.ACTIVE).pk == good.pk
    serving_cache.clear()
    assert [r.item_id for r in recommendations_for_user(user=fan, limit=5)] == before


def test_a_second_training_run_is_refused_while_one_holds_the_lock(planted) -> None:  # type: ignore[no-untyped-def]
    with training_lock(), pytest.raises(TrainingAlreadyRunning, match="another training run is in progress"):
        train("ranking")
    assert not ModelVersion.objects.exists()
    assert train("ranking").status == VersionStatus.ACTIVE  # the lock is free again


def test_an_interrupted_version_is_marked_failed_by_the_next_run(planted) -> None:  # type: ignore[no-untyped-def]
    stale = ModelVersion.objects.create(
        kind="ranking", algorithm="implicit_als", status=VersionStatus.TRAINING
    )
    UserFactor.objects.create(version=stale, user=planted.users[0], vector=b"")
    version = train("ranking")
    stale.refresh_from_db()
    assert stale.status == VersionStatus.FAILED and "interrupted" in stale.error
    assert not UserFactor.objects.filter(version=stale).exists()
    assert version.status == VersionStatus.ACTIVE


def test_old_versions_are_pruned_but_never_the_active_one(planted, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TASTEBASE_KEEP_VERSIONS = 1
    first = train("ranking")
    for _ in range(3):
        train("ranking", force=True)
    kept = ModelVersion.objects.filter(kind="ranking")
    assert kept.filter(status=VersionStatus.ACTIVE).count() == 1
    assert kept.count() == 2
    assert not ModelVersion.objects.filter(pk=first.pk).exists()
    assert model_versions_prune(kind="ranking", keep=0) == 1
    assert ModelVersion.objects.filter(kind="ranking").get().status == VersionStatus.ACTIVE


@pytest.mark.parametrize("kind", ["rating", "ranking"])
def test_fold_in_of_a_trained_user_reproduces_their_stored_vector(planted, kind: str) -> None:  # type: ignore[no-untyped-def]
    from recommender.services import user_fold_in_version

    # Each kind's default algorithm, trained longer: the fold-in is the model's own last step.
    version = train(kind, params={"iterations": 30} if kind == "ranking" else {"samples": 40})
    active = serving_cache.active()[kind]
    user = planted.user("romance", 2)
    stored = UserFactor.objects.get(version=version, user=user)
    vector, bias = user_fold_in_version(version=active, user_id=user.pk)  # type: ignore[misc]
    np.testing.assert_allclose(vector, vector_from_bytes(stored.vector), rtol=2e-3, atol=2e-3)
    assert bias == pytest.approx(stored.bias, abs=2e-3)


def test_a_rating_on_the_site_changes_recommendations_without_a_retrain(client, planted) -> None:  # type: ignore[no-untyped-def]
    train("rating")
    train("ranking")
    fan = planted.user("action", 1)
    before = recommendations_for_user(user=fan, limit=5)
    top = before[0]
    versions_before = ModelVersion.objects.count()
    client.force_login(fan)
    client.post(reverse("ratings:rate", args=[top.item_id]), {"score": "0.5"})
    after = recommendations_for_user(user=fan, limit=5)
    assert top.item_id not in {r.item_id for r in after}  # rated now, so excluded
    assert [r.item_id for r in after] != [r.item_id for r in before]
    assert ModelVersion.objects.count() == versions_before  # no retrain happened
    stored = UserFactor.objects.get(version__kind="rating", version__status="active", user=fan)
    finished = ModelVersion.objects.get(kind="rating", status="active").finished_at
    assert finished is not None and stored.updated_at > finished


def test_a_new_user_who_rates_five_items_gets_personalized_recommendations(client, planted, charlie) -> None:  # type: ignore[no-untyped-def]
    train("rating")
    train("ranking")
    assert {r.source for r in recommendations_for_user(user=charlie, limit=5)} == {"popularity"}
    client.force_login(charlie)
    for item in planted.items[10:15]:  # five romance films, loved
        client.post(reverse("ratings:rate", args=[item.pk]), {"score": "5.0"})
    recs = recommendations_for_user(user=charlie, limit=5)
    assert {r.source for r in recs} == {"ranking"}
    romance = {i.pk for i in planted.items[10:20]}
    assert recs[0].item_id in romance
    assert sum(r.item_id in romance for r in recs) >= 4
    assert UserFactor.objects.filter(user=charlie).count() == 2  # rating and ranking versions


def test_deleting_a_rating_refolds_the_user(planted) -> None:  # type: ignore[no-untyped-def]
    from ratings.services import rating_delete

    train("rating")
    fan = planted.user("action")
    stored = UserFactor.objects.get(user=fan).vector
    item = Rating.objects.filter(user=fan).first().item  # type: ignore[union-attr]
    rating_delete(user=fan, item=item)
    assert UserFactor.objects.get(user=fan).vector != stored
    rating_upsert(user=fan, item=item, score=5.0)
    assert Rating.objects.filter(user=fan, item=item).exists()


def test_for_you_page_and_similar_items_on_the_item_page(client, planted) -> None:  # type: ignore[no-untyped-def]
    train("ranking")
    train("similarity")
    fan = planted.user("romance")
    client.force_login(fan)
    page = client.get(reverse("recommender:for_you"))
    assert page.status_code == 200
    recs = page.context["rows"]
    assert page.context["personalized"] and recs
    assert recs[0].item.title in page.content.decode()
    detail = client.get(reverse("catalog:item_detail", args=[planted.items[12].pk]))
    similar = [s.item.title for s in detail.context["similar"]]
    assert similar and "Similar films" in detail.content.decode()
    assert all("Film 1" in t for t in similar[:5])  # romance films are 10-19


def test_for_you_page_works_for_anonymous_visitors(client, planted) -> None:  # type: ignore[no-untyped-def]
    page = client.get(reverse("recommender:for_you"))
    assert page.status_code == 200
    assert not page.context["personalized"]
    assert "Log in" in page.content.decode()


def test_ranking_metrics_on_a_sample_of_users_when_there_are_many(planted, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TASTEBASE_EVAL_MAX_USERS = 5
    version = train("ranking")
    assert version.metrics["n_users"] <= 5
    settings.TASTEBASE_EVAL_MAX_USERS = 5000
    assert train("ranking", force=True).metrics["n_users"] > 5
