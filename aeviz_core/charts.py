"""Chart builders for the app: pure functions from arrays/frames to ``alt.Chart``.

Nothing here calls Streamlit, so every builder is unit tested without a
browser. Builders never draw more rows than they are given: large inputs are
thinned first with :func:`display_sample` (scatter: a random sample that keeps
every flagged point) or :func:`minmax_downsample` (lines: each bucket keeps its
minimum and maximum, so a one-row spike survives).

Selections: :func:`latent_scatter` declares two selection parameters, ``pick``
(a click, on the ``idx`` field) and ``box`` (a drag, on the x/y fields).
Streamlit returns a click as rows (``[{"idx": 5}]``) but a box as ranges
(``{"x": [lo, hi], "y": [lo, hi]}``); :func:`selected_indices` turns either
into the ``idx`` values of the points it covers.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "COLOR_BY",
    "FLAG_COLORS",
    "by_channel",
    "channels_chart",
    "color_legend",
    "contributions_chart",
    "display_sample",
    "error_histogram",
    "image_pairs",
    "label_spans",
    "latent_cloud",
    "latent_scatter",
    "long_series",
    "loss_chart",
    "minmax_downsample",
    "point_colors",
    "pr_chart",
    "reconstruction_kinds",
    "roc_chart",
    "score_timeline",
    "selected_indices",
    "tile_images",
    "window_overlay",
]

#: What a latent scatter can be coloured by -> the frame column it reads.
#: colour choices of a latent scatter -> the column they draw ("error" holds each point's anomaly
#: score: a window's mean over its rows, an item's reconstruction error)
COLOR_BY = {"class": "class", "reconstruction error": "error", "anomaly score": "error", "time": "time",
            "flag": "flag"}
FLAG_COLORS = {"normal": "#9aa5b1", "flagged": "#d62728"}
_ANOMALY_FILL = "#f5a623"
_CATEGORY_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31"] * 4


# --------------------------------------------------------------------------- thinning


def display_sample(frame: pd.DataFrame, max_points: int, keep_mask=None, seed=0) -> pd.DataFrame:
    """At most ``max_points`` rows of ``frame`` for a scatter, keeping every ``keep_mask`` row.

    Parameters
    ----------
    frame : DataFrame
        One row per point.
    max_points : int
        Rows to return at most (``>= 1``), unless ``keep_mask`` alone holds
        more: rows to keep are never dropped.
    keep_mask : array-like of bool, shape (len(frame),), optional
        Rows always kept (e.g. flagged points, the selection).
    seed : int, default 0
        The uniform sample of the other rows is repeatable.

    Returns
    -------
    sample : DataFrame
        Rows of ``frame`` in their original order with their original index;
        ``frame`` itself when it has ``<= max_points`` rows.

    Examples
    --------
    >>> f = pd.DataFrame({"v": range(10)})
    >>> display_sample(f, 3, keep_mask=f.v >= 9)["v"].tolist()[-1]
    9
    """
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}")
    n = len(frame)
    if n <= max_points:
        return frame
    keep = np.zeros(n, dtype=bool) if keep_mask is None else np.asarray(keep_mask, dtype=bool)
    if keep.shape != (n,):
        raise ValueError(f"keep_mask must have one value per row ({n}), got shape {keep.shape}")
    kept = np.flatnonzero(keep)
    room = max(int(max_points) - kept.size, 0)
    others = np.flatnonzero(~keep)
    if room and others.size:
        rng = np.random.default_rng(seed)
        pick = rng.choice(others.size, size=min(room, others.size), replace=False)
        rows = np.sort(np.concatenate([kept, others[pick]]))
    else:
        rows = kept
    return frame.iloc[rows]


def minmax_downsample(values, max_points: int) -> np.ndarray:
    """Row indices that keep a line's shape: per bucket, its first, min and max rows.

    Parameters
    ----------
    values : array-like, shape (n,)
    max_points : int
        About how many rows to return (``>= 3``); all rows when ``n`` is smaller.

    Returns
    -------
    rows : ndarray of int, sorted, unique
        Always holds the global minimum and maximum, so no spike disappears.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 3)
    size = math.ceil(n / buckets)
    pad = buckets * size - n
    filled = np.concatenate([v, np.full(pad, np.nan)]).reshape(buckets, size)
    starts = np.arange(buckets) * size
    safe_min = np.where(np.isnan(filled), np.inf, filled)
    safe_max = np.where(np.isnan(filled), -np.inf, filled)
    rows = np.concatenate([starts, starts + safe_min.argmin(axis=1), starts + safe_max.argmax(axis=1), [n - 1]])
    return np.unique(rows[rows < n])


