"""Real files go in: gaps, slow drift beyond the training range, and warnings when flags cannot
be trusted (issue: detection that holds on real sensor data)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aeviz_core import AutoencoderDetector, DataError, load_sensor_table
from aeviz_core.cli import main
from aeviz_core.trust import trust_notes
from tests.paths import SHARED_DATA

GECCO = SHARED_DATA / "gecco2018" / "1_gecco2018_water_quality.csv"


def plant(n=6000, seed=0):
    """Four coupled channels and a slow temperature that drifts after the training rows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    demand = np.sin(t / 40) + 0.3 * np.sin(t / 13)
    flow = demand + rng.normal(0, 0.05, n)
    pressure = 2.0 - 0.8 * demand + rng.normal(0, 0.05, n)
    current = 1.5 * flow - 0.5 * pressure + rng.normal(0, 0.05, n)
    temp = 20 + 0.3 * np.sin(t / 300) + rng.normal(0, 0.05, n)
    temp[2000:] += np.linspace(0, 15, n - 2000)  # drifts 50 training ranges away
    return pd.DataFrame({"flow": flow, "pressure": pressure, "current": current, "temp": temp})


@pytest.fixture(scope="module")
def drifted():
    X = plant()
    det = AutoencoderDetector(window=16, stride=2, latent_dim=4, epochs=25, random_state=0).fit(X.iloc[:2000])
    return X, det


def test_a_slow_drift_far_beyond_the_training_range_does_not_flag_the_series(drifted):
    X, det = drifted
    flagged = det.predict(X.iloc[2000:]) == -1
    assert flagged.mean() < 0.05, f"{flagged.mean():.1%} of the drifted rows flagged"
    assert not det.steady_.any()  # every channel wanders (demand cycles, the temperature)
    absolute = AutoencoderDetector(window=16, stride=2, latent_dim=4, epochs=25, random_state=0,
                                   level="absolute").fit(X.iloc[:2000])
    # with the level left in, the drift is judged as it is: a change that lasts is flagged
    assert (absolute.predict(X.iloc[2000:]) == -1).mean() > 2 * flagged.mean()


def test_faults_on_the_drifting_series_are_found(drifted):
    X, det = drifted
    faulty = X.copy()
    truth = np.zeros(len(X), int)
    faulty.loc[3000:3100, "flow"] = faulty.loc[3000, "flow"]  # stuck sensor
    truth[3000:3101] = 1
    faulty.loc[4000:4100, "current"] += 1.0  # broken relation: current no longer follows flow
    truth[4000:4101] = 1
    faulty.loc[5000:5005, "pressure"] += 2.0  # spike
    truth[5000:5006] = 1
    scores = det.anomaly_score(faulty)
    assert roc_auc_score(truth[2000:], scores[2000:]) > 0.9  # 0.927 measured
    flags = scores > det.threshold_
    # the stuck sensor and the spike on most of their rows; the broken relation on a channel whose
    # level wanders (its running level is taken out and absorbs part of a 100-row offset) on a
    # fifth of its rows (22% measured): found as an event, not row by row
    for (start, stop), share in (((3000, 3101), 0.9), ((4000, 4101), 0.15), ((5000, 5006), 0.9)):
        assert flags[start:stop].mean() > share, (start, flags[start:stop].mean())
    # level="range" (version 3's default) keeps a wandering channel's level inside its training
    # range: the offset is found on every row, at the cost of the slow channels' false alarms on
    # real rigs (README: "How a series is scored")
    ranged = AutoencoderDetector(window=16, stride=2, latent_dim=4, epochs=25, random_state=0,
                                 level="range").fit(X.iloc[:2000])
    assert (ranged.anomaly_score(faulty)[4000:4101] > ranged.threshold_).mean() > 0.9


