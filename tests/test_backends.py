"""The same models run on JAX (``KERAS_BACKEND=jax``): how a GPU without TensorFlow is used.

Keras picks its backend at import, so this runs in a child process.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from aeviz_core import AutoencoderDetector, load_detector, save_detector
    rng = np.random.default_rng(0)
    t = np.arange(1200)[:, None]
    X = np.sin(t / (10 + np.arange(3))) + 0.05 * rng.normal(size=(1200, 3))
    for model in ("ae", "conv-ae", "vae", "conv-vae"):
        det = AutoencoderDetector(model=model, window=16, stride=4, latent_dim=3, epochs=2, random_state=0).fit(X)
        scores = det.anomaly_score(X)
        assert scores.shape == (1200,) and np.isfinite(scores).all(), model
        if model.endswith("vae"):
            assert {"reconstruction_loss", "kl_loss"} <= set(det.history_), det.history_.keys()
    save_detector(det, "m")
    again = load_detector("m")
    np.testing.assert_allclose(again.anomaly_score(X), det.anomaly_score(X), rtol=1e-5)
    print("jax ok")
""")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_models_train_score_and_round_trip_on_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "jax ok" in proc.stdout