def long_series(x, frame: pd.DataFrame, max_points: int = 1500, x_name: str = "time") -> pd.DataFrame:
    """Channels as a long frame ``[x_name, channel, value]``, each min/max-downsampled.

    Parameters
    ----------
    x : array-like, shape (n,)
        The x axis (timestamps or row numbers).
    frame : DataFrame, shape (n, n_channels)
    max_points : int
        Points per channel at most (about).
    """
    x = np.asarray(x)
    parts = []
    for name in frame.columns:
        v = frame[name].to_numpy()
        rows = minmax_downsample(v, max_points)
        parts.append(pd.DataFrame({x_name: x[rows], "channel": str(name), "value": v[rows]}))
    return pd.concat(parts, ignore_index=True)


def label_spans(flags, x) -> pd.DataFrame:
    """Runs of ``flags`` as ``[start, end]`` x values (to shade labelled anomalies).

    A run from row a to b spans ``x[a]`` to ``x[b + 1]`` (the last row's own
    interval), so a one-row spike still has a width.
    """
    f = np.asarray(flags, dtype=bool)
    x = np.asarray(x)
    if f.size != x.size:
        raise ValueError(f"flags and x must have the same length, got {f.size} and {x.size}")
    edges = np.diff(np.concatenate(([0], f.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # exclusive
    return pd.DataFrame({"start": x[starts], "end": x[np.minimum(ends, x.size - 1)],
                         "rows": ends - starts})


def _x_type(values) -> str:
    return "T" if pd.api.types.is_datetime64_any_dtype(np.asarray(values).dtype) else "Q"


# --------------------------------------------------------------------------- data page


def channels_chart(long: pd.DataFrame, spans: pd.DataFrame | None = None, *, x: str = "time",
                   height: int = 90, width: int = 620) -> alt.FacetChart:
    """One small line chart per channel (independent y, the channel named on the left), labelled
    anomalies shaded, one shared x axis.

    One chart faceted by channel (:func:`by_channel`): the spans ride in the same data (a facet
    has one source), once per channel, each part drawn by its own layer.

    Parameters
    ----------
    long : DataFrame
        ``[x, channel, value]``, e.g. from :func:`long_series`.
    spans : DataFrame, optional
        ``[start, end]`` x ranges to shade (:func:`label_spans`).
    """
    xt = _x_type(long[x]) if len(long) else "Q"
    line = alt.Chart().mark_line(strokeWidth=1).encode(
        x=alt.X(f"{x}:{xt}", title=None),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip(f"{x}:{xt}"), alt.Tooltip("value:Q", format=".4g")],
    )
    frame, layers = long, [line]
    if spans is not None and len(spans):
        shaded = pd.concat([spans[["start", "end"]].assign(channel=name) for name in pd.unique(long["channel"])],
                           ignore_index=True)
        frame = pd.concat([long.assign(part="line"), shaded.assign(part="span")], ignore_index=True)
        line = line.transform_filter("datum.part == 'line'")
        shade = alt.Chart().mark_rect(color=_ANOMALY_FILL, opacity=0.3).encode(
            x=alt.X(f"start:{xt}"), x2=alt.X2("end")).transform_filter("datum.part == 'span'")
        layers = [shade, line]
    return by_channel(layers, frame, height=height, width=width)


def by_channel(layers, frame: pd.DataFrame, *, height: int, width: int) -> alt.FacetChart:
    """``layers`` (charts without data) drawn over ``frame`` once per ``channel``, one row each in
    the frame's order, the channel named on the left, each on its own y scale and one shared x
    axis: one spec however many channels (a stack of charts costs Altair a spec each, on every
    rerun of the page that draws it)."""
    row = alt.Row("channel:N", sort=list(pd.unique(frame["channel"])), title=None,
                  header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=160))
    return (alt.layer(*layers, data=frame).properties(height=height, width=width)
            .facet(row=row, spacing=4).resolve_scale(y="independent"))


def reconstruction_kinds(legend=alt.Undefined) -> dict:
    """The ``color`` and ``strokeDash`` encodings of an actual (solid blue) and a reconstructed
    (dashed orange) line, by a ``kind`` column; ``legend`` places the colour's legend."""
    kinds = ["actual", "reconstruction"]
    return {"color": alt.Color("kind:N", title=None, legend=legend,
                               scale=alt.Scale(domain=kinds, range=["#1f77b4", "#ff7f0e"])),
            "strokeDash": alt.StrokeDash("kind:N", legend=None, scale=alt.Scale(domain=kinds, range=[[1, 0], [4, 2]]))}


def tile_images(images, ncols: int = 10, pad: int = 1) -> np.ndarray:
    """Images ``(n, h, w)`` as one grey image ``(rows*(h+pad)-pad, cols*(w+pad)-pad)`` in [0, 1].

    Each image is scaled by the largest value of all of them (so reconstructions
    sit on the same scale as originals); the padding is white.
    """
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ValueError(f"images must have shape (n, h, w), got {imgs.shape}")
    n, h, w = imgs.shape
    top = float(np.max(imgs)) if np.max(imgs) > 0 else 1.0
    imgs = np.clip(imgs / top, 0.0, 1.0)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    out = np.ones((nrows * (h + pad) - pad, ncols * (w + pad) - pad))
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = 1.0 - imgs[i]
    return out


def image_pairs(originals, reconstructions, ncols: int = 8, pad: int = 1) -> np.ndarray:
    """Originals and their reconstructions as a tile: a row of originals above
    a row of their reconstructions, repeated (both on the originals' scale)."""
    a = np.asarray(originals, dtype=np.float64)
    b = np.asarray(reconstructions, dtype=np.float64).reshape(a.shape)
    n = len(a)
    ncols = max(1, min(ncols, n))
    rows = []
    for start in range(0, n, ncols):
        chunk_a, chunk_b = a[start:start + ncols], b[start:start + ncols]
        if len(chunk_a) < ncols:  # pad the last line with blanks
            blank = np.zeros((ncols - len(chunk_a), *a.shape[1:]))
            chunk_a, chunk_b = np.concatenate([chunk_a, blank]), np.concatenate([chunk_b, blank])
        rows.extend([chunk_a, chunk_b])
    top = max(float(np.max(a)), 1e-12)
    return tile_images(np.clip(np.concatenate(rows), 0, None) / top, ncols=ncols, pad=pad)


# --------------------------------------------------------------------------- training


def loss_chart(history, *, height: int = 220) -> alt.Chart:
    """Loss per epoch (log scale): ``history`` is a dict of lists (``history_``)
    or a list of ``{"epoch", "loss", "val_loss"}`` dicts (live progress)."""
    if isinstance(history, dict):
        frame = pd.DataFrame({k: pd.Series(v, dtype=float) for k, v in history.items()
                              if k in ("loss", "val_loss", "reconstruction_loss", "kl_loss")})
        frame["epoch"] = np.arange(1, len(frame) + 1)
    else:
        frame = pd.DataFrame(list(history), columns=["epoch", "loss", "val_loss"])
    long = frame.melt("epoch", var_name="curve", value_name="value").dropna()
    long = long[long["value"] > 0]
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title="loss", scale=alt.Scale(type="log")),
        color=alt.Color("curve:N", title=None),
        tooltip=["epoch:Q", "curve:N", alt.Tooltip("value:Q", format=".4g")],
    ).properties(height=height)


