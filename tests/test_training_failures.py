"""Training that fails (NaN loss, out of memory, a stop request) leaves the app
usable and says what happened."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from aeviz_core import AutoencoderDetector, TrainingError
from aeviz_app.session import Dataset
from aeviz_app.training import TrainingJob, TrainSettings
from tests.test_app import APP, TIMEOUT, ok, train_tiny


def test_out_of_memory_is_a_training_error(series, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(keras.Model, "fit", no_memory)
    with pytest.raises(TrainingError, match="ran out of memory: lower batch_size"):
        AutoencoderDetector(window=8, stride=4, epochs=1).fit(series.iloc[:300])


@pytest.mark.parametrize("failure, message", [
    (TrainingError("training diverged: the loss became NaN or infinite at epoch 3"), "loss became NaN"),
    (MemoryError(), "MemoryError"),
])
def test_a_failed_job_reports_instead_of_crashing(failure, message, monkeypatch):
    X = np.random.default_rng(0).normal(size=(300, 64)).astype(np.float32)
    ds = Dataset.from_images(X, np.zeros(300, int), "noise")
    settings = TrainSettings(model="ae", latent_dim=2, window=None, epochs=3, batch_size=16)
    det = AutoencoderDetector(**settings.detector_params(ds))

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(det, "fit", fail)
    job = TrainingJob(det, X, None, name="doomed", dataset=ds, settings=settings).start()
    assert job.wait(60)
    assert message in job.error


def test_the_train_page_says_what_happened_and_stays_usable(monkeypatch, tmp_path):
    monkeypatch.setenv("AEVIZ_MODEL_DIR", str(tmp_path / "models"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    ok(at.switch_page("pages/2_train.py").run())

    def diverge(self, *args, **kwargs):
        raise TrainingError("training diverged: the loss became NaN or infinite at epoch 1; lower learning_rate")

    monkeypatch.setattr(AutoencoderDetector, "fit", diverge)
    train_tiny(at)
    job = at.session_state["train_job"]
    if job is not None:  # the page polls the background job: let it finish
        job.wait(60)
        ok(at.run())
    assert any("Training failed" in e.value and "diverged" in e.value for e in at.error)
    assert len(at.session_state["models"]) == 0
    monkeypatch.undo()
    monkeypatch.setenv("AEVIZ_MODEL_DIR", str(tmp_path / "models"))
    train_tiny(at)  # the app is still usable: the next training works
    job = at.session_state["train_job"]
    if job is not None:
        job.wait(120)
        ok(at.run())
    assert len(at.session_state["models"]) == 1


def test_streamlit_no_longer_clears_keras_after_each_run(monkeypatch):
    """Streamlit clears Keras after every script run (kernel cache, a full GC), which slowed a
    training in the background 4-25 times; the app keeps Keras between runs and still closes
    matplotlib's figures."""
    import sys

    import keras
    from streamlit.runtime.scriptrunner import script_runner

    from aeviz_app.session import keep_keras_between_runs

    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: cleared.append(1))
    current = script_runner._clean_problem_modules  # an app run in this process may have replaced it
    monkeypatch.setattr(script_runner, "_clean_problem_modules", getattr(current, "streamlit_own", current))
    script_runner._clean_problem_modules()
    assert cleared == [1]  # what Streamlit does by itself
    keep_keras_between_runs()
    keep_keras_between_runs()  # once is enough: a second call changes nothing
    script_runner._clean_problem_modules()
    assert cleared == [1]
    closed = []
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", type("plt", (), {"close": staticmethod(closed.append)}))
    script_runner._clean_problem_modules()
    assert closed == ["all"]