def steady_plant(n=6000, seed=0):
    """Three channels held at set points (noise around a level) and a wandering temperature."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({"flow": 32 + rng.normal(0, 0.4, n), "pressure": 2.0 + rng.normal(0, 0.05, n),
                         "current": 1.2 + rng.normal(0, 0.1, n),
                         "temp": 70 + np.cumsum(rng.normal(0, 0.02, n)) + 0.5 * np.sin(t / 150)})


def test_a_lasting_step_on_a_steady_channel_stays_flagged_unless_adapt_after_says_otherwise():
    """A valve closed part way: the flow steps down by four noise spreads and stays there. With the
    default (``adapt_after=None``) the change is flagged for as long as it lasts; with
    ``adapt_after`` it becomes the channel's reference once it has lasted that long."""
    X = steady_plant()
    params = dict(window=16, stride=2, latent_dim=3, epochs=20, random_state=0)
    det = AutoencoderDetector(**params).fit(X.iloc[:1000])
    assert list(det.steady_) == [True, True, True, False]
    changed = X.copy()
    changed.loc[2000:, "flow"] -= 1.6
    flags = det.anomaly_score(changed) > det.threshold_
    assert flags[1000:1950].mean() < 0.02, flags[1000:1950].mean()
    assert flags[2050:].mean() > 0.95, flags[2050:].mean()  # every later row, to the end
    adapting = AutoencoderDetector(**params, adapt_after=500).fit(X.iloc[:1000])
    flags = adapting.anomaly_score(changed) > adapting.threshold_
    assert flags[2050:2400].mean() > 0.9 and flags[2700:].mean() < 0.05, (flags[2050:2400].mean(), flags[2700:].mean())


def test_adapt_after_as_a_time_needs_the_rows_times():
    X = steady_plant(n=1200)
    with pytest.raises(ValueError, match="adapt_after='1h' is a time, but the training rows carry no times"):
        AutoencoderDetector(window=16, epochs=1, adapt_after="1h").fit(X)
    with pytest.raises(ValueError, match="adapt_after must be None, a number of rows >= 1 or a duration"):
        AutoencoderDetector(window=16, epochs=1, adapt_after="soon").fit(X)
    timed = X.set_index(pd.date_range("2026-01-01", periods=len(X), freq="1s"))
    assert AutoencoderDetector(window=16, epochs=1, adapt_after="1h").fit(timed).adapt_rows_ == 3600