# --------------------------------------------------------------------------- latent


def latent_scatter(frame: pd.DataFrame, color: str = "class", *, dims=("x", "y"),
                   tooltip=None, height: int = 420, width: int | None = None,
                   title: str | None = None, selectable: bool = True, point_size: int = 18):
    """The latent scatter, coloured by ``color``, with click and box selection.

    Parameters
    ----------
    frame : DataFrame
        ``idx`` plus the coordinate columns (``x``, ``y``, optionally ``z``)
        and the colour column (see ``COLOR_BY``).
    color : {"class", "error", "time", "flag"} or a column name
    dims : tuple of str
        Two columns for a plain scatter; three (``x, y, z``) draw the three
        axis pairs side by side, linked by one selection.
    tooltip : list of str, optional
        Columns shown on hover (default: idx, the colour, and row/time).
    selectable : bool
        Declare the ``pick`` (click) and ``box`` (drag) selections.

    Returns
    -------
    chart : alt.Chart or alt.HConcatChart
    """
    color_col = COLOR_BY.get(color, color)
    if color_col not in frame.columns:
        raise ValueError(f"color must be one of {sorted(COLOR_BY)} or a column of the frame, got {color!r}")
    enc_color = _color_encoding(frame, color_col)
    if tooltip is None:
        tooltip = [c for c in ("idx", "class", "error", "flag", "row", "time") if c in frame.columns]
    tips = [alt.Tooltip(f"{c}:{_tooltip_type(frame[c])}", format=".4g") if _tooltip_type(frame[c]) == "Q"
            else alt.Tooltip(f"{c}:{_tooltip_type(frame[c])}") for c in tooltip]
    pick = alt.selection_point(name="pick", fields=["idx"], on="click", clear="dblclick")
    box = alt.selection_interval(name="box", encodings=["x", "y"])
    pairs = [(dims[0], dims[1])] if len(dims) == 2 else [(dims[0], dims[1]), (dims[0], dims[2]),
                                                         (dims[1], dims[2])]
    base = alt.Chart(frame)
    views = []
    for a, b in pairs:
        view = base.mark_circle(size=point_size).encode(
            x=alt.X(f"{a}:Q", title=f"latent {a}" if len(dims) == 3 else a, scale=alt.Scale(zero=False)),
            y=alt.Y(f"{b}:Q", title=f"latent {b}" if len(dims) == 3 else b, scale=alt.Scale(zero=False)),
            color=enc_color,
            opacity=alt.condition(box, alt.value(0.85), alt.value(0.25)) if selectable else alt.value(0.8),
            tooltip=tips,
        )
        if selectable:
            view = view.add_params(pick, box)
        w = width or (230 if len(pairs) > 1 else None)
        props = {"height": height if len(pairs) == 1 else 230}
        if w:
            props["width"] = w
        views.append(view.properties(**props))
    if len(views) == 1:
        chart = views[0]
    else:
        import warnings

        with warnings.catch_warnings():  # one selection shared by the three views is the intent
            warnings.filterwarnings("ignore", message=".*deduplicated selection parameter.*")
            chart = alt.hconcat(*views)
    if title:
        chart = chart.properties(title=title)
    return chart


