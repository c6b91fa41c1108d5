"""Seeded synthetic pump-station recording with labelled faults.

A variable-speed pump fills a network whose demand follows slow cycles. The
seven channels are physically coupled through hidden variables (demand, pump
speed, hydraulic power):

============== ====== ====================================================
channel        unit   model
============== ====== ====================================================
flow           m3/h   demand: slow cycles + wandering + turbulence
pressure       bar    pump curve: ``a * speed**2 - b * flow**2``
motor_current  A      no-load current + electrical power / (sqrt(3) V pf),
                      electrical power = flow * pressure / efficiency
voltage        V      mains ~400 V, slow wander; sags as current rises
vibration_de   mm/s   drive-end RMS, grows with speed**2 and flow
vibration_nde  mm/s   non-drive-end RMS, follows drive end at ~60 %
bearing_temp   degC   first-order lag (15 min) of a current-driven level
============== ====== ====================================================

The first ``normal_rows`` rows are normal (for training). The rest carries
labelled faults at random non-overlapping spans, seven of each kind:

``spike``     a few seconds offset by 4-8 sigma
``drift``     linear ramp reaching 3-5 sigma over 3-8 minutes, then back
``stuck``     the sensor repeats its last value for 2-8 minutes
``noise``     noise 3-5 times the sensor noise for 1-3 minutes
``relation``  motor current climbs 4-8 sigma over 3-7 minutes while flow and
              pressure do not (friction, a failing bearing); its
              ``fault_channel`` is motor_current

Sensor faults (the first four) each hit every channel once, in random order.
"sigma" is a channel's local variability: the standard deviation of its
deviation from a 10-minute rolling median over the normal period.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = ["CHANNELS", "FAULT_KINDS", "fault_events", "fault_types_of", "make_pump_station"]

#: Channel columns, in output order.
CHANNELS = (
    "flow", "pressure", "motor_current", "voltage",
    "vibration_de", "vibration_nde", "bearing_temp",
)
#: Fault kinds, as written in ``fault_type``.
FAULT_KINDS = ("spike", "drift", "stuck", "noise", "relation")

_EVENTS_PER_KIND = 7
# (shortest, longest) duration of each fault kind, seconds (= rows at 1 Hz)
_DURATION_S = {
    "spike": (1, 5), "drift": (180, 480), "stuck": (120, 480),
    "noise": (60, 180), "relation": (180, 420),
}
_MIN_SEPARATION_S = 60  # normal rows kept between two faults
_DECIMALS = {
    "flow": 2, "pressure": 3, "motor_current": 2, "voltage": 1,
    "vibration_de": 3, "vibration_nde": 3, "bearing_temp": 2,
}
# white sensor noise (standard deviation, channel units)
_SENSOR_NOISE = {
    "flow": 0.6, "pressure": 0.015, "motor_current": 0.15, "voltage": 0.4,
    "vibration_de": 0.05, "vibration_nde": 0.04, "bearing_temp": 0.05,
}


def _wander(rng: np.random.Generator, n: int, tau: float, std: float) -> np.ndarray:
    """Stationary AR(1) noise with time constant ``tau`` samples and given std."""
    a = np.exp(-1.0 / tau)
    burn = int(5 * tau)
    shocks = rng.standard_normal(n + burn) * std * np.sqrt(1.0 - a * a)
    return lfilter([1.0], [1.0, -a], shocks)[burn:]


def _first_order_lag(target: np.ndarray, tau: float) -> np.ndarray:
    """``y[k] = y[k-1] + (target[k] - y[k-1]) / tau``, starting at ``target[0]``."""
    a = 1.0 - 1.0 / tau
    return lfilter([1.0 / tau], [1.0, -a], target, zi=[a * target[0]])[0]


def _normal_signals(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Physically coupled measured channels (with sensor noise) for ``n`` seconds."""
    t = np.arange(n, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi, size=4)
    demand = (
        112.0
        + 24.0 * np.sin(2 * np.pi * t / 21600 + phase[0])
        + 8.0 * np.sin(2 * np.pi * t / 5400 + phase[1])
        + _wander(rng, n, 600, 5.0)
    )
    flow = np.clip(demand + _wander(rng, n, 15, 1.2), 20.0, None)
    speed = _first_order_lag(0.52 + 0.0030 * np.clip(demand, 20.0, None), 8)  # fraction of rated
    pressure = 6.2 * speed**2 - 0.000075 * flow**2 + _wander(rng, n, 30, 0.02)
    mains = (
        400.0 + 1.5 * np.sin(2 * np.pi * t / 7200 + phase[2]) + _wander(rng, n, 120, 0.8)
    )
    hydraulic_kw = flow * pressure / 36.0  # m3/h * bar -> kW
    electrical_kw = hydraulic_kw / (0.72 * 0.92)  # pump x motor efficiency
    current = 5.0 + electrical_kw * 1000.0 / (np.sqrt(3.0) * mains * 0.86)
    voltage = mains - 0.04 * (current - 30.0)
    vib_de = 0.8 + 2.2 * speed**2 + 0.004 * flow + _wander(rng, n, 60, 0.08)
    vib_nde = 0.2 + 0.6 * vib_de + _wander(rng, n, 60, 0.05)
    ambient = 22.0 + 2.0 * np.sin(2 * np.pi * t / 43200 + phase[3])
    bearing = _first_order_lag(ambient + 8.0 + 0.55 * current, 900)
    truth = {
        "flow": flow, "pressure": pressure, "motor_current": current,
        "voltage": voltage, "vibration_de": vib_de, "vibration_nde": vib_nde,
        "bearing_temp": bearing,
    }
    return {
        name: truth[name] + rng.standard_normal(n) * _SENSOR_NOISE[name] for name in CHANNELS
    }


