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