def point_colors(series: pd.Series, column: str | None = None) -> np.ndarray:
    """RGB (uint8, shape (n, 3)) per point for a WebGL view, matching the Altair
    scatter's colours: flags red/grey, "normal" grey and classes in the category
    palette, numbers and times on a dark-blue-to-yellow ramp (errors on a log scale)."""
    column = column or series.name

    def rgb(hexes):
        return np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in hexes], dtype=np.uint8)

    kind = _tooltip_type(series)
    if column == "flag" or kind == "N":
        values = series.astype(str).to_numpy()
        if column == "flag":
            lookup = dict(FLAG_COLORS)
        else:
            others = sorted(set(values) - {"normal"})
            lookup = {"normal": FLAG_COLORS["normal"], **dict(zip(others, _CATEGORY_COLORS, strict=False))}
        table = {k: rgb([v])[0] for k, v in lookup.items()}
        return np.stack([table.get(v, rgb([FLAG_COLORS["normal"]])[0]) for v in values]) if len(values) else \
            np.zeros((0, 3), np.uint8)
    x = series.to_numpy()
    x = x.astype("datetime64[ns]").astype(np.int64).astype(np.float64) if kind == "T" else x.astype(np.float64)
    if column == "error" and len(x) and np.all(x > 0):
        x = np.log(x)
    lo, hi = (np.nanmin(x), np.nanmax(x)) if len(x) else (0.0, 1.0)
    t = np.clip((x - lo) / (hi - lo) if hi > lo else np.zeros_like(x), 0, 1)[:, None]
    ramp = rgb(["#440154", "#21918c", "#fde725"]).astype(np.float64)  # viridis ends and middle
    out = np.where(t < 0.5, ramp[0] + (ramp[1] - ramp[0]) * (t * 2), ramp[1] + (ramp[2] - ramp[1]) * (t * 2 - 1))
    return out.round().astype(np.uint8)