def test_a_lasting_new_regime_is_flagged_at_its_start_then_settles_with_the_regime_score(drifted):
    """``series_score="regime"`` (version 4) adapts on its own: after the training period the
    current's noise grows fivefold for good (a pump swapped, a line re-routed): the start of the new
    regime is flagged, then it becomes the channel's own reference, while a 60-row broken relation
    inside it is still found."""
    X, _ = drifted
    det = AutoencoderDetector(window=16, stride=2, latent_dim=4, epochs=25, random_state=0,
                              series_score="smooth").fit(X.iloc[:2000])
    span = det.series_scorer().span
    changed = X.copy()
    rng = np.random.default_rng(1)
    changed.loc[2200:, "current"] += rng.normal(0, 0.25, len(X) - 2200)
    flags = det.anomaly_score(changed) > det.threshold_
    onset, settled = flags[2200 : 2200 + span // 2].mean(), flags[2200 + span : 4400].mean()
    assert onset > 0.6 and settled < 0.1 and settled < onset / 5, (onset, settled)
    faulty = changed.copy()
    faulty.loc[4500:4560, "pressure"] += 1.0
    flags = det.anomaly_score(faulty) > det.threshold_
    assert flags[4500:4561].mean() > 0.8, flags[4500:4561].mean()


def test_trust_notes_name_the_drifted_channel_and_the_share_flagged(drifted):
    X, det = drifted
    notes = trust_notes(det, X, det.anomaly_score(X))
    ranged = [n for n in notes if n.startswith("readings outside their training range")]
    assert len(ranged) == 1 and "'temp' since row 2" in ranged[0], notes
    assert "its level not scored (it wanders" in ranged[0] and "drop" not in ranged[0], ranged
    other = X * 3.0 + 5.0  # another regime: every channel elsewhere
    scores = det.anomaly_score(other)
    notes = trust_notes(det, other, scores)
    ranged = [n for n in notes if n.startswith("readings outside their training range")]
    assert any("far above" in n for n in notes) and len(ranged) == 1, notes  # one note, every channel listed
    assert all(f"'{c}' since row" in ranged[0] for c in X.columns), ranged
    assert trust_notes(det, X.iloc[:2000], det.anomaly_score(X.iloc[:2000])) == []


def _gap_file(tmp_path, where):
    rng = np.random.default_rng(1)
    n = 3000
    t = np.arange(n)
    frame = pd.DataFrame({"time": pd.Timestamp("2026-01-01") + pd.to_timedelta(t, unit="min"),
                          "a": np.sin(t / 20) + rng.normal(0, 0.05, n),
                          "b": np.cos(t / 20) + rng.normal(0, 0.05, n)})
    frame.loc[where, ["a", "b"]] = np.nan
    path = tmp_path / "gappy.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("where", [slice(1500, 1700), slice(0, 120), slice(2880, 2999)])
def test_a_file_with_an_outage_is_scored_on_both_sides(tmp_path, where):
    path = _gap_file(tmp_path, where)
    data = load_sensor_table(path)
    start, stop = where.start, where.stop + 1
    assert data.report.gap_rows == [(start, stop)]
    assert any(f"gap of {stop - start} row(s) at rows {start + 1}-{stop}" in w and "'a', 'b'" in w
               for w in data.report.warnings)
    model, out = tmp_path / "m", tmp_path / "scores.csv"
    assert main(["train", str(path), "--out", str(model), "--window", "16", "--epochs", "3"]) == 0
    assert main(["score", str(path), "--model", str(model), "--out", str(out), "--chunk-rows", "700"]) == 0
    scores = pd.read_csv(out, keep_default_na=False)
    assert len(scores) == 3000
    assert (scores["score"].iloc[start:stop] == "").all() and (scores["flag"].iloc[start:stop] == 0).all()
    assert (scores["top_channel"].iloc[start:stop] == "").all()
    rest = np.r_[0:start, stop:3000]
    assert (scores["score"].iloc[rest] != "").all()
    # streamed in chunks of 700 rows, equal to scoring the whole table in memory
    from aeviz_core import load_detector, score_table

    whole = score_table(load_detector(model), data)
    np.testing.assert_allclose(scores["score"].iloc[rest].astype(float), whole["score"].iloc[rest], rtol=1e-5)


def test_a_file_of_nothing_but_gaps_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.csv"
    rows = [f"{i},,{i}\n" if i < 25 else f"{i},{i},\n" for i in range(50)]  # a missing, then b
    path.write_text("time,a,b\n" + "".join(rows))
    with pytest.raises(DataError, match="no row where every channel has a value"):
        load_sensor_table(path)


def test_too_few_rows_between_gaps_to_train_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(300, 2))
    X[::20] = np.nan  # 19-row stretches, a window of 32 fits none
    with pytest.raises(ValueError, match="no stretch of 34 rows"):
        AutoencoderDetector(window=32, epochs=1).fit(X)


@pytest.mark.slow
@pytest.mark.skipif(not GECCO.is_file(), reason=f"the GECCO 2018 series is not at {GECCO} (../shared/data)")
def test_gecco_meets_the_issues_goals_with_the_cli_defaults(tmp_path):
    """The shared protocol with ``aeviz train`` / ``aeviz score`` defaults (the one policy, no
    adaptation): average precision and F1 at the model's own threshold at least 0.60, with at most 1%
    of the normal rows flagged, ahead of windowed PCA (AP 0.50, F1 0.51 at 1.07%)."""
    from sklearn.metrics import average_precision_score

    model, out = tmp_path / "m", tmp_path / "s.csv"
    assert main(["train", str(GECCO), "--out", str(model), "--train-rows", "15000", "--label-col", "EVENT"]) == 0
    assert main(["score", str(GECCO), "--model", str(model), "--out", str(out)]) == 0
    from aeviz_core import load_detector

    assert load_detector(model).series_score == "lasting" and load_detector(model).adapt_rows_ == 0
    data = load_sensor_table(GECCO, label_cols=["EVENT"])
    truth = data.labels["EVENT"].astype(bool).to_numpy()[15000:]
    frame = pd.read_csv(out).iloc[15000:]
    scores, flags = frame["score"].to_numpy(), frame["flag"].to_numpy().astype(bool)
    scored = ~np.isnan(scores)
    ap = average_precision_score(truth[scored], scores[scored])
    f1 = 2 * np.sum(flags & truth) / (np.sum(flags) + np.sum(truth))
    far = np.mean(flags[~truth])
    # measured: AP 0.676, F1 0.645 at 0.56% (README "Real data" gives the seeds)
    assert ap >= 0.60 and f1 >= 0.60 and far <= 0.01, (ap, f1, far)


