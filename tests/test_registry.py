import io
import json
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest

from aeviz_core import (
    ModelMismatchError,
    UnsafeModelError,
    detector_to_zip,
    load_detector,
    load_detector_zip,
    save_detector,
)


def test_a_lasting_model_keeps_its_steady_channels_tails_and_adaptation(series, tmp_path):
    """Score version 5's fitted state (steady channels, the running level's rows, each channel's
    tail, the rows after which a lasting change is adopted) is saved and scores identically."""
    from aeviz_core import AutoencoderDetector

    frame = series.iloc[:1500].copy()
    frame.index = pd.date_range("2026-01-01", periods=len(frame), freq="1min")
    det = AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=3, random_state=0,
                              adapt_after="2h").fit(frame)
    assert det.score_version_ == 5 and det.adapt_rows_ == 120
    loaded = load_detector(save_detector(det, tmp_path / "m"))
    np.testing.assert_array_equal(loaded.steady_, det.steady_)
    assert loaded.level_rows_ == det.level_rows_ and loaded.adapt_rows_ == 120
    np.testing.assert_allclose(loaded.channel_tail_, det.channel_tail_)
    np.testing.assert_allclose(loaded.anomaly_score(series), det.anomaly_score(series), rtol=1e-6, atol=1e-9)


def test_save_then_load_gives_the_same_scores(series_detector, faulty_series, tmp_path):
    path = save_detector(series_detector, tmp_path / "model", extra={"time_col": "time"})
    assert sorted(p.name for p in path.iterdir()) == ["aeviz.json", "fit_errors.npy", "model.keras"]
    loaded = load_detector(path)
    np.testing.assert_allclose(loaded.reconstruction_error(faulty_series),
                               series_detector.reconstruction_error(faulty_series), rtol=1e-5)
    assert loaded.threshold_ == series_detector.threshold_
    assert loaded.model_id_ == series_detector.model_id_
    assert loaded.get_params() == series_detector.get_params()
    assert loaded.saved_meta_["extra"] == {"time_col": "time"}
    moved = loaded.with_threshold("percentile", 90)  # fit errors came along
    assert moved.threshold_ < loaded.threshold_
    np.testing.assert_array_equal(loaded.step_scale_, series_detector.step_scale_)
    np.testing.assert_allclose(loaded.anomaly_score(faulty_series), series_detector.anomaly_score(faulty_series),
                               rtol=1e-5, atol=1e-6)


def test_a_model_saved_before_the_stillness_test_still_loads_and_scores(series_detector, series, tmp_path):
    path = save_detector(series_detector, tmp_path / "model")
    meta = json.loads((path / "aeviz.json").read_text())
    del meta["step_scale"]
    (path / "aeviz.json").write_text(json.dumps(meta))
    loaded = load_detector(path)
    assert not hasattr(loaded, "step_scale_")
    stuck = series.copy()
    stuck.loc[2000:2150, "level"] = stuck.loc[2000, "level"]
    rows = slice(2040, 2110)
    old, new = loaded.anomaly_score(stuck), series_detector.anomaly_score(stuck)
    assert np.isfinite(old).all() and old[rows].mean() < new[rows].mean()  # the residual alone


