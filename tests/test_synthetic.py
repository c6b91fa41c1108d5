"""The synthetic pump station: coupling, labels, fault sizes, determinism, shipped file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeviz_core import load_sensor_table, make_pump_station
from aeviz_core.synthetic import CHANNELS, FAULT_KINDS, fault_events

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
NORMAL_ROWS = 21600  # the default: half of 43,200


@pytest.fixture(scope="session")
def station() -> pd.DataFrame:
    """The default recording, exactly as shipped (12 h at 1 Hz, seed 0)."""
    return make_pump_station()


@pytest.fixture(scope="session")
def events(station) -> pd.DataFrame:
    return fault_events(station)


@pytest.fixture(scope="session")
def normal(station) -> pd.DataFrame:
    return station.iloc[:NORMAL_ROWS]


def test_columns_and_sampling(station):
    assert station.columns.tolist() == (
        ["time", *CHANNELS, "anomaly", "fault_type", "fault_channel"]
    )
    assert len(CHANNELS) >= 7 and len(station) == 43200
    assert station["time"].iloc[0] == pd.Timestamp("2026-01-05 00:00:00")
    assert (station["time"].diff().iloc[1:] == pd.Timedelta(seconds=1)).all()
    assert station[list(CHANNELS)].dtypes.eq(np.float64).all()
    assert np.isfinite(station[list(CHANNELS)].to_numpy()).all()


def test_channels_are_physically_coupled(normal):
    corr = normal[list(CHANNELS)].corr()
    assert corr.loc["flow", "motor_current"] > 0.5
    assert corr.loc["flow", "pressure"] > 0.5
    assert corr.loc["vibration_de", "vibration_nde"] > 0.5
    assert corr.loc["motor_current", "voltage"] < 0  # current sags the mains
    # bearing temperature follows current with a lag of minutes
    lagged = normal["motor_current"].rolling(900, min_periods=1).mean()
    assert np.corrcoef(lagged, normal["bearing_temp"])[0, 1] > np.corrcoef(
        normal["motor_current"], normal["bearing_temp"])[0, 1]
    # plausible ranges
    assert normal["voltage"].between(390, 410).all()
    assert normal["flow"].between(20, 250).all()


def test_normal_period_has_no_anomalies(station, events):
    assert station["anomaly"].iloc[:NORMAL_ROWS].sum() == 0
    assert events["start"].min() >= NORMAL_ROWS
    custom = make_pump_station(n_rows=3600, normal_rows=3000, seed=5)
    assert custom["anomaly"].iloc[:3000].sum() == 0 and custom["anomaly"].sum() > 0


def test_every_fault_kind_is_present_and_spread(events):
    counts = events["fault_type"].value_counts()
    assert set(counts.index) == set(FAULT_KINDS)
    assert (counts >= 6).all()
    for kind in ("spike", "drift", "stuck", "noise"):
        assert events.loc[events["fault_type"] == kind, "fault_channel"].nunique() >= 5
    relation = events[events["fault_type"] == "relation"]
    assert (relation["fault_channel"] == "motor_current").all()
    # non-overlapping and separated by normal rows
    ordered = events.sort_values("start")
    assert (ordered["start"].to_numpy()[1:] > ordered["stop"].to_numpy()[:-1]).all()


def test_labels_are_consistent(station):
    anomalous = station["anomaly"].to_numpy() == 1
    assert set(np.unique(station["anomaly"])) == {0, 1}
    assert ((station["fault_type"] != "").to_numpy() == anomalous).all()
    assert ((station["fault_channel"] != "").to_numpy() == anomalous).all()
    assert set(station.loc[anomalous, "fault_type"]) <= set(FAULT_KINDS)
    assert set(station.loc[anomalous, "fault_channel"]) <= set(CHANNELS)


def _local_sigma(normal: pd.DataFrame, channel: str) -> float:
    x = normal[channel]
    return float((x - x.rolling(600, center=True, min_periods=1).median()).std())


def test_faults_are_detectable_but_not_absurd(station, normal, events):
    for event in events.itertuples():
        x = station[event.fault_channel].to_numpy()
        sigma = _local_sigma(normal, event.fault_channel)
        span = x[event.start:event.stop]
        before = x[event.start - 30:event.start]
        if event.fault_type == "stuck":
            assert np.ptp(span) == 0 and 120 <= event.duration <= 480
        elif event.fault_type == "spike":
            jump = np.max(np.abs(span - np.median(before))) / sigma
            assert 2 < jump < 12 and event.duration <= 5
        elif event.fault_type == "noise":
            ratio = np.std(np.diff(span)) / np.std(np.diff(before))
            assert 1.5 < ratio < 8
        # every fault stays inside a physically possible range
        assert np.isfinite(span).all()
        assert abs(np.median(span) - np.median(normal[event.fault_channel])) < 12 * normal[
            event.fault_channel].std()


def test_relation_faults_break_the_current_flow_relation(station, normal, events):
    def design(frame):
        power = frame["flow"] * frame["pressure"]
        return np.column_stack([np.ones(len(frame)), power, frame["voltage"]])

    coef, *_ = np.linalg.lstsq(design(normal), normal["motor_current"], rcond=None)
    residual = station["motor_current"] - design(station) @ coef
    spread = residual.iloc[:NORMAL_ROWS].std()
    for event in events[events["fault_type"] == "relation"].itertuples():
        # current rises beyond what flow x pressure explains
        late = residual.iloc[event.stop - event.duration // 3:event.stop]
        assert late.mean() > 3 * spread


def test_generator_is_deterministic_for_a_seed(station):
    small = make_pump_station(n_rows=2000, seed=7)
    pd.testing.assert_frame_equal(small, make_pump_station(n_rows=2000, seed=7))
    assert not small.equals(make_pump_station(n_rows=2000, seed=8))
    assert station["flow"].iloc[:2000].equals(make_pump_station(n_rows=43200)["flow"].iloc[:2000])


def test_short_recordings_still_get_every_kind():
    frame = make_pump_station(n_rows=1200, seed=2)
    counts = fault_events(frame)["fault_type"].value_counts()
    assert set(counts.index) == set(FAULT_KINDS) and (counts == 7).all()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"n_rows": 100}, r"n_rows must be an integer >= 600, got 100"),
     ({"n_rows": 1000, "normal_rows": 900}, r"normal_rows must be .*\[60, 856\], got 900")],
)
def test_parameters_are_validated(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_pump_station(**kwargs)


def test_shipped_csv_matches_a_fresh_generation(station):
    path = SAMPLE / "pump_station.csv"
    assert path.stat().st_size < 5_000_000
    shipped = pd.read_csv(path, parse_dates=["time"], keep_default_na=False)
    assert shipped.columns.tolist() == station.columns.tolist()
    np.testing.assert_allclose(
        shipped[list(CHANNELS)].to_numpy(), station[list(CHANNELS)].to_numpy(), rtol=0, atol=1e-9
    )
    assert (shipped["time"].to_numpy() == station["time"].to_numpy()).all()
    for column in ("anomaly", "fault_type", "fault_channel"):
        assert shipped[column].tolist() == station[column].tolist()
    loaded = load_sensor_table(path)
    assert loaded.channel_names == list(CHANNELS)
    assert loaded.labels["fault_type"].tolist() == station["fault_type"].tolist()


def test_the_script_rewrites_the_shipped_files_byte_for_byte(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", REPO / "scripts" / "make_sample_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path)]) == 0
    for name in ("pump_station.csv", "digits_uci_1797.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