def color_legend(series: pd.Series, column: str | None = None, max_items: int = 12) -> list[tuple[str, str]]:
    """``(label, "#rrggbb")`` pairs explaining :func:`point_colors` (a WebGL view has
    no legend of its own): each class or flag, or the low, middle and high values."""
    column = column or series.name
    kind = _tooltip_type(series)

    def hexes(values):
        return [_hex(c) for c in point_colors(pd.Series(values, name=column), column)]

    if column == "flag" or kind == "N":
        labels = list(pd.unique(series.astype(str)))
        labels = sorted(labels, key=lambda v: (v != "normal", v))[:max_items]
        return list(zip(labels, hexes(labels), strict=True))
    lo, hi = series.min(), series.max()
    picks = [lo, hi] if kind == "T" else [lo, (lo * hi) ** 0.5 if column == "error" and lo > 0 else (lo + hi) / 2, hi]
    colours = point_colors(pd.Series([lo, *picks[1:-1], hi], name=column), column)
    text = [str(v)[:19] if kind == "T" else f"{float(v):.3g}" for v in picks]
    return [(t, _hex(c)) for t, c in zip(text, colours, strict=True)]


def _hex(rgb) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def latent_cloud(frame: pd.DataFrame, color: str = "class", *, dims=("x", "y", "z"), point_size: float = 2):
    """A rotating 3-D point cloud of the latent (WebGL, pydeck's OrbitView), for
    ``st.pydeck_chart``; clicking a point selects it (layer id ``"latent"``, the
    selection's indices are rows of ``frame`` in order).

    Coordinates are centred and scaled to a common box, so the camera's default
    zoom frames them; the tooltip shows ``idx`` and the colour value.
    """
    import pydeck as pdk

    color_col = COLOR_BY.get(color, color)
    if color_col not in frame.columns:
        raise ValueError(f"color must be one of {sorted(COLOR_BY)} or a column of the frame, got {color!r}")
    xyz = frame[list(dims)].to_numpy(dtype=np.float64)
    if len(xyz):
        xyz = xyz - xyz.mean(axis=0)
        scale = np.abs(xyz).max() or 1.0
        xyz = xyz / scale * 100.0
    label = frame[color_col]
    data = pd.DataFrame({"idx": frame["idx"].to_numpy(), "position": xyz.round(3).tolist(),
                         "color": point_colors(label, color_col).tolist(),
                         "label": label.astype(str).to_numpy()})
    layer = pdk.Layer("PointCloudLayer", data=data, id="latent", get_position="position", get_color="color",
                      point_size=point_size, pickable=True)
    view = pdk.View(type="OrbitView", controller=True)
    state = pdk.ViewState(target=[0, 0, 0], rotation_x=25, rotation_orbit=35, zoom=1.6, min_zoom=-2, max_zoom=8)
    return pdk.Deck(layers=[layer], views=[view], initial_view_state=state, map_provider=None, map_style=None,
                    tooltip={"text": "idx {idx}\n" + color_col + ": {label}"})


