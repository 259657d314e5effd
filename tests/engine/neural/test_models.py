"""The neural models (recommender.engine.neural): learning, masking, seeds, fold-in, numpy inference.

Planted data: ratings ``3 + b_u + c_i + w_u . v_i`` (rank 3, no noise) on a
random half of the cells; models are scored on the other half against the
bias baseline, which can only learn ``b_u + c_i``.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from recommender.engine import BiasBaseline, Blend, Interactions
from recommender.engine.evaluation import evaluate_algorithm
from recommender.engine.neural import AutoRec, DeepMF, EmbeddingMF, ResidualMF
from recommender.engine.neural.autorec import (
    autorec_batch_loss,
    dense_rows,
    masked_squared_error,
    masked_squared_error_reference,
)
from recommender.engine.neural.common import THREADS, resolve_device, training_session
from recommender.engine.registry import make_model

Planted = tuple[Interactions, np.ndarray, tuple[np.ndarray, np.ndarray]]

#: Small configurations that learn the planted sets in a few seconds each.
SMALL: dict[str, dict[str, Any]] = {
    "embedding_mf": {
        "factors": 3,
        "learning_rate": 0.1,
        "regularization": 0.001,
        "batch_size": 32,
        "epochs": 40,
    },
    "deep_mf": {
        "embedding_dim": 8,
        "hidden": 64,
        "dropout": 0.0,
        "learning_rate": 0.01,
        "regularization": 0.0001,
        "batch_size": 64,
        "epochs": 60,
    },
    "residual_mf": {
        "factors": 3,
        "mf_learning_rate": 0.1,
        "mf_regularization": 0.001,
        "mf_epochs": 40,
        "hidden": 16,
        "epochs": 5,
        "batch_size": 32,
    },
    "autorec_item": {
        "variant": "item",
        "hidden": 32,
        "learning_rate": 0.01,
        "regularization": 1.0,
        "batch_size": 16,
        "epochs": 100,
    },
    "autorec_user": {
        "variant": "user",
        "hidden": 32,
        "learning_rate": 0.01,
        "regularization": 1.0,
        "batch_size": 16,
        "epochs": 100,
    },
}
CASES = sorted(SMALL)


def build(case: str, **overrides: Any) -> Any:
    name = "autorec" if case.startswith("autorec") else case
    return make_model(name, {**SMALL[case], "device": "cpu", **overrides})


def planted(seed: int = 0, n_users: int = 60, n_items: int = 40, density: float = 0.5) -> Planted:
    """(observed Interactions, the full matrix, the held-out (user, item) index pairs)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.6, size=(n_users, 3))
    v = rng.normal(0.0, 0.6, size=(n_items, 3))
    b = rng.normal(0.0, 0.3, size=n_users)
    c = rng.normal(0.0, 0.3, size=n_items)
    full = 3.0 + b[:, None] + c[None, :] + w @ v.T
    observed = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(observed)
    held_users, held_items = np.nonzero(~observed)
    return Interactions.from_arrays(users, items, full[users, items]), full, (held_users, held_items)


def planted_for(case: str) -> Planted:
    # An autoencoder learns from rows (items or users) as examples: give it more of them.
    return planted(n_users=150, n_items=100) if case.startswith("autorec") else planted()


def held_out_rmse(
    model: Any, data: Interactions, full: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]
) -> float:
    users, items = pairs
    pred = model.predict(data.user_ids[users], data.item_ids[items])
    return float(np.sqrt(np.mean((pred - full[users, items]) ** 2)))


# ---- learning ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_each_model_learns_a_planted_low_rank_plus_bias_matrix_far_better_than_the_bias_baseline(
    case: str,
) -> None:
    data, full, held = planted_for(case)
    baseline = held_out_rmse(BiasBaseline().fit(data), data, full, held)
    model = build(case).fit(data)
    assert held_out_rmse(model, data, full, held) < 0.25 * baseline
    history = np.asarray(model.loss_history_)
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


def test_embedding_mf_minimizes_the_objective_of_sgd_mf() -> None:
    data, _, _ = planted()
    model = build("embedding_mf").fit(data)
    # objective() is gradient_mf's J / N; the fit ends with the exact user solve, which can only lower it.
    assert model.objective() < 0.01 * model.loss_history_[0]


