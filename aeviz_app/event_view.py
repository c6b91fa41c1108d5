"""One event, wherever it is shown (the Anomalies page's table, the Review desk's open event):
its blamed sensor and kind, the trust notes above the flags, the events table, and the detail
of one event: blame shares, actual against rebuilt around it, and where it sits in the latent
space."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from aeviz_core import charts
from aeviz_core.charts import minmax_downsample
from aeviz_core.events import event_key, order_events

from . import computed as C
from .session import Dataset


#: colours of the latent view around one event
ROLE_COLORS = {"normal": "#c3cad3", "flagged": "#f0a0a0", "this event": "#111111"}

#: events the review queue blames at most (highest first); the rest are blamed when opened
MAX_BLAMED = 50

#: events the Anomalies page's table blames at each threshold (it redraws at every move: the
#: threshold rerun stays well under a second at 100,000 rows); the others when selected
TABLE_BLAMED = 5


@st.cache_resource(show_spinner="Preparing the series for blame...", max_entries=2)
def _blame_context(_det, model_id: str, data_key: str, _X) -> dict:
    """:func:`aeviz_core.explain.prepared` per model and data (read only, shared), so a new
    threshold pays only for the events it has not blamed yet."""
    from aeviz_core.explain import prepared

    return prepared(_det, _X)


@st.cache_data(show_spinner="Finding the sensor to blame...", max_entries=4096)
def _span_blame(_det, model_id: str, data_key: str, _X, start: int, end: int) -> np.ndarray:
    """One event's blame, one cached entry per span (the tables' and the selected event's alike):
    moving the threshold re-blames only the events whose span changed."""
    from aeviz_core.explain import blame_events

    return blame_events(_det, _X, [(start, end)], prepared=_blame_context(_det, model_id, data_key, _X))[0]


def blamed_events(det, data_key: str, X, events: pd.DataFrame, names, limit: int = MAX_BLAMED) -> pd.DataFrame:
    """``events`` with ``blamed_channel`` and ``blame_share`` (:func:`aeviz_core.events.with_blame`):
    the detector's blame, the one answer to "which sensor" wherever an event is listed, for the
    ``limit`` highest events (the others stay empty until opened); each span's blame is computed
    once per model and data. ``kind`` and ``shift`` (:func:`aeviz_core.events.lasting_change`) say
    which events are lasting changes, on every event."""
    from aeviz_core.events import lasting_change, with_blame

    shares = np.full((len(events), len(names)), np.nan)
    if getattr(det, "input_kind_", None) == "series" and len(events):
        chosen = order_events(events).head(int(limit))
        where = {span: i for i, span in enumerate(zip(events["start"].astype(int), events["end"].astype(int)))}
        for a, b in zip(chosen["start"].astype(int), chosen["end"].astype(int), strict=True):
            shares[where[(a, b)]] = _span_blame(det, det.model_id_, data_key, X, a, b)
    out = with_blame(events, shares, names)
    values = np.asarray(X, dtype=np.float64) if getattr(det, "input_kind_", None) == "series" else None
    changes = [lasting_change(det, values, int(a), int(b), [str(c) for c in names]) if values is not None
               else ("transient", "") for a, b in zip(events["start"], events["end"], strict=True)]
    out["kind"] = [kind for kind, _ in changes]
    out["shift"] = [shift for _, shift in changes]
    return out


def event_blame(det, data_key: str, X, start: int, end: int, channel_errors) -> np.ndarray:
    """What each channel contributed to the event at rows ``start..end`` (inclusive): the
    detector's reconstruction-based blame (shares) for a series model, the summed channel
    errors otherwise."""
    if getattr(det, "input_kind_", None) == "series":
        return _span_blame(det, det.model_id_, data_key, X, int(start), int(end))
    return event_channel_errors(channel_errors, start, end)


@st.cache_data(show_spinner="Comparing the events...", max_entries=16)
def event_signatures(_det, model_id: str, data_key: str, _X, spans: tuple) -> pd.DataFrame:
    """:func:`aeviz_core.explain.event_signatures` of the events at ``spans`` (a tuple of
    (start, end)), once per model, data and event list."""
    from aeviz_core.explain import event_signatures as signatures

    return signatures(_det, _X, spans)


@st.cache_data(show_spinner=False, max_entries=32)
def _trust_notes(_det, model_id: str, data_key: str, threshold: float, _channels, _errors, _times) -> list[str]:
    from aeviz_core.trust import trust_notes

    return trust_notes(_det, _channels, _errors, times=_times)


def show_trust_notes(det, ds: Dataset, X, errors, *, headline: str | None = None) -> list[str]:
    """Say, above a page's figures, when its flags cannot be trusted (see :mod:`aeviz_core.trust`):
    far more flagged than the threshold promises, channels beyond their training range (which,
    from when, what to do), one event over most of the file. ``det`` carries the threshold in use.

    One box, the notes as a list; with ``headline`` (the page's "N of M rows flagged"), the verdict
    joins the headline (a count of flags, read alone, would say all clear), else the headline is
    shown as it is."""
    # sensor rows are checked channel by channel; images by the share flagged and the longest run only
    channels = np.empty((len(errors), 0)) if ds.is_images else X
    times = None if ds.is_images else ds.time
    notes = _trust_notes(det, det.model_id_, ds.key, float(det.threshold_), channels, errors, times)
    if not notes:
        if headline:
            st.markdown(headline)
        return notes
    listed = "\n".join(f"- {note[0].upper() + note[1:]}." for note in notes)
    lead = (f"{headline} **But these flags cannot be trusted here:**" if headline
            else "**Can these flags be trusted?** Not quite:")
    st.warning(f"{lead}\n{listed}", icon="⚠️")
    return notes


def events_for_display(events: pd.DataFrame) -> pd.DataFrame:
    """The events table in :func:`~aeviz_core.events.order_events` order, with readable columns.
    Each event is named by its identity, its span (:func:`~aeviz_core.events.event_key`, as in the
    CLI's events file and the review store), which a move of the threshold leaves alone unless
    it moves the event's first or last row."""
    cols = ["event_id", "kind", "peak_score", "start", "end", "n_rows", "start_time", "duration_s", "blamed_channel",
            "blame_share", "shift"]
    ordered = order_events(events)
    ordered = ordered.assign(event_id=[event_key(a, b) for a, b in zip(ordered["start"], ordered["end"], strict=True)])
    out = ordered[[c for c in cols if c in ordered.columns]].reset_index(drop=True)
    if "start_time" in out and out["start_time"].isna().all():
        out = out.drop(columns=["start_time", "duration_s"], errors="ignore")
    return out


def context_rows(start: int, end: int, n_rows: int, pad: int) -> np.ndarray:
    """Rows ``start - pad`` to ``end + pad`` (inclusive), clipped to the series.

    Examples
    --------
    >>> context_rows(5, 6, 10, 3).tolist()
    [2, 3, 4, 5, 6, 7, 8, 9]
    """
    if not 0 <= start <= end < n_rows:
        raise ValueError(f"an event needs 0 <= start <= end < n_rows ({n_rows}), got {start}..{end}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    return np.arange(max(0, start - pad), min(n_rows, end + pad + 1))


def event_channel_errors(channel_errors, start: int, end: int) -> np.ndarray:
    """Each channel's error summed over the event's rows (NaN as 0): what each
    sensor contributed. Shape ``(n_channels,)``, higher = more to blame."""
    E = np.asarray(channel_errors, dtype=np.float64)
    if E.ndim != 2:
        raise ValueError(f"channel_errors must have shape (n_rows, n_channels), got {E.shape}")
    return np.nansum(E[int(start): int(end) + 1], axis=0)


def event_overlay_frame(x, actual: pd.DataFrame, reconstruction, rows, *, channels=None,
                        x_name: str = "time", max_points: int = 600) -> pd.DataFrame:
    """Long ``[x_name, channel, kind, value]`` of the actual and reconstructed
    channels over ``rows``, for :func:`event_overlay_chart`.

    Parameters
    ----------
    x : array-like, shape (n_rows,)
        Timestamps or row numbers of the whole series.
    actual : DataFrame, shape (n_rows, n_channels)
    reconstruction : array-like, shape (n_rows, n_channels)
        In the data's units (``detector.reconstruct``).
    rows : array-like of int
        The rows to draw (:func:`context_rows`).
    channels : list of str, optional
        Which channels, in drawing order (default: all).
    max_points : int
        Per channel and kind at most (about): longer contexts are thinned with
        :func:`aeviz_core.charts.minmax_downsample`, on the actual and the
        reconstructed line alike, so no spike of either disappears.
    """
    rows = np.asarray(rows, dtype=np.int64)
    xs = np.asarray(x)
    recon = np.asarray(reconstruction)
    names = list(actual.columns) if channels is None else list(channels)
    parts = []
    for name in names:
        j = actual.columns.get_loc(name)
        a = actual[name].to_numpy()[rows]
        r = recon[rows, j]
        keep = np.union1d(minmax_downsample(a, max_points), minmax_downsample(r, max_points))
        picked = rows[keep]
        for kind, values in (("actual", a[keep]), ("reconstruction", r[keep])):
            parts.append(pd.DataFrame({x_name: xs[picked], "channel": str(name), "kind": kind,
                                       "value": values.astype(np.float64)}))
    if not parts:
        return pd.DataFrame(columns=[x_name, "channel", "kind", "value"])
    return pd.concat(parts, ignore_index=True)


def event_overlay_chart(frame: pd.DataFrame, span, *, x: str = "time", height: int = 60,
                        width: int = 600) -> alt.FacetChart:
    """One small chart per channel: actual (solid) and reconstruction (dashed),
    the event's rows shaded red; channels in the frame's order (named on the left),
    one shared x axis (under the last chart), each channel on its own y scale.

    One chart faceted by channel (:func:`aeviz_core.charts.by_channel`), not one
    chart per channel stacked: the page draws it on every rerun, and Altair built,
    copied and validated a spec per chart, 0.3 s for seven channels (0.1 s faceted).

    Parameters
    ----------
    frame : DataFrame
        From :func:`event_overlay_frame`.
    span : (x0, x1)
        The event's extent on the x axis (its first row to just after its last).
    """
    temporal = pd.api.types.is_datetime64_any_dtype(frame[x].dtype)
    xt = "T" if temporal else "Q"
    # the shade's ends as data: epoch milliseconds for times, as the frame's times reach the chart
    ends = [pd.Timestamp(v).value // 1_000_000 if temporal else float(v) for v in span]
    kind = "temporal" if temporal else "quantitative"
    shade = alt.Chart().mark_rect(color="#d62728", opacity=0.13).encode(
        x=alt.datum(ends[0], type=kind), x2=alt.datum(ends[1]),
    ).transform_filter("datum.kind == 'actual'").transform_aggregate(points="count()")  # one per channel
    lines = alt.Chart().mark_line(strokeWidth=1.3).encode(
        x=alt.X(f"{x}:{xt}", title=None),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(tickCount=3)),
        tooltip=[alt.Tooltip(f"{x}:{xt}"), "kind:N", alt.Tooltip("value:Q", format=".4g")],
        **charts.reconstruction_kinds(alt.Legend(orient="top")),
    )
    return charts.by_channel([shade, lines], frame, height=height, width=width)


def latent_event_frame(coords, starts, window: int | None, row_flags, start: int, end: int) -> pd.DataFrame:
    """The latent points with their role for one event: ``x, y, row, role``.

    Parameters
    ----------
    coords : array-like, shape (n_points, 2)
        2-D latent coordinates (the latent itself, or a projection of it).
    starts : array-like of int, shape (n_points,)
        Each point's first row (``detector.latent_starts``; the row itself
        for a model without windows).
    window : int or None
        Rows per point (None: one).
    row_flags : array-like of bool, shape (n_rows,)
        Flagged rows.
    start, end : int
        The event's rows (inclusive).

    Returns
    -------
    frame : DataFrame
        ``role`` is ``"this event"`` for the points whose rows overlap the
        event, ``"flagged"`` for other points holding a flagged row,
        ``"normal"`` otherwise.
    """
    coords = np.asarray(coords, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    if coords.ndim != 2 or coords.shape[1] < 2 or len(coords) != len(starts):
        raise ValueError(f"coords must have shape ({len(starts)}, 2), got {coords.shape}")
    w = int(window or 1)
    flags = np.asarray(row_flags, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(flags)])
    last = np.minimum(starts + w, flags.size)
    any_flag = (csum[last] - csum[np.minimum(starts, flags.size)]) > 0
    mine = (starts <= end) & (starts + w - 1 >= start)
    role = np.where(mine, "this event", np.where(any_flag, "flagged", "normal"))
    return pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "row": starts, "role": role})


def latent_event_chart(frame: pd.DataFrame, *, height: int = 260, title: str | None = None) -> alt.LayerChart:
    """The latent scatter with the open event's points drawn large and dark on
    top of the flagged (pink) and normal (grey) ones."""
    domain = list(ROLE_COLORS)
    color = alt.Color("role:N", title=None, scale=alt.Scale(domain=domain, range=list(ROLE_COLORS.values())),
                      legend=alt.Legend(orient="bottom"))
    enc = {"x": alt.X("x:Q", title=None, scale=alt.Scale(zero=False)),
           "y": alt.Y("y:Q", title=None, scale=alt.Scale(zero=False)),
           "color": color, "tooltip": ["row:Q", "role:N"]}
    rest = alt.Chart(frame[frame["role"] != "this event"]).mark_circle(size=14, opacity=0.7).encode(**enc)
    mine = alt.Chart(frame[frame["role"] == "this event"]).mark_point(
        size=70, filled=True, stroke="white", strokeWidth=0.8, opacity=1).encode(**enc)
    chart = alt.layer(rest, mine).properties(height=height)
    return chart.properties(title=title) if title else chart



#: how the blame is read, under its chart
BLAME_HELP = ("Each channel in turn is replaced by the model's reconstruction over the event; its share is how "
              "much of the event's error that removes. A sensor that stops moving is named by its stillness.")
#: channels drawn around an event, most to blame first
DRAWN = 8


def show_event(det, ds: Dataset, X, parts, flags, start: int, end: int, *, key: str) -> np.ndarray:
    """The detail of the event at rows ``start..end``, the same on the Anomalies and Review pages:
    the channels most to blame around it (actual and rebuilt, its rows shaded), the blame shares,
    and where its windows sit in the latent space among the normal and flagged ones. ``parts``
    are the rows' channel scores, ``flags`` the rows flagged at the threshold in use; widget
    keys start with ``key``. Returns the blame shares (one per channel)."""
    share = event_blame(det, ds.key, X, start, end, parts)
    order = np.argsort(-share)
    x_name = "time" if ds.time is not None else "row"
    x = ds.time.to_numpy() if ds.time is not None else np.arange(ds.n_items)
    pad = max(2 * int(det.window or 0), (end - start + 1) // 2, 30)
    rows = context_rows(start, end, ds.n_items, pad)
    recon = C.reconstruction(det, det.model_id_, ds.key, X)
    drawn = [ds.channel_names[j] for j in order[:DRAWN]]
    frame = event_overlay_frame(x, ds.sensor.channels, recon, rows, channels=drawn, x_name=x_name)
    st.caption(f"The {'channels' if len(drawn) == len(order) else f'{len(drawn)} channels that contributed most'}"
               " around the event, most to blame first: actual (solid) and reconstruction (dashed); "
               "the event's rows shaded.")
    st.altair_chart(event_overlay_chart(frame, (x[start], x[min(end + 1, ds.n_items - 1)]), x=x_name),
                    key=f"{key}.overlay")
    left, right = st.columns(2)
    series = getattr(det, "input_kind_", None) == "series"
    left.altair_chart(charts.contributions_chart(ds.channel_names, share, title="Which sensor to blame",
                                                 axis_title="share of the blame" if series
                                                 else "share of the event's error"), key=f"{key}.contrib")
    if series:
        left.caption(BLAME_HELP)
    Z = C.latent(det, det.model_id_, ds.key, X)
    coded = np.isfinite(Z).all(axis=1)  # a window that touches a gap has no code
    Z = Z[coded]
    if len(Z) < 2:
        return share
    coords = Z[:, :2] if Z.shape[1] == 2 else C.projection(Z, f"{det.model_id_}:{ds.key}:coded", "pca", 2)
    starts = (det.latent_starts(ds.n_items) if det.window else np.arange(len(coded)))[coded]
    points = latent_event_frame(coords, starts, det.window, flags, start, end)
    points = charts.display_sample(points, 3000, keep_mask=(points["role"] != "normal").to_numpy())
    right.altair_chart(latent_event_chart(points, title="Latent space" + ("" if Z.shape[1] == 2 else " (PCA)")),
                       key=f"{key}.latent")
    return share
