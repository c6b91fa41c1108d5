import keras
import numpy as np
import pytest

from aeviz_core import Autoencoder, VariationalAutoencoder, build_model


@pytest.mark.parametrize("kind, shape", [
    ("ae", (12,)), ("conv-ae", (30, 7)), ("conv-ae", (8, 8, 1)), ("conv-ae", (28, 28, 1)),
    ("vae", (12,)), ("conv-vae", (32, 4)),
])
def test_models_rebuild_their_input_and_round_trip_through_keras_files(kind, shape, tmp_path):
    model = build_model(kind, shape, latent_dim=3, hidden=(8, 16), seed=1)
    x = np.random.default_rng(0).normal(size=(16, *shape)).astype("float32")
    model.compile(optimizer="adam", loss=None if kind.endswith("vae") else "mse")
    model.fit(x, x, epochs=1, verbose=0)
    assert model(x).shape == x.shape
    assert np.asarray(model.encode(x)).shape == (16, 3)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(again) is type(model)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-5)


def test_vae_reports_named_losses():
    model = build_model("vae", (10,), latent_dim=2, hidden=(8,), seed=0)
    x = np.random.default_rng(0).normal(size=(64, 10)).astype("float32")
    model.compile(optimizer="adam")
    history = model.fit(x, x, epochs=2, verbose=0)
    assert {"loss", "reconstruction_loss", "kl_loss"} <= set(history.history)
    total = history.history["loss"][-1]
    parts = history.history["reconstruction_loss"][-1] + history.history["kl_loss"][-1]
    assert total == pytest.approx(parts, rel=0.05)


def test_demo_weighting_divides_the_data_term_by_the_feature_count():
    x = np.random.default_rng(0).normal(size=(32, 16)).astype("float32")
    losses = {}
    for weighting in ("elbo", "demo"):
        model = build_model("vae", (16,), latent_dim=2, hidden=(8,), weighting=weighting, seed=0)
        keras.utils.set_random_seed(0)
        model.build((None, 16))
        model.set_weights([np.full(w.shape, 0.01, "float32") for w in model.get_weights()])
        y = model(x)
        losses[weighting] = float(model.compute_loss(x, x, y)) - float(np.sum([float(v) for v in model.losses]))
    assert losses["elbo"] == pytest.approx(16 * losses["demo"], rel=1e-4)


def test_inference_is_deterministic_for_a_vae():
    model = build_model("vae", (6,), latent_dim=2, hidden=(8,), seed=0)
    x = np.ones((4, 6), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "gan", "input_shape": (4,)}, "model must be one of"),
    ({"kind": "conv-ae", "input_shape": (4,)}, "use 'ae' for flat tables"),
    ({"kind": "ae", "input_shape": (4,), "latent_dim": 0}, "latent_dim must be >= 1"),
    ({"kind": "vae", "input_shape": (4,), "weighting": "x"}, "weighting must be one of"),
])
def test_bad_model_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_custom_classes_are_registered():
    assert keras.saving.get_registered_object("aeviz>Autoencoder") is Autoencoder
    assert keras.saving.get_registered_object("aeviz>VariationalAutoencoder") is VariationalAutoencoder