def _tooltip_type(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "T"
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return "Q"
    return "N"


def _color_encoding(frame: pd.DataFrame, column: str):
    series = frame[column]
    if column == "flag":
        return alt.Color("flag:N", title="flag", scale=alt.Scale(domain=list(FLAG_COLORS),
                                                                  range=list(FLAG_COLORS.values())))
    if column == "error":
        positive = len(series) and float(series.min()) > 0
        return alt.Color("error:Q", title="score", scale=alt.Scale(
            type="log" if positive else "linear", scheme="viridis"))
    kind = _tooltip_type(series)
    if kind == "N" and "normal" in set(series.astype(str)):
        others = sorted(set(series.astype(str)) - {"normal"})
        return alt.Color(f"{column}:N", title=column, scale=alt.Scale(
            domain=["normal", *others], range=[FLAG_COLORS["normal"], *_CATEGORY_COLORS[: len(others)]]))
    if kind == "T":
        return alt.Color(f"{column}:T", title=column, scale=alt.Scale(scheme="plasma"))
    if kind == "Q" and series.nunique() > 12:
        return alt.Color(f"{column}:Q", title=column, scale=alt.Scale(scheme="plasma"))
    return alt.Color(f"{column}:N", title=column, scale=alt.Scale(scheme="tableau10"))


def selected_indices(selection, frame: pd.DataFrame | None = None) -> np.ndarray:
    """The ``idx`` values a chart selection covers.

    Parameters
    ----------
    selection : dict
        Streamlit's ``event.selection``: ``{"pick": [{"idx": 3}, ...],
        "box": {"x": [lo, hi], "y": [lo, hi]}}`` (either may be missing or empty).
    frame : DataFrame, optional
        The points (with ``idx`` and the ranged columns); needed for a box,
        which Streamlit returns as ranges, not rows.

    Returns
    -------
    idx : ndarray of int64, sorted, unique
    """
    if not selection:
        return np.empty(0, dtype=np.int64)
    found = []
    pick = selection.get("pick") if hasattr(selection, "get") else None
    if pick:
        found.extend(int(p["idx"]) for p in pick if isinstance(p, dict) and "idx" in p)
    box = selection.get("box") if hasattr(selection, "get") else None
    if box and frame is not None and len(frame):
        mask = np.ones(len(frame), dtype=bool)
        used = False
        for column, bounds in box.items():
            if column not in frame.columns or not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
                continue
            lo, hi = sorted(float(b) for b in bounds)
            values = frame[column].to_numpy(dtype=np.float64)
            mask &= (values >= lo) & (values <= hi)
            used = True
        if used:
            found.extend(frame["idx"].to_numpy()[mask].tolist())
    return np.unique(np.asarray(found, dtype=np.int64))


def window_overlay(frame: pd.DataFrame, *, x: str = "time", height: int = 70, width: int = 600) -> alt.FacetChart:
    """Actual vs reconstruction per channel: ``frame`` is long ``[x, channel, kind, value]``
    with ``kind`` in {"actual", "reconstruction"}; one row of the facet per channel."""
    xt = _x_type(frame[x]) if len(frame) else "Q"
    lines = alt.Chart().mark_line(strokeWidth=1.3).encode(
        x=alt.X(f"{x}:{xt}", title=None),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        **reconstruction_kinds(),
    )
    return by_channel([lines], frame, height=height, width=width)


# --------------------------------------------------------------------------- anomalies


def error_histogram(errors, threshold: float, *, labels=None, bins: int = 60, log: bool | None = None,
                    height: int = 220, score_name: str = "reconstruction error") -> alt.LayerChart:
    """Histogram of reconstruction errors (binned here, not in the browser) with
    the threshold as a red rule; stacked by label when ``labels`` (0/1) are given.

    ``log`` bins on a log scale (default: when the positive errors span more
    than two decades). ``score_name`` titles the axis (a series' rows are
    scored by their deviation, not by the raw error).
    """
    e = np.asarray(errors, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size == 0:
        raise ValueError("errors must hold at least one finite value")
    positive = e[e > 0]
    if log is None:
        log = positive.size == e.size and positive.size > 1 and positive.max() / positive.min() > 100
    if log:
        edges = np.geomspace(positive.min(), positive.max() * 1.0001, bins + 1)
    else:
        lo, hi = float(e.min()), float(e.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    groups = {"all": np.ones(e.size, bool)} if labels is None else None
    if labels is not None:
        lab = np.asarray(labels).astype(bool)
        lab = lab[np.isfinite(np.asarray(errors, dtype=np.float64))]
        groups = {"normal": ~lab, "anomaly": lab}
    parts = []
    for name, mask in groups.items():
        counts, _ = np.histogram(e[mask], bins=edges)
        parts.append(pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts, "label": name}))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["count"] > 0]
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    bars = alt.Chart(frame).mark_rect(opacity=0.85).encode(
        x=alt.X("lo:Q", title=score_name + (" (log)" if log else ""), scale=scale),
        x2=alt.X2("hi"),
        y=alt.Y("count:Q", stack=True, title="items"),
        color=alt.Color("label:N", title=None, legend=None if labels is None else alt.Legend(), scale=alt.Scale(
            domain=list(groups), range=["#4c78a8"] if labels is None else ["#4c78a8", _ANOMALY_FILL])),
        tooltip=[alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g"),
                 alt.Tooltip("count:Q"), alt.Tooltip("label:N")],
    )
    rule = alt.Chart(pd.DataFrame({"threshold": [float(threshold)]})).mark_rule(
        color="#d62728", strokeWidth=2).encode(x=alt.X("threshold:Q"), tooltip=[alt.Tooltip("threshold:Q", format=".4g")])
    return alt.layer(bars, rule).properties(height=height)


