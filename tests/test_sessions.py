"""Many sessions: two AppTest sessions in one process share Streamlit's caches, as
browser tabs on one server do, yet never see each other's data or models, and
a model cached with ``st.cache_resource`` is never mutated by a page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_app import APP, TIMEOUT, metric, ok, train_tiny


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("sessions")
    mp.setenv("AEVIZ_MODEL_DIR", str(folder / "models"))
    a = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    b = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    yield a, b
    mp.undo()


def test_a_model_trained_in_one_session_is_not_in_the_other(two_sessions):
    a, b = two_sessions
    train_tiny(a)
    assert len(a.session_state["models"]) == 1
    ok(b.switch_page("pages/2_train.py").run())
    assert len(b.session_state["models"]) == 0
    ok(b.switch_page("pages/4_anomalies.py").run())
    assert not b.metric  # no model: an info message, no numbers from the other session


def test_data_chosen_in_one_session_stays_there(two_sessions):
    a, b = two_sessions
    ok(b.switch_page("pages/1_data.py").run())
    b.radio(key="data.source").set_value("digits")
    ok(b.run())
    assert b.session_state["dataset"].is_images
    ok(a.switch_page("pages/1_data.py").run())
    assert not a.session_state["dataset"].is_images


def test_a_threshold_moved_in_one_session_does_not_move_another(two_sessions):
    a, b = two_sessions
    # a saves its model; b loads the same directory: both hold the one cached object
    ok(a.switch_page("pages/2_train.py").run())
    a.button(key="train.save").click()
    ok(a.run())
    ok(b.switch_page("pages/1_data.py").run())
    b.radio(key="data.source").set_value("pump")
    ok(b.run())
    for session in (a, b):
        ok(session.switch_page("pages/2_train.py").run())
        session.button(key="train.load").click()
        ok(session.run())
    loaded_a = next(e for e in a.session_state["models"].values() if e.source == "loaded")
    loaded_b = next(e for e in b.session_state["models"].values() if e.source == "loaded")
    assert loaded_a.detector is loaded_b.detector  # shared through st.cache_resource
    shared = loaded_a.detector
    before = shared.threshold_
    a.session_state["active_model"] = loaded_a.name
    b.session_state["active_model"] = loaded_b.name
    ok(a.switch_page("pages/4_anomalies.py").run())
    ok(b.switch_page("pages/4_anomalies.py").run())
    b_threshold = float(metric(b, "Threshold"))
    a.slider(key="anomalies.param.percentile").set_value(80.0)
    ok(a.run())
    assert float(metric(a, "Threshold")) < b_threshold
    ok(b.run())
    assert float(metric(b, "Threshold")) == pytest.approx(b_threshold)
    assert shared.threshold_ == before  # the cached object was never mutated
    assert Path(a.session_state["model_dir"]).is_dir()