@pytest.mark.slow
@pytest.mark.skipif(not GECCO.is_file(), reason=f"the GECCO 2018 series is not at {GECCO} (../shared/data)")
def test_gecco_the_smooth_score_no_longer_flags_most_rows(tmp_path):
    """The same protocol with ``--score smooth`` (the score of fast, steady data)."""
    model, out = tmp_path / "m", tmp_path / "s.csv"
    assert main(["train", str(GECCO), "--out", str(model), "--train-rows", "15000", "--label-col", "EVENT",
                 "--score", "smooth"]) == 0
    assert main(["score", str(GECCO), "--model", str(model), "--out", str(out)]) == 0
    data = load_sensor_table(GECCO, label_cols=["EVENT"])
    truth = data.labels["EVENT"].astype(bool).to_numpy()[15000:]
    scores = pd.read_csv(out)["score"].to_numpy()[15000:]
    scored = ~np.isnan(scores)
    auc = roc_auc_score(truth[scored], scores[scored])
    flagged = float(np.mean(pd.read_csv(out)["flag"].to_numpy()[15000:]))
    assert auc > 0.97, auc  # 0.982 measured; 0.83 before this issue (86% of the rows flagged)
    assert flagged < 0.08, flagged  # 5.2% measured; 11.3% with score version 2


SKAB = SHARED_DATA / "skab-dev" / "valve1"


@pytest.mark.slow
@pytest.mark.skipif(not SKAB.is_dir(), reason=f"SKAB's valve1 experiments are not at {SKAB} (../shared/data)")
def test_skab_valve1_meets_the_development_floors_with_the_cli_defaults(tmp_path):
    """The benchmark's protocol: each file trained on its first 400 rows (labels hidden), scored whole,
    flags of rows 400 onward pooled over the 16 files: F1 >= 0.80 with at most 10% false alarms and
    25% missed rows (the leaderboard's best, Conv-AE: 0.755, 14.4%, 31.8%)."""
    tp = fp = fn = tn = 0
    for path in sorted(SKAB.glob("*.csv")):
        truth = pd.read_csv(path, sep=";")["anomaly"].to_numpy().astype(bool)[400:]
        model, out = tmp_path / f"m{path.stem}", tmp_path / f"s{path.stem}.csv"
        assert main(["train", str(path), "--out", str(model), "--train-rows", "400",
                     "--drop", "anomaly", "changepoint"]) == 0
        assert main(["score", str(path), "--model", str(model), "--out", str(out)]) == 0
        flags = pd.read_csv(out)["flag"].to_numpy().astype(bool)[400:]
        tp, fp = tp + np.sum(flags & truth), fp + np.sum(flags & ~truth)
        fn, tn = fn + np.sum(~flags & truth), tn + np.sum(~flags & ~truth)
    f1, far, mar = tp / (tp + (fn + fp) / 2), fp / (fp + tn), fn / (fn + tp)
    # measured (seeds 0, 1, 2 of the API): 0.824 / 9.1% / 24.5%, 0.824 / 9.4% / 24.2%, 0.823 / 8.7% / 24.8%
    assert f1 >= 0.80 and far <= 0.10 and mar <= 0.25, (f1, far, mar)


@pytest.mark.slow
def test_the_pump_trained_on_its_first_quarter_keeps_later_normal_rows_quiet_and_finds_the_faults():
    """24 hours of the pump generator, trained on the first 6 (labels hidden): at most 2% of the later
    normal rows flagged and at least 80% of the fault events detected."""
    from aeviz_core import make_pump_station
    from aeviz_core.events import event_spans

    frame = make_pump_station(n_rows=86_400, seed=0)
    X = frame.iloc[:, 1:8].astype(float).set_index(frame["time"])
    truth = frame["anomaly"].to_numpy().astype(bool)
    det = AutoencoderDetector(window=32, stride=4, random_state=0).fit(X.iloc[:21_600])
    flags = det.anomaly_score(X) > det.threshold_
    later = np.arange(len(X)) >= 21_600
    far = float(np.mean(flags[later & ~truth]))
    found = float(np.mean([flags[a : b + 1].any() for a, b in event_spans(truth)]))
    assert far <= 0.02 and found >= 0.80, (far, found)  # 0.5% and 94% measured