def _clustered_batch(seed=0, n=60, dim=10):
    """Three well-separated clusters in ``dim`` dimensions, and their cluster ids."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(3), n // 3)
    centres = rng.normal(scale=10.0, size=(3, dim))
    return (centres[ids] + rng.normal(size=(n, dim))).astype("float32"), ids


def test_neighbor_loss_is_lower_for_a_latent_that_keeps_the_neighbours():
    from aeviz_core.models import neighbor_embedding_loss

    x, ids = _clustered_batch()
    rng = np.random.default_rng(1)
    kept = np.c_[ids * 5.0, np.zeros(len(ids))].astype("float32") + 0.1 * rng.normal(size=(len(ids), 2)).astype("float32")
    scrambled = kept[rng.permutation(len(ids))]
    good = float(neighbor_embedding_loss(x, kept, k=5))
    bad = float(neighbor_embedding_loss(x, scrambled, k=5))
    assert np.isfinite(good) and good < bad - 0.5


@pytest.mark.parametrize("n", [1, 2, 4])
def test_neighbor_loss_is_finite_for_batches_smaller_than_k(n):
    from aeviz_core.models import neighbor_embedding_loss

    x, _ = _clustered_batch(n=60)
    value = float(neighbor_embedding_loss(x[:n], x[:n, :2], k=10))
    assert np.isfinite(value)
    if n == 1:
        assert value == 0.0  # one item has no neighbour to keep


def test_neighbor_weight_adds_its_term_to_the_loss_and_round_trips(tmp_path):
    from aeviz_core.models import neighbor_embedding_loss

    model = build_model("ae", (10,), latent_dim=2, neighbor_weight=0.5)
    x, _ = _clustered_batch(n=30)
    y_pred = model(x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert again.neighbor_weight == 0.5 and again.neighbors == model.neighbors
    model.compile(loss="mse")
    total = float(model.compute_loss(x=x, y=x, y_pred=y_pred, training=False))
    mse = float(np.mean((x - np.asarray(y_pred)) ** 2))
    term = float(neighbor_embedding_loss(x, model.encoder(x), model.neighbors))
    assert term > 0
    np.testing.assert_allclose(total, mse + 0.5 * term, rtol=1e-4)


@pytest.mark.parametrize("kernel, stride, length, n_in, filters", [
    (5, 2, 16, 6, 4), (3, 2, 7, 3, 5), (4, 2, 9, 2, 2), (5, 3, 5, 4, 3), (2, 2, 8, 3, 3), (1, 2, 6, 2, 4),
])
def test_polyphase_transposed_convolution_equals_the_layer(kernel, stride, length, n_in, filters):
    from keras import layers

    from aeviz_core.models import _polyphase_conv1d_transpose

    layer = layers.Conv1DTranspose(filters, kernel, strides=stride, padding="same", activation="gelu")
    x = np.random.default_rng(kernel + stride).normal(size=(3, length, n_in)).astype("float32")
    layer.build(x.shape)
    layer.bias.assign(np.random.default_rng(1).normal(size=filters).astype("float32"))
    want = np.asarray(layer(x))
    fast = _polyphase_conv1d_transpose(layer)
    assert fast is not None
    np.testing.assert_allclose(np.asarray(fast(x)), want, rtol=1e-5, atol=1e-5)


def test_polyphase_declines_what_it_does_not_cover():
    from keras import layers

    from aeviz_core.models import _polyphase_conv1d_transpose

    for layer in (layers.Conv1DTranspose(2, 3, strides=2, padding="valid"),
                  layers.Conv1DTranspose(2, 3, strides=1, padding="same")):
        layer.build((None, 8, 2))
        assert _polyphase_conv1d_transpose(layer) is None


def test_inference_function_of_a_conv1d_model_equals_the_model():
    from aeviz_core.models import inference_function

    for kind in ("conv-ae", "conv-vae"):
        model = build_model(kind, (30, 7), latent_dim=4, hidden=(8, 16))
        x = np.random.default_rng(0).normal(size=(5, 30, 7)).astype("float32")
        np.testing.assert_allclose(np.asarray(inference_function(model)(x)), np.asarray(model(x)),
                                   rtol=1e-5, atol=1e-5)


def test_a_fit_of_few_steps_runs_eagerly_and_a_longer_one_is_traced(series):
    """Tracing costs more than a few steps op by op (training.EAGER_STEPS); both train alike."""
    from aeviz_core import AutoencoderDetector
    from aeviz_core.training import EAGER_STEPS

    params = dict(window=16, stride=2, latent_dim=3, early_stopping=False, random_state=0)
    short = AutoencoderDetector(epochs=2, **params).fit(series.iloc[:1500])
    longer = AutoencoderDetector(epochs=40, **params).fit(series.iloc[:1500])
    per_epoch = int(np.ceil(653 / short.training_plan().batch_size))  # 653 training windows: 2 batches
    assert 2 * per_epoch <= EAGER_STEPS < 40 * per_epoch
    assert short.model_.run_eagerly and not longer.model_.run_eagerly
    for det in (short, longer):
        assert det.history_["loss"][-1] < det.history_["loss"][0]
        assert np.isfinite(det.anomaly_score(series.iloc[1500:1800])).all()
