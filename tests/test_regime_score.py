"""The ``series_score="regime"`` series score (score version 4): each channel's unsmoothed residual
against its held-out scale, raised to its own recent level once that stays above it, two
channels together, and the 99.9th percentile as the default threshold."""

import numpy as np
import pandas as pd
import pytest

from aeviz_core import (AutoencoderDetector, iter_sensor_chunks, load_detector, load_sensor_table, save_detector,
                        score_stream, score_table)
from aeviz_core.scores import REFERENCE_QUANTILE, REGIME_VERSION, SeriesScore, step_scale


@pytest.fixture(scope="module")
def regime_detector(series):
    return AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=15, random_state=0,
                               series_score="regime").fit(series.iloc[:1500])


def settings(n_channels, reference=None):
    return SeriesScore.of(8, REGIME_VERSION, None, 0, channel_scale=np.ones(n_channels),
                          step_scale=np.zeros(n_channels),
                          reference=np.ones(n_channels) if reference is None else reference)


def test_two_channels_together_count_more_than_one_alone():
    """The row's score is the mean of the logs of its two largest channel residuals: one
    channel 1000 times its normal error scores log(1000) / 2, two channels log(1000)."""
    n = 400
    raw = np.ones((n, 3))
    raw[300, 0] = 1000.0
    raw[310, [0, 2]] = 1000.0
    scores, parts = settings(3).scores(np.zeros((n, 3)), raw)
    assert scores[300] == pytest.approx(np.log(1000) / 2)
    assert scores[310] == pytest.approx(np.log(1000))
    assert np.argmax(parts[300]) == 0 and parts[300, 0] == pytest.approx(np.log(1000))
    assert scores[:290].max() == 0.0  # normal rows (ratio 1) score 0, never below


def test_a_channel_that_stays_high_becomes_its_own_reference():
    """A residual four times the held-out one from row 1000 on: flagged from its start until it
    fills a quarter of the reference rows (plus the lag), then judged against its recent level."""
    S = settings(2)
    n = 3000
    raw = np.ones((n, 2))
    raw[1000:, 1] = 4.0
    residual, _ = S.tests(np.zeros((n, 2)), raw)
    quarter = int(S.reference_rows * (1 - REFERENCE_QUANTILE))
    assert np.allclose(residual[1000 : 1000 + S.reference_lag + quarter - 5, 1], np.log(4))
    assert (residual[1000 + S.reference_lag + quarter + 5 :, 1] == 0).all()
    raw[2500:2510, 1] = 400.0  # a fault inside the new regime still stands out, by its ratio to it
    residual, _ = S.tests(np.zeros((n, 2)), raw)
    assert np.allclose(residual[2500:2510, 1], np.log(100))


def test_a_channel_that_repeats_its_readings_is_left_out_of_the_stillness_test():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    hold = rng.random(2000) < 0.5  # a slow reading: repeats the last value on about half the steps
    for i in np.flatnonzero(hold[1:]) + 1:
        X[i, 1] = X[i - 1, 1]
    scale = step_scale(X, np.ones(2000, dtype=bool), 31, [(0, 2000)], repeats=True)
    assert scale[0] > 0 and scale[1] == 0
    assert (step_scale(X, np.ones(2000, dtype=bool), 31, [(0, 2000)]) > 0).all()  # score version 3 tests both


def test_the_regime_model_scores_and_saves(regime_detector, faulty_series, tmp_path):
    det = regime_detector
    assert det.score_version_ == REGIME_VERSION
    assert det.threshold_rule_.rule == "percentile" and det.threshold_rule_.param == 99.9
    plain, median = np.quantile(det.fit_errors_, 0.999), np.median(det.fit_errors_)
    assert det.threshold_ == pytest.approx(median + 1.2 * (plain - median))  # the series margin
    assert det.with_threshold(margin=1.0).threshold_ == pytest.approx(plain)  # the 99.9th kept
    scores = det.anomaly_score(faulty_series)
    assert scores[2000:2010].min() > det.threshold_  # the 10-row spike on 'b'
    assert np.mean(scores[1600:1900] > det.threshold_) < 0.01
    save_detector(det, tmp_path / "m")
    loaded = load_detector(tmp_path / "m")
    assert loaded.series_score == "regime" and loaded.score_version_ == REGIME_VERSION
    np.testing.assert_array_equal(loaded.reference_scale_, det.reference_scale_)
    np.testing.assert_allclose(loaded.anomaly_score(faulty_series), scores, rtol=1e-6)
    assert loaded.threshold_ == det.threshold_


