"""Real files go in: gaps, slow drift beyond the training range, and warnings when flags cannot
be trusted (issue: detection that holds on real sensor data)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aeviz_core import AutoencoderDetector, DataError, load_sensor_table
from aeviz_core.cli import main
from aeviz_core.trust import trust_notes

GECCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "gecco2018" / "1_gecco2018_water_quality.csv"


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
    absolute = AutoencoderDetector(window=16, stride=2, latent_dim=4, epochs=25, random_state=0,
                                   level="absolute").fit(X.iloc[:2000])
    # without the level taken out, only the residual's running reference (score version 3) settles
    # the drift, after flagging its first stretch
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
    assert roc_auc_score(truth[2000:], scores[2000:]) > 0.95
    flags = scores > det.threshold_
    for start, stop in ((3000, 3101), (4000, 4101), (5000, 5006)):
        assert flags[start:stop].mean() > 0.5, (start, flags[start:stop].mean())


def test_a_lasting_new_regime_is_flagged_at_its_start_then_settles(drifted):
    """After the training period the current's noise grows fivefold for good (a pump swapped, a
    line re-routed): the start of the new regime is flagged, then it becomes the channel's own
    reference, while a 60-row broken relation inside it is still found."""
    X, det = drifted
    span = det._series_score().span
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
    assert any("'temp' left the range of its training rows" in n and "from row 2" in n for n in notes), notes
    other = X * 3.0 + 5.0  # another regime: every channel elsewhere
    scores = det.anomaly_score(other)
    notes = trust_notes(det, other, scores)
    assert any("far above" in n for n in notes) and sum("left the range" in n for n in notes) == 4, notes
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
    """The shared protocol with ``aeviz train`` / ``aeviz score`` defaults (rows a minute apart:
    the regime score): average precision and F1 at the model's own threshold at least 0.60, with
    at most 1% of the normal rows flagged, ahead of windowed PCA (AP 0.50, F1 0.51 at 1.07%)."""
    from sklearn.metrics import average_precision_score

    model, out = tmp_path / "m", tmp_path / "s.csv"
    assert main(["train", str(GECCO), "--out", str(model), "--train-rows", "15000", "--label-col", "EVENT"]) == 0
    assert main(["score", str(GECCO), "--model", str(model), "--out", str(out)]) == 0
    from aeviz_core import load_detector

    assert load_detector(model).series_score == "regime"
    data = load_sensor_table(GECCO, label_cols=["EVENT"])
    truth = data.labels["EVENT"].astype(bool).to_numpy()[15000:]
    frame = pd.read_csv(out).iloc[15000:]
    scores, flags = frame["score"].to_numpy(), frame["flag"].to_numpy().astype(bool)
    scored = ~np.isnan(scores)
    ap = average_precision_score(truth[scored], scores[scored])
    f1 = 2 * np.sum(flags & truth) / (np.sum(flags) + np.sum(truth))
    far = np.mean(flags[~truth])
    # measured: AP 0.666, F1 0.647 at 0.78% (seed 1: 0.636, 0.614 at 0.88%); --score smooth: 0.423, 0.396 at 3.91%
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
