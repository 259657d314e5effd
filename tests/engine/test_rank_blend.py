"""RankBlend: z-scored CombSUM of ranking models, weights chosen on a held-out split.

Checked against a slow reference that re-does the choice with the per-list
textbook NDCG (``ndcg_at_k``) and plain Python loops.
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engine import EASE, ImplicitALS, Interactions, PureSVD
from recommender.engine.metrics import ndcg_at_k
from recommender.engine.rank_blend import RankBlend, standardize, weight_candidates
from recommender.engine.split import random_split


def make_data(seed: int = 0, n_users: int = 60, n_items: int = 40, n: int = 900) -> Interactions:
    """Two latent tastes plus item popularity, so the members rank differently but sensibly."""
    rng = np.random.default_rng(seed)
    taste = rng.normal(size=(n_users, 2))
    profile = rng.normal(size=(n_items, 2))
    popularity = rng.normal(size=n_items)
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = cells // n_items, cells % n_items
    signal = (taste[users] * profile[items]).sum(axis=1) + 0.7 * popularity[items]
    ratings = np.clip(np.rint(3.2 + signal + rng.normal(0, 0.5, n)), 1, 5)
    return Interactions.from_arrays(users + 100, items + 500, ratings)


def members() -> list:
    return [ImplicitALS(factors=4, iterations=8), PureSVD(factors=3), EASE(regularization=20.0)]


def reference_choice(data: Interactions, grid: tuple[float, ...], k: int) -> tuple[tuple[float, ...], float]:
    """Fit the members on the 90 % part, and for every weight vector rank each validation
    user's unseen, fit-part-rated items by the blended z-scores, score by ``ndcg_at_k``."""
    fit_part, validation = random_split(data, 0.1, random_state=0)
    fitted = [type(m)(**m.get_params()).fit(fit_part) for m in members()]
    rated_in_fit = {int(i) for i in fit_part.to_coo_arrays()[1]}
    seen: dict[int, set[int]] = {}
    for u, i, _ in zip(*fit_part.to_coo_arrays(), strict=True):
        seen.setdefault(int(u), set()).add(int(i))
    relevant: dict[int, set[int]] = {}
    for u, i, r in zip(*validation.to_coo_arrays(), strict=True):
        if r >= 4 and int(i) in rated_in_fit and int(i) not in seen.get(int(u), set()):
            relevant.setdefault(int(u), set()).add(int(i))

    def z(values: np.ndarray) -> np.ndarray:
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        return np.array([(v - mean) / sd for v in values])

    best: tuple[tuple[float, ...], float] | None = None
    for weights in weight_candidates(len(fitted), grid):
        total = 0.0
        for u, rel in sorted(relevant.items()):
            blended = np.sum([w * z(m.score_items(u)) for w, m in zip(weights, fitted, strict=True)], axis=0)
            candidates = [i for i in range(data.n_items) if i in rated_in_fit and i not in seen.get(u, set())]
            ranked = sorted(candidates, key=lambda i: (-blended[i], i))
            total += ndcg_at_k(ranked, rel, k)
        value = total / len(relevant)
        if best is None or value > best[1] + 1e-12:
            best = (weights, value)
    assert best is not None
    return best


def test_standardize_gives_zero_mean_unit_variance_rows_and_zeros_for_constants() -> None:
    rows = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]])
    z = standardize(rows)
    np.testing.assert_allclose(z[0], (rows[0] - 3.0) / np.sqrt(3.5))
    np.testing.assert_array_equal(z[1], np.zeros(4))


def test_weight_candidates_pin_the_first_weight() -> None:
    assert weight_candidates(1, (0.0, 1.0)) == [(1.0,)]
    assert weight_candidates(3, (0.0, 0.5)) == [
        (1.0, 0.0, 0.0),
        (1.0, 0.0, 0.5),
        (1.0, 0.5, 0.0),
        (1.0, 0.5, 0.5),
    ]


def test_weights_and_validation_score_match_the_slow_reference() -> None:
    data = make_data()
    grid = (0.0, 0.5, 1.0)
    model = RankBlend(models=members(), weight_grid=grid, k=5).fit(data)
    weights, value = reference_choice(data, grid, k=5)
    np.testing.assert_array_equal(model.weights_, weights)
    assert model.validation_ndcg_["blend"] == pytest.approx(value)
    # The chosen blend is at least as good on validation as its first member alone.
    assert model.validation_ndcg_["blend"] >= model.validation_ndcg_["models"][0]


def test_scores_are_the_weighted_sum_of_the_refitted_members_z_scores() -> None:
    data = make_data(1)
    model = RankBlend(models=members(), weight_grid=(0.0, 0.5, 1.0)).fit(data)
    assert all(m.data_ is data for m in model.models_)  # refitted on all the training data
    for user in (0, 7, 33):
        expected = sum(
            w * standardize(m.score_items(user)) for w, m in zip(model.weights_, model.models_, strict=True)
        )
        np.testing.assert_allclose(model.score_items(user), expected)


def test_a_useless_member_gets_weight_zero() -> None:
    class Noise(PureSVD):
        """PureSVD's interface, random scores."""

        def _score_items(self, user: int) -> np.ndarray:
            return np.random.default_rng(user).normal(size=self.data_.n_items)

    data = make_data(3, n_users=200, n=3000)
    model = RankBlend(models=[ImplicitALS(factors=4, iterations=8), Noise()], weight_grid=(0.0, 1.0, 4.0))
    model.fit(data)
    np.testing.assert_array_equal(model.weights_, [1.0, 0.0])


def test_members_are_cloned_and_bad_settings_are_refused() -> None:
    data = make_data()
    given = members()
    RankBlend(models=given, weight_grid=(0.0, 1.0)).fit(data)
    assert not any(hasattr(m, "data_") for m in given)
    with pytest.raises(ValueError, match="at least one member"):
        RankBlend(models=[]).fit(data)
    with pytest.raises(ValueError, match="weights >= 0"):
        RankBlend(models=members(), weight_grid=(-1.0, 1.0)).fit(data)