def test_a_model_saved_with_score_version_2_scores_as_it_did(smooth_detector, faulty_series, tmp_path):
    """Version 2: the residual averaged over 2 * window - 1 rows against the held-out scale alone,
    stillness over the same rows. A saved version-2 model keeps that score (and its context)."""
    from aeviz_core.scores import local_stillness
    from aeviz_core.windows import moving_average

    series_detector = smooth_detector
    path = save_detector(series_detector, tmp_path / "model")
    meta = json.loads((path / "aeviz.json").read_text())
    assert meta["score_version"] == 3
    meta["score_version"] = 2
    (path / "aeviz.json").write_text(json.dumps(meta))
    old = load_detector(path)
    w = old.window
    old_score, new_score = old.series_scorer(), series_detector.series_scorer()
    assert (old_score.smooth, old_score.still_smooth) == (2 * w - 1, 2 * w - 1)
    assert (new_score.smooth, new_score.still_smooth) == (w - 1, 2 * w - 1)

    def version_2(Xs):
        ratio = moving_average(old.inference().series_errors(Xs, w) / old.channel_scale_, 2 * w - 1)
        still = local_stillness(Xs, old.step_scale_, 2 * w - 1, old_score.span)
        return np.maximum(np.log(np.maximum(ratio, 1.0)), still)

    expected = old._by_segment(faulty_series.to_numpy(dtype=float), version_2).max(axis=1)
    np.testing.assert_allclose(old.anomaly_score(faulty_series), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(series_detector.anomaly_score(faulty_series), expected, atol=1e-3)
    assert old.context_rows < series_detector.context_rows  # version 3's running residual reference


@pytest.mark.parametrize("fixture, margin", [("series_detector", 1.5), ("smooth_detector", 1.2)])
def test_the_threshold_margin_is_saved_and_a_model_saved_before_it_keeps_its_rule(fixture, margin, request, tmp_path):
    series_detector = request.getfixturevalue(fixture)
    path = save_detector(series_detector, tmp_path / "m")
    loaded = load_detector(path)
    assert loaded.threshold_margin_ == margin and loaded.threshold_ == series_detector.threshold_
    assert loaded.with_threshold("percentile", 99).threshold_ == series_detector.with_threshold("percentile", 99).threshold_
    meta = json.loads((path / "aeviz.json").read_text())
    del meta["threshold"]["margin"]  # a directory saved before the margin existed
    (path / "aeviz.json").write_text(json.dumps(meta))
    old = load_detector(path)
    assert old.threshold_ == series_detector.threshold_  # the saved value, untouched
    assert old.threshold_margin_ == 1.0
    assert old.with_threshold("percentile", 99).threshold_ == pytest.approx(np.percentile(old.fit_errors_, 99))


def test_a_model_directory_saved_before_the_estimator_was_split_by_stage_scores_identically():
    """``tests/data/model_b969910`` was saved by main at b969910, before the estimator's fit,
    preparation and series statistics moved to their stage modules; it loads and scores, encodes
    and thresholds as it did then (``expected.npz``, written by that code): bit for bit on the machine
    that wrote it, within float32 rounding (relative 1e-5) on another CPU, whose kernels sum in
    another order (differences of 2.4e-7 seen); the threshold is the saved value, exactly."""
    from pathlib import Path

    from tests.conftest import make_series

    folder = Path(__file__).parent / "data" / "model_b969910"
    expected = np.load(folder / "expected.npz")
    faulty = make_series(n=1200, seed=3)
    faulty.loc[1000:1009, "b"] += 4.0
    det = load_detector(folder)
    score, parts = det.score_parts(faulty)
    np.testing.assert_allclose(score, expected["score"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(parts, expected["parts"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(det.transform(faulty), expected["latent"], rtol=1e-5, atol=1e-6)
    assert det.threshold_ == float(expected["threshold"])
    assert det.with_threshold("percentile", 99.5).threshold_ == float(expected["threshold"])
    assert score[1000:1010].min() > det.threshold_


def test_saved_json_has_versions_and_fingerprints(series_detector, tmp_path):
    meta = json.loads((save_detector(series_detector, tmp_path / "m") / "aeviz.json").read_text())
    assert meta["format"] == "aeviz-model" and meta["keras_version"] == keras.__version__
    assert meta["feature_names"] == ["a", "b", "c", "level"]
    assert meta["threshold"]["rule"] == "percentile" and meta["data_fingerprint"]


def test_resaving_replaces_the_model_atomically(series_detector, tmp_path):
    path = save_detector(series_detector, tmp_path / "m")
    (path / "stray.txt").write_text("old")
    save_detector(series_detector, path)
    assert not (path / "stray.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_loaded_model_refuses_other_channels(series_detector, series, tmp_path):
    loaded = load_detector(save_detector(series_detector, tmp_path / "m"))
    with pytest.raises(ModelMismatchError, match="unexpected"):
        loaded.reconstruction_error(series.rename(columns={"a": "x"}))


def test_not_a_model_directory(tmp_path):
    with pytest.raises(UnsafeModelError, match="not a model directory"):
        load_detector(tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsafeModelError, match="aeviz.json or model.keras is missing"):
        load_detector(tmp_path / "d")


def test_foreign_json_is_refused(series_detector, tmp_path):
    path = save_detector(series_detector, tmp_path / "m")
    (path / "aeviz.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UnsafeModelError, match="not written by aeviz"):
        load_detector(path)


def test_a_lambda_layer_is_refused(series_detector, tmp_path):
    path = save_detector(series_detector, tmp_path / "m")
    inputs = keras.Input((4,))
    evil = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    evil.save(path / "model.keras")
    with pytest.raises(UnsafeModelError, match="Lambda layer"):
        load_detector(path)


def test_a_plain_keras_model_is_refused(series_detector, tmp_path):
    path = save_detector(series_detector, tmp_path / "m")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(4)(inputs)).save(path / "model.keras")
    with pytest.raises(UnsafeModelError, match="not an aeviz autoencoder"):
        load_detector(path)


def test_a_pickle_is_refused(series_detector, tmp_path):
    path = save_detector(series_detector, tmp_path / "m")
    (path / "model.keras").write_bytes(b"\x80\x04\x95 not a keras archive")
    with pytest.raises(UnsafeModelError, match="could not be loaded safely"):
        load_detector(path)
    path = save_detector(series_detector, tmp_path / "m2")
    np.save(path / "fit_errors.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeModelError, match="fit_errors.npy: unreadable"):
        load_detector(path)


def test_zip_round_trip(series_detector, series, tmp_path):
    data = detector_to_zip(series_detector)
    loaded = load_detector_zip(data, tmp_path / "unpacked")
    np.testing.assert_allclose(loaded.reconstruction_error(series.iloc[:200]),
                               series_detector.reconstruction_error(series.iloc[:200]), rtol=1e-5)


def test_zip_slip_is_refused(series_detector, tmp_path):
    good = zipfile.ZipFile(io.BytesIO(detector_to_zip(series_detector)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in good.namelist():
            zf.writestr(name, good.read(name))
        zf.writestr("../escaped.txt", "pwned")
    target = tmp_path / "inside" / "target"
    with pytest.raises(UnsafeModelError, match="unsafe path '../escaped.txt'"):
        load_detector_zip(buf.getvalue(), target)
    assert not (tmp_path / "inside" / "escaped.txt").exists()
    assert not target.exists()


def test_bad_zips(tmp_path):
    with pytest.raises(UnsafeModelError, match="not a zip file"):
        load_detector_zip(b"hello", tmp_path / "t")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.keras", "x")
    with pytest.raises(UnsafeModelError, match="not an aeviz model"):
        load_detector_zip(buf.getvalue(), tmp_path / "t")
