"""Shared, seeded fixtures. Models trained here are small and fast; the quality
floors on the shipped data live in test_quality.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

#: the files that take longest (seconds of one worker on 2 cores, without ``../shared/data``), run
#: first: pytest-xdist hands a worker a file (``--dist loadfile``) and keeps one more queued behind
#: it, so a long file met late holds a short one back while the other workers stand idle
LONGEST_FIRST = ("test_browser", "test_quality", "test_detector", "test_app", "test_review_page",
                 "test_new_user", "test_real_data", "test_sign_in_browser", "test_sign_in",
                 "test_sklearn_contract", "test_backends", "test_feedback", "test_items", "test_distributed",
                 "test_models", "test_bad_inputs")


def pytest_collection_modifyitems(items):
    """The longest files first (``LONGEST_FIRST``); within a file, pytest's order."""
    def rank(item):
        name = item.path.stem
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: no error where it is not installed
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores. The browser walks leave their worker's core idle
    while the app (another process) and chromium work, and a third worker fills it: 10.4 min
    against 12.0 with two on 2 cores. ``--maxprocesses`` still caps it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores + 1


def make_series(n=3000, seed=0):
    """Four coupled channels (two phases of one oscillation, a harmonic, a level)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.c_[np.sin(t / 20), np.cos(t / 20), 0.5 * np.sin(t / 7), np.full(n, 3.0)]
    X = X + rng.normal(0, 0.05, X.shape)
    return pd.DataFrame(X, columns=["a", "b", "c", "level"])


@pytest.fixture(scope="session", autouse=True)
def private_stores(tmp_path_factory):
    """No test reads or writes the user's own review store or model folder (``~/.aeviz``,
    ``models/``, or where the shell's ``AEVIZ_DB_URL`` points): every test, and every app a test
    starts, gets a throwaway SQLite file and model folder unless it sets its own."""
    folder = tmp_path_factory.mktemp("private")
    saved = {key: os.environ.get(key) for key in ("AEVIZ_DB_URL", "AEVIZ_DB_PATH", "AEVIZ_MODEL_DIR")}
    os.environ.pop("AEVIZ_DB_URL", None)
    os.environ["AEVIZ_DB_PATH"] = str(folder / "reviews.db")
    os.environ["AEVIZ_MODEL_DIR"] = str(folder / "models")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def series():
    return make_series()


@pytest.fixture(scope="session")
def faulty_series(series):
    """The series with a 10-row spike (about 6 sigma) on channel 'b' at rows 2000-2009."""
    X = series.copy()
    X.loc[2000:2009, "b"] += 4.0
    return X


@pytest.fixture(scope="session")
def series_detector(series):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=15, random_state=0).fit(
        series.iloc[:1500]
    )


@pytest.fixture(scope="session")
def smooth_detector(series):
    """The same model with ``series_score="smooth"`` (score version 3, what models saved before the
    lasting-change policy score with)."""
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=15, random_state=0,
                               series_score="smooth").fit(series.iloc[:1500])


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y