def test_the_regime_models_context_reaches_back_over_its_reference(regime_detector, faulty_series, tmp_path):
    det = regime_detector
    level = 32 * 16 + 1
    residual = 16 - 1 + 0 + level // 2 + 45 * 16 + 2 * 16
    still = level // 2 + (2 * 16 - 1) // 2 + 1 + level // 2
    assert det.context_rows == max(residual, still) == residual
    frame = faulty_series.copy()
    frame.insert(0, "time", pd.date_range("2026-03-01", periods=len(frame), freq="s"))
    frame.to_csv(tmp_path / "s.csv", index=False)
    whole = score_table(det, load_sensor_table(tmp_path / "s.csv"))
    streamed = pd.concat(score_stream(det, iter_sensor_chunks(tmp_path / "s.csv", chunk_rows=400)),
                         ignore_index=True)
    np.testing.assert_allclose(streamed["score"], whole["score"], rtol=1e-5, atol=1e-7)
    assert (streamed["flag"] == whole["flag"]).all()


def test_score_must_be_a_known_kind(series):
    with pytest.raises(ValueError, match="series_score must be one of"):
        AutoencoderDetector(window=16, series_score="fancy").fit(series.iloc[:200])


def test_the_training_period_is_said_in_rows_and_time():
    from aeviz_core.settings import duration_text, row_period_seconds, training_period_text

    minutes = pd.Series(pd.date_range("2026-01-01", periods=10, freq="min"))
    assert row_period_seconds(minutes) == 60
    assert training_period_text(15_000, minutes) == "15,000 rows = 10 days 10 h"
    assert training_period_text(400, None) == "400 rows"
    assert training_period_text(400, pd.Series(np.arange(10.0))) == "400 rows"  # numbers: unit unknown
    assert duration_text(400) == "6 min 40 s"


@pytest.mark.parametrize("freq, options, expected", [("min", [], "lasting"), ("s", [], "lasting"),
                                                     ("min", ["--score", "regime"], "regime")])
def test_aeviz_train_scores_every_series_with_one_policy_unless_told(series, tmp_path, freq, options, expected,
                                                                     capfd):
    """One policy whatever the rows' spacing (no switch by data set); ``--score`` chooses another. The
    training period is named once, where the threshold is set."""
    from aeviz_core.cli import main

    frame = series.iloc[:1200].copy()
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq=freq))
    frame.to_csv(tmp_path / "s.csv", index=False)
    assert main(["train", str(tmp_path / "s.csv"), "--out", str(tmp_path / "m"), "--window", "16",
                 "--epochs", "2", *options]) == 0
    assert load_detector(tmp_path / "m").series_score == expected
    err = capfd.readouterr().err
    period = "20 h" if freq == "min" else "20 min"
    assert err.count("trained on 1,200 rows") == 1 and f"1,200 rows = {period}" in err, err


def test_aeviz_train_reads_adapt_after_as_a_duration_or_rows(series, tmp_path):
    from aeviz_core.cli import main

    frame = series.iloc[:1200].copy()
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="min"))
    frame.to_csv(tmp_path / "s.csv", index=False)
    for value, rows in (("6h", 360), ("500", 500)):
        assert main(["train", str(tmp_path / "s.csv"), "--out", str(tmp_path / "m"), "--window", "16",
                     "--epochs", "1", "--adapt-after", value]) == 0
        assert load_detector(tmp_path / "m").adapt_rows_ == rows
    assert main(["train", str(tmp_path / "s.csv"), "--out", str(tmp_path / "bad"), "--window", "16",
                 "--epochs", "1", "--adapt-after", "soon"]) == 2
    assert not (tmp_path / "bad").exists()


def test_the_apps_default_settings_use_the_one_policy(series, tmp_path):
    from aeviz_app import session as S, training as T

    for freq in ("min", "s"):
        frame = series.iloc[:1200].copy()
        frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq=freq))
        frame.to_csv(tmp_path / f"{freq}.csv", index=False)
        ds = S.Dataset.from_sensor(load_sensor_table(tmp_path / f"{freq}.csv"), f"{freq}.csv")
        settings = T.default_settings(ds)
        assert settings.detector_params(ds)["series_score"] == "lasting"
        assert settings.detector_params(ds)["adapt_after"] is None
    settings = T.TrainSettings(adapt_after="1d")
    assert settings.detector_params(ds)["adapt_after"] == "1d"
    assert T.TrainSettings(adapt_after=" 300 ").detector_params(ds)["adapt_after"] == 300