# ---- the masked loss -------------------------------------------------------------------------
def test_masked_squared_error_sums_only_observed_cells() -> None:
    import torch

    rng = np.random.default_rng(1)
    output, target = rng.normal(size=(2, 5, 7))
    observed = rng.random((5, 7)) < 0.4
    got = float(masked_squared_error(torch.tensor(output), torch.tensor(target), torch.tensor(observed)))
    assert got == pytest.approx(masked_squared_error_reference(output, target, observed), rel=1e-12)
    assert got == pytest.approx(float(((output - target)[observed] ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("unobserved_value", [0.0, 5.0, -100.0, np.nan])
def test_autorec_loss_and_gradients_ignore_unobserved_targets(unobserved_value: float) -> None:
    import torch

    rng = np.random.default_rng(2)
    inputs = np.where(rng.random((6, 9)) < 0.5, rng.integers(1, 6, size=(6, 9)), 0.0)
    observed = inputs != 0
    changed = inputs.copy()
    changed[~observed] = unobserved_value  # only cells outside the mask differ

    def loss_and_gradients(targets: np.ndarray) -> tuple[float, list[np.ndarray]]:
        torch.manual_seed(0)
        encoder, decoder = torch.nn.Linear(9, 4).double(), torch.nn.Linear(4, 9).double()
        loss = autorec_batch_loss(
            encoder,
            decoder,
            torch.tensor(inputs),
            torch.tensor(targets),
            torch.tensor(observed),
            regularization=0.5,
            decay_share=1.0,
        )
        loss.backward()
        params = [encoder.weight, encoder.bias, decoder.weight, decoder.bias]
        return float(loss.detach()), [p.grad.numpy().copy() for p in params]

    loss, grads = loss_and_gradients(inputs)
    loss_changed, grads_changed = loss_and_gradients(changed)
    assert np.isfinite(loss) and loss == loss_changed
    for g, g_changed in zip(grads, grads_changed, strict=True):
        np.testing.assert_array_equal(g, g_changed)


def test_dense_rows_matches_toarray_and_counts_stored_zeros_as_observed() -> None:
    import scipy.sparse as sp

    matrix = sp.csr_matrix(
        (np.array([4.0, 0.0, 2.5, 5.0], dtype=np.float32), ([0, 0, 2, 3], [1, 3, 0, 3])), shape=(4, 5)
    )
    values, observed = dense_rows(matrix, np.array([3, 0, 2]))
    np.testing.assert_array_equal(values, matrix.toarray()[[3, 0, 2]])
    expected = np.zeros((3, 5), dtype=bool)
    expected[[0, 1, 1, 2], [3, 1, 3, 0]] = True  # row 0's stored 0 at column 3 is a rating
    np.testing.assert_array_equal(observed, expected)


# ---- reproducibility, pickling, numpy inference -------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_a_fixed_seed_gives_identical_predictions_and_the_pickle_holds_no_torch(case: str) -> None:
    data, _, _ = planted(n_users=30, n_items=20)
    quick = {"epochs": 3} if not case.startswith("residual") else {"epochs": 2, "mf_epochs": 3}
    users = np.repeat(data.user_ids, data.n_items)
    items = np.tile(data.item_ids, data.n_users)
    a = build(case, random_state=7, **quick).fit(data)
    b = build(case, random_state=7, **quick).fit(data)
    c = build(case, random_state=8, **quick).fit(data)
    np.testing.assert_array_equal(a.predict(users, items), b.predict(users, items))
    assert not np.allclose(a.predict(users, items), c.predict(users, items))
    blob = pickle.dumps(a)
    assert b"torch" not in blob  # learned weights are numpy arrays: no torch needed to serve
    np.testing.assert_array_equal(pickle.loads(blob).predict(users, items), a.predict(users, items))


def test_deep_mf_numpy_forward_equals_the_torch_network() -> None:
    import torch

    data, _, _ = planted(n_users=30, n_items=20)
    model = DeepMF(embedding_dim=4, hidden=8, layers=2, epochs=2, device="cpu").fit(data)
    net = model.network_
    layers: list[torch.nn.Module] = []
    for w, b in zip(net.weights, net.biases, strict=True):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data, linear.bias.data = torch.tensor(w), torch.tensor(b)
        layers += [linear, torch.nn.ReLU()]
    torch_net = torch.nn.Sequential(*layers[:-1]).eval()
    users, items = np.repeat(np.arange(30), 20), np.tile(np.arange(20), 30)
    x = torch.cat([torch.tensor(net.user_embeddings[users]), torch.tensor(net.item_embeddings[items])], dim=1)
    with torch.no_grad():
        expected = torch_net(x).squeeze(1).double().numpy() + model.global_mean_
    np.testing.assert_allclose(model._predict_indices(users, items), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["item", "user"])
def test_autorec_predictions_are_the_reconstructions_of_the_torch_autoencoder(variant: str) -> None:
    import torch

    data, _, _ = planted(n_users=30, n_items=20)
    model = AutoRec(variant=variant, hidden=6, epochs=2, batch_size=8, device="cpu").fit(data)
    matrix = model._rows(data)
    encoder = torch.nn.Linear(matrix.shape[1], 6).double()
    decoder = torch.nn.Linear(6, matrix.shape[1]).double()
    encoder.weight.data = torch.tensor(model.encoder_weight_, dtype=torch.float64)
    encoder.bias.data = torch.tensor(model.encoder_bias_, dtype=torch.float64)
    decoder.weight.data = torch.tensor(model.decoder_weight_, dtype=torch.float64)
    decoder.bias.data = torch.tensor(model.decoder_bias_, dtype=torch.float64)
    with torch.no_grad():
        recon = decoder(torch.sigmoid(encoder(torch.tensor(matrix.toarray(), dtype=torch.float64)))).numpy()
    users, items = np.repeat(np.arange(30), 20), np.tile(np.arange(20), 30)
    expected = recon[items, users] if variant == "item" else recon[users, items]
    np.testing.assert_allclose(model._predict_indices(users, items), expected, rtol=1e-5, atol=1e-5)


# ---- unseen users -------------------------------------------------------------------------------
def without_users(data: Interactions, users: np.ndarray) -> Interactions:
    rows, cols, r = data.to_coo_arrays()
    keep = ~np.isin(rows, users)
    return Interactions.from_arrays(data.user_ids[rows[keep]], data.item_ids[cols[keep]], r[keep])


@pytest.mark.parametrize("case", [case for case in CASES if case != "autorec_user"])
def test_fold_in_of_users_unseen_at_fit_time_beats_their_fallback(case: str) -> None:
    """Fit without 12 users; fold each in from their ratings and score the cells they did not rate.

    ``predict`` for an unknown user falls back to ``mu + c_i`` (base.py); the
    folded-in representation must do far better on the planted matrix.
    (U-AutoRec's fold-in is its encoder's forward pass, which generalizes to
    new rating vectors only as well as the encoder does: see the next test.)
    """
    data, full, _ = planted_for(case)
    new_users = np.random.default_rng(5).choice(data.n_users, size=12, replace=False)
    rows, cols, _ = data.to_coo_arrays()
    seen = without_users(data, new_users)
    model = build(case).fit(seen)
    folded_err, fallback_err = [], []
    for u in new_users:
        rated = cols[rows == u]
        unrated = np.setdiff1d(np.arange(data.n_items), rated)
        vector, bias = model.fold_in(data.item_ids[rated], full[u, rated])
        scores = model.score_vector(vector, bias)
        folded_err.append(scores[seen.item_index(data.item_ids[unrated])] - full[u, unrated])
        fallback = model.predict(np.full(unrated.size, 10_000), data.item_ids[unrated])
        fallback_err.append(fallback - full[u, unrated])
    folded = float(np.sqrt(np.mean(np.concatenate(folded_err) ** 2)))
    baseline = float(np.sqrt(np.mean(np.concatenate(fallback_err) ** 2)))
    assert folded < 0.6 * baseline, (folded, baseline)


def test_u_autorec_folds_an_unseen_user_in_by_one_forward_pass_of_the_encoder() -> None:
    import torch

    data, full, _ = planted_for("autorec_user")
    new_user = 3
    seen = without_users(data, np.array([new_user]))
    model = build("autorec_user").fit(seen)
    rated = data.csr.indices[data.csr.indptr[new_user] : data.csr.indptr[new_user + 1]]
    code, bias = model.fold_in(data.item_ids[rated], full[new_user, rated])
    x = np.zeros(seen.n_items)
    x[seen.item_index(data.item_ids[rated])] = full[new_user, rated]
    encoder = torch.nn.Linear(seen.n_items, model.hidden).double()
    encoder.weight.data = torch.tensor(model.encoder_weight_, dtype=torch.float64)
    encoder.bias.data = torch.tensor(model.encoder_bias_, dtype=torch.float64)
    with torch.no_grad():
        expected = torch.sigmoid(encoder(torch.tensor(x))).numpy()
    np.testing.assert_allclose(code, expected, atol=1e-9)
    assert bias == 0.0
    scores = model.score_vector(code)
    np.testing.assert_allclose(
        scores, model.decoder_weight_ @ code.astype(np.float32) + model.decoder_bias_, atol=1e-5
    )


def test_fold_in_with_no_ratings_gives_the_prior() -> None:
    data, _, _ = planted(n_users=30, n_items=20)
    deep = build("deep_mf", epochs=2).fit(data)
    vector, bias = deep.fold_in([], [])
    assert not vector.any() and bias == 0.0
    item_autorec = build("autorec_item", epochs=2).fit(data)
    vector, bias = item_autorec.fold_in([], [])
    assert not vector.any() and bias == pytest.approx(item_autorec.global_mean_)
    assert np.allclose(item_autorec.score_vector(vector, bias), item_autorec.global_mean_)


def test_folding_a_training_user_back_in_reproduces_them() -> None:
    data, _, _ = planted()
    csr = data.csr
    mf = build("embedding_mf").fit(data)
    residual = build("residual_mf").fit(data)
    user_autorec = build("autorec_user", epochs=20).fit(data)
    for u in (0, 17, 42):
        items = data.item_ids[csr.indices[csr.indptr[u] : csr.indptr[u + 1]]]
        ratings = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        # EmbeddingMF: the fit ends with the same exact ridge solve fold-in runs.
        vector, bias = mf.fold_in(items, ratings)
        np.testing.assert_allclose(vector, mf.user_factors_[u], atol=1e-5)
        assert bias == pytest.approx(mf.user_bias_[u], abs=1e-5)
        # ResidualMF: its MLP is a fixed function of the MF's user vector.
        np.testing.assert_allclose(
            residual.score_vector(*residual.fold_in(items, ratings)), residual.score_items(u), atol=1e-4
        )
        # U-AutoRec: fold-in is the encoder's forward pass over the user's ratings.
        code, _ = user_autorec.fold_in(items, ratings)
        np.testing.assert_allclose(code, user_autorec.codes_[u], atol=1e-6)
        np.testing.assert_allclose(user_autorec.score_vector(code), user_autorec.score_items(u), atol=1e-5)


# ---- the engine around the models --------------------------------------------------------------------
def test_a_blend_with_an_embedding_mf_member_fits_and_predicts() -> None:
    data, full, held = planted()
    blend = Blend(
        models=[BiasBaseline(), EmbeddingMF(**SMALL["embedding_mf"], device="cpu")], validation_fraction=0.2
    ).fit(data)
    assert len(blend.weights_) == 2 and blend.weights_[1] > 0.5
    assert held_out_rmse(blend, data, full, held) < 0.25 * held_out_rmse(
        BiasBaseline().fit(data), data, full, held
    )


def test_evaluate_runs_autorec_through_the_registry() -> None:
    data, full, held = planted(n_users=30, n_items=20)
    rows, cols, r = data.to_coo_arrays()
    train = (data.user_ids[rows], data.item_ids[cols], r)
    test = (data.user_ids[held[0]], data.item_ids[held[1]], full[held])
    report = evaluate_algorithm(
        "autorec", {"variant": "user", "hidden": "8", "epochs": "5", "device": "cpu"}, train, test
    )
    rmse, ndcg = report["rmse"], report["ndcg@10"]
    assert rmse is not None and np.isfinite(rmse)
    assert ndcg is not None and 0.0 <= ndcg <= 1.0


def test_registry_builds_the_neural_models_from_strings() -> None:
    model = make_model("autorec", {"variant": "user", "hidden": "16", "regularization": "0.5"})
    assert isinstance(model, AutoRec)
    assert model.get_params()["variant"] == "user" and model.get_params()["hidden"] == 16
    assert isinstance(make_model("embedding_mf", {"epochs": "3"}), EmbeddingMF)
    assert isinstance(make_model("deep_mf", {"dropout": "0.1"}), DeepMF)
    assert isinstance(make_model("residual_mf", {"mf_epochs": "2"}), ResidualMF)
    data, _, _ = planted(n_users=10, n_items=8)
    with pytest.raises(ValueError, match="variant must be one of item, user"):
        AutoRec(variant="both").fit(data)


def test_divergence_is_reported() -> None:
    data, _, _ = planted(n_users=20, n_items=15)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        EmbeddingMF(factors=3, learning_rate=1e4, epochs=5, device="cpu").fit(data)


# ---- the training session ---------------------------------------------------------------------------
def test_training_session_restores_torch_global_state() -> None:
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    state = torch.get_rng_state()
    with training_session(3, "cpu") as session:
        assert torch.get_num_threads() == THREADS
        assert torch.are_deterministic_algorithms_enabled()
        assert session.device.type == "cpu"
        torch.rand(5)  # draws inside the session do not move the caller's generator
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), state)


def test_asking_for_cuda_without_a_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device(torch, "auto").type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(torch, "cuda")