def score_timeline(x, scores, threshold: float, *, events: pd.DataFrame | None = None, labels=None,
                   max_points: int = 3000, height: int = 230, log: bool = True,
                   score_name: str = "reconstruction error") -> alt.LayerChart:
    """Score over time: the min/max-downsampled score line, the threshold rule,
    labelled anomalies shaded orange and flagged events as red bands on top.

    Parameters
    ----------
    x : array-like, shape (n,)
        Timestamps or row numbers.
    scores : array-like, shape (n,)
        Row errors (higher = worse).
    events : DataFrame, optional
        ``start``/``end`` rows (inclusive), e.g. from ``flags_to_events``.
    labels : array-like of 0/1, optional
        Labelled anomalies to shade.
    score_name : str
        Title of the score axis.
    """
    x = np.asarray(x)
    s = np.asarray(scores, dtype=np.float64)
    rows = minmax_downsample(s, max_points)
    xt = _x_type(x)
    floor = float(np.min(s[s > 0])) if log and np.any(s > 0) else None
    use_log = log and floor is not None
    y_vals = np.maximum(s[rows], floor) if use_log else s[rows]
    line = alt.Chart(pd.DataFrame({"x": x[rows], "score": y_vals})).mark_line(
        strokeWidth=1, color="#4c78a8").encode(
        x=alt.X(f"x:{xt}", title="time" if xt == "T" else "row"),
        y=alt.Y("score:Q", title=score_name, scale=alt.Scale(type="log") if use_log else alt.Scale()),
        tooltip=[alt.Tooltip(f"x:{xt}", title="at"), alt.Tooltip("score:Q", format=".4g")],
    )
    layers = []
    if labels is not None:
        spans = label_spans(labels, x)
        if len(spans):
            layers.append(alt.Chart(spans).mark_rect(color=_ANOMALY_FILL, opacity=0.25).encode(
                x=alt.X(f"start:{xt}"), x2=alt.X2("end")))
    layers.append(line)
    rule = alt.Chart(pd.DataFrame({"threshold": [max(float(threshold), floor) if use_log else float(threshold)]}))
    layers.append(rule.mark_rule(color="#d62728", strokeDash=[5, 3]).encode(y=alt.Y("threshold:Q")))
    if events is not None and len(events):
        ev = pd.DataFrame({"start": x[events["start"].to_numpy()],
                           "end": x[np.minimum(events["end"].to_numpy() + 1, len(x) - 1)],
                           "event": events["event"].to_numpy(),
                           "peak": events["peak_score"].to_numpy()})
        layers.append(alt.Chart(ev).mark_rect(color="#d62728", opacity=0.9, height=8).encode(
            x=alt.X(f"start:{xt}"), x2=alt.X2("end"), y=alt.YValue(4),
            tooltip=[alt.Tooltip("event:Q"), alt.Tooltip("peak:Q", format=".4g")]))
    return alt.layer(*layers).properties(height=height)