def _local_sigma(values: np.ndarray) -> float:
    """Std of the deviation from a 10-minute rolling median."""
    series = pd.Series(values)
    baseline = series.rolling(600, center=True, min_periods=1).median()
    return float((series - baseline).std())


def _place_events(
    rng: np.random.Generator, first: int, stop: int
) -> list[tuple[str, int, int]]:
    """Random non-overlapping (kind, start, stop) spans inside ``[first, stop)``."""
    kinds = rng.permutation(np.repeat(FAULT_KINDS, _EVENTS_PER_KIND))
    durations = np.array(
        [rng.integers(_DURATION_S[k][0], _DURATION_S[k][1] + 1) for k in kinds], dtype=float
    )
    length = stop - first
    separation = min(_MIN_SEPARATION_S, length // (4 * (len(kinds) + 1)))
    budget = 0.5 * length  # faults fill at most half of the fault period
    if durations.sum() > budget:
        durations *= budget / durations.sum()
    durations = np.maximum(1, np.floor(durations)).astype(np.int64)
    free = length - durations.sum() - (len(kinds) + 1) * separation
    spaces = np.floor(rng.dirichlet(np.ones(len(kinds) + 1)) * free).astype(np.int64)
    spaces += separation
    events = []
    position = first
    for kind, duration, space in zip(kinds, durations, spaces):
        position += space
        events.append((str(kind), int(position), int(position + duration)))
        position += duration
    return events


def make_pump_station(
    n_rows: int = 43200,
    normal_rows: int | None = None,
    seed: int = 0,
    start: str = "2026-01-05 00:00:00",
) -> pd.DataFrame:
    """A synthetic 1 Hz pump-station recording with labelled faults.

    Parameters
    ----------
    n_rows : int
        Number of seconds (rows), >= 600. The default is 12 hours.
    normal_rows : int, optional
        Length of the fault-free period at the start; default ``n_rows // 2``.
        At least 144 rows must remain for the faults.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same
        frame.
    start : str
        Timestamp of the first row.

    Returns
    -------
    pandas.DataFrame
        Columns ``time`` (datetime64, 1 s apart), the channels in
        :data:`CHANNELS` (rounded to sensor resolution), ``anomaly`` (int 0/1),
        ``fault_type`` (one of :data:`FAULT_KINDS`, ``""`` on normal rows) and
        ``fault_channel`` (``""`` on normal rows). 35 faults, 7 of each kind.

    Examples
    --------
    >>> frame = make_pump_station(n_rows=3600, seed=1)
    >>> sorted(fault_events(frame)["fault_type"].value_counts().to_dict().items())
    [('drift', 7), ('noise', 7), ('relation', 7), ('spike', 7), ('stuck', 7)]
    """
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 600:
        raise ValueError(f"n_rows must be an integer >= 600, got {n_rows!r}")
    if normal_rows is None:
        normal_rows = n_rows // 2
    if not isinstance(normal_rows, (int, np.integer)) or not 60 <= normal_rows <= n_rows - 144:
        raise ValueError(
            f"normal_rows must be an integer in [60, n_rows - 144] = [60, {n_rows - 144}], "
            f"got {normal_rows!r}"
        )
    rng = np.random.default_rng(seed)
    n = int(n_rows)
    measured = _normal_signals(rng, n)
    sigma = {name: _local_sigma(measured[name][:normal_rows]) for name in CHANNELS}

    anomaly = np.zeros(n, dtype=np.int64)
    fault_type = np.full(n, "", dtype=object)
    fault_channel = np.full(n, "", dtype=object)
    targets = {
        kind: iter(np.tile(rng.permutation(CHANNELS), _EVENTS_PER_KIND))
        for kind in FAULT_KINDS if kind != "relation"
    }
    for kind, a, b in _place_events(rng, int(normal_rows), n):
        channel = "motor_current" if kind == "relation" else str(next(targets[kind]))
        x = measured[channel]
        length = b - a
        if kind == "spike":
            x[a:b] += rng.choice((-1.0, 1.0)) * rng.uniform(4, 8) * sigma[channel]
        elif kind == "drift":
            reach = rng.choice((-1.0, 1.0)) * rng.uniform(3, 5) * sigma[channel]
            x[a:b] += np.linspace(reach / length, reach, length)
        elif kind == "stuck":
            x[a:b] = x[a - 1]
        elif kind == "noise":
            factor = rng.uniform(3, 5)
            x[a:b] += rng.standard_normal(length) * _SENSOR_NOISE[channel] * np.sqrt(factor**2 - 1)
        else:  # relation: extra load on the motor, flow and pressure unchanged
            rise = rng.uniform(4, 8) * sigma[channel]
            x[a:b] += rise * np.minimum(1.0, np.linspace(1.0 / length, 1.0 / 0.4, length))
        anomaly[a:b] = 1
        fault_type[a:b] = kind
        fault_channel[a:b] = channel

    frame = pd.DataFrame(
        {"time": pd.date_range(start=pd.Timestamp(start), periods=n, freq="s")}
    )
    for name in CHANNELS:
        frame[name] = np.round(measured[name], _DECIMALS[name])
    frame["anomaly"] = anomaly
    frame["fault_type"] = pd.Series(fault_type, dtype=str)
    frame["fault_channel"] = pd.Series(fault_channel, dtype=str)
    return frame


def fault_events(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled fault: contiguous runs of equal non-empty labels.

    Parameters
    ----------
    frame : pandas.DataFrame
        With ``fault_type`` and ``fault_channel`` columns (``""`` or missing
        on normal rows), as made by :func:`make_pump_station` or read back
        from its CSV.

    Returns
    -------
    pandas.DataFrame
        Columns ``start`` (first row), ``stop`` (one past the last row),
        ``fault_type``, ``fault_channel``, ``duration`` (rows).
    """
    kind = frame["fault_type"].fillna("").astype(str).to_numpy()
    channel = frame["fault_channel"].fillna("").astype(str).to_numpy()
    key = np.char.add(np.char.add(kind.astype(str), "|"), channel.astype(str))
    change = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1], [True])))
    rows = []
    for a, b in pairwise(change):
        if kind[a]:
            rows.append((int(a), int(b), kind[a], channel[a], int(b - a)))
    return pd.DataFrame(rows, columns=["start", "stop", "fault_type", "fault_channel", "duration"])


def fault_types_of(spans, faults: pd.DataFrame) -> list[str]:
    """The labelled fault type of each event (``spans``: first and last rows, inclusive): the
    type of the fault of :func:`fault_events` it overlaps most, ``"none"`` for a false event."""
    types = []
    for a, b in spans:
        overlap = np.minimum(faults["stop"] - 1, b) - np.maximum(faults["start"], a) + 1
        types.append(str(faults["fault_type"].iloc[int(overlap.argmax())]) if overlap.max() > 0 else "none")
    return types