def contributions_chart(channel_names, values, *, title: str | None = None,
                        axis_title: str = "share of the event's error") -> alt.Chart:
    """Per-channel error (or blame) of an event as horizontal bars, largest first ("which sensor")."""
    v = np.asarray(values, dtype=np.float64)
    frame = pd.DataFrame({"channel": [str(c) for c in channel_names], "error": v})
    total = float(v.sum())
    frame["share"] = frame["error"] / total if total > 0 else 0.0
    frame["top"] = np.where(frame["share"] == frame["share"].max(), "top", "other")
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("share:Q", title=axis_title, axis=alt.Axis(format="%")),
        y=alt.Y("channel:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=160)),
        color=alt.Color("top:N", legend=None, scale=alt.Scale(domain=["top", "other"],
                                                             range=["#d62728", "#4c78a8"])),
        tooltip=[alt.Tooltip("channel:N"), alt.Tooltip("error:Q", format=".4g"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=alt.Step(24))
    return chart.properties(title=title) if title else chart


#: operating points drawn on the ROC and PR curves, and their colours
POINT_COLORS = {"threshold in use": "#d62728", "best F1": "#2ca02c"}


def _points_layer(points, x: str, y: str):
    """Labelled operating points (``{label: (x, y)}``), coloured and in a legend."""
    rows = [{"point": label, x: float(px), y: float(py)} for label, (px, py) in points.items()
            if np.isfinite(px) and np.isfinite(py)]
    if not rows:
        return None
    labels = list(points)
    return alt.Chart(pd.DataFrame(rows)).mark_point(filled=True, size=90, opacity=0.9).encode(
        x=f"{x}:Q", y=f"{y}:Q",
        color=alt.Color("point:N", title=None, legend=alt.Legend(orient="bottom-right"),
                        scale=alt.Scale(domain=labels, range=[POINT_COLORS.get(k, "#555555") for k in labels])),
        tooltip=["point:N", alt.Tooltip(f"{x}:Q", format=".3f"), alt.Tooltip(f"{y}:Q", format=".3f")])


def roc_chart(roc: pd.DataFrame, *, point=None, points=None, height: int = 240) -> alt.LayerChart:
    """ROC curve (``fpr``, ``tpr``) with the chance diagonal; ``points`` (``{label: (fpr, tpr)}``,
    e.g. the threshold in use and the best-F1 one) or one ``point`` as a red dot."""
    curve = alt.Chart(roc).mark_line(color="#4c78a8").encode(
        x=alt.X("fpr:Q", title="false-alarm rate", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("tpr:Q", title="recall", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("threshold:Q", format=".4g"), alt.Tooltip("fpr:Q", format=".3f"),
                 alt.Tooltip("tpr:Q", format=".3f")])
    diag = alt.Chart(pd.DataFrame({"fpr": [0, 1], "tpr": [0, 1]})).mark_line(
        color="#bbbbbb", strokeDash=[4, 4]).encode(x="fpr:Q", y="tpr:Q")
    layers = [diag, curve]
    marks = _points_layer(points if points is not None else ({} if point is None else {"threshold in use": point}),
                          "fpr", "tpr")
    if marks is not None:
        layers.append(marks)
    return alt.layer(*layers).properties(height=height, title="ROC")


def pr_chart(pr: pd.DataFrame, *, point=None, points=None, height: int = 240) -> alt.LayerChart:
    """Precision-recall curve with operating points ``{label: (recall, precision)}`` (or one ``point``)."""
    curve = alt.Chart(pr).mark_line(color="#4c78a8").encode(
        x=alt.X("recall:Q", title="recall", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("precision:Q", title="precision", scale=alt.Scale(domain=[0, 1])),
        tooltip=[alt.Tooltip("threshold:Q", format=".4g"), alt.Tooltip("recall:Q", format=".3f"),
                 alt.Tooltip("precision:Q", format=".3f")])
    layers = [curve]
    marks = _points_layer(points if points is not None else ({} if point is None else {"threshold in use": point}),
                          "recall", "precision")
    if marks is not None:
        layers.append(marks)
    return alt.layer(*layers).properties(height=height, title="Precision-recall")
