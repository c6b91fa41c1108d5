"""What the Review page shows, as pure functions: the queue table, moving through
it, an event's context and its charts. No Streamlit here, so all of it is unit
tested without a browser; chart builders return ``alt.Chart`` objects, like
those in :mod:`aeviz_core.charts`.

An event is named by its *key*, ``"start-end"`` (its first and last row,
inclusive), the same span that keys its review in
:class:`aeviz_core.ReviewStore`. Keys are plain strings, so they survive in
Streamlit's session state and in a selectbox.
"""

from __future__ import annotations

import math
import re

import altair as alt
import numpy as np
import pandas as pd

from aeviz_core.explain import LIKE_DISTANCE
from aeviz_core.events import event_key, parse_event_key  # noqa: F401  (the review store's keys are event identities)
from aeviz_core.reviews import REVIEW_STATUSES, STATUS_LABELS, with_tag

__all__ = [
    "ACTIONS",
    "STATUS_COLORS",
    "STATUS_LABELS",
    "event_key",
    "export_name",
    "event_label",
    "filter_queue",
    "first_open",
    "format_duration",
    "format_seconds",
    "neighbour",
    "parse_event_key",
    "pick_current",
    "queue_table",
    "review_scores_chart",
    "threshold_advice",
]

#: status -> how the page names it
#: the decisions an operator can take -> the button's label
ACTIONS = {
    "confirmed": "Confirm anomaly",
    "dismissed": "Dismiss: false alarm",
    "follow_up": "Needs follow-up",
}
STATUS_COLORS = {"open": "#9aa5b1", "confirmed": "#d62728", "dismissed": "#4c78a8",
                 "follow_up": "#f58518"}


# --------------------------------------------------------------------------- people's text

#: characters Markdown (and Streamlit's LaTeX, ``$``) gives a meaning to
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def as_text(value) -> str:
    r"""What a person typed (a note, a tag, a name, a file or column name), made safe to put in
    Markdown shown to other people: every character Markdown would read is escaped and line breaks
    become spaces, so ``![x](https://host/pixel.png)`` is shown as those characters (no image
    fetched, no link), ``**`` and ``$`` stay characters.

    Examples
    --------
    >>> print(as_text("![x](https://host.example/p.png) **bold** $5"))
    \!\[x\]\(https\://host\.example/p\.png\) \*\*bold\*\* \$5
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(value).split()))


# --------------------------------------------------------------------------- the queue


def export_name(model: str, data: str, tag: str | None = None) -> str:
    """``reviews_<model>_<data>.csv`` (``..._<tag>.csv`` for the events of one tag), the data's
    own extension left out, safe as a file name.

    Examples
    --------
    >>> export_name("ae-1", "pump_station.csv")
    'reviews_ae-1_pump_station.csv'
    >>> export_name("ae-1", "pump_station.csv", "sensor fault")
    'reviews_ae-1_pump_station_sensor_fault.csv'
    """
    stem = re.sub(r"\.(csv|tsv|txt|parquet|pq)$", "", str(data), flags=re.IGNORECASE)
    name = f"reviews_{model}_{stem}" + (f"_{tag}" if tag else "")
    return re.sub(r"[^\w.-]+", "_", name) + ".csv"


def like_text(row) -> str:
    """``"like rows 120–164 of pump.csv, dismissed by Ana (start-up)"`` for a queue row with a
    :func:`~aeviz_core.explain.like_decided` match (``like_*`` columns), else ``""``."""
    start = row.get("like_start")
    if start is None or pd.isna(start):
        return ""
    where = f"rows {int(start)}–{int(row['like_end'])}"
    data = row.get("like_data")
    if data is not None and not pd.isna(data) and str(data):
        where += f" of {data}"
    by = row.get("like_reviewer")
    tags = row.get("like_tags")
    text = f"like {where}, dismissed" + (f" by {by}" if by is not None and not pd.isna(by) and str(by) else "")
    return text + (f" ({tags})" if tags is not None and not pd.isna(tags) and str(tags) else "")


def with_likes(queue: pd.DataFrame, likes: pd.DataFrame | None) -> pd.DataFrame:
    """``queue`` with the ``like_*`` columns of :func:`~aeviz_core.explain.like_decided` matched by
    span (NaN where none) and ``like`` (:func:`like_text`); ``likes`` carries ``start``/``end``."""
    out = queue.copy()
    columns = ["like_start", "like_end", "like_data", "like_reviewer", "like_tags", "like_distance"]
    if likes is None or not len(likes):
        for column in columns:
            out[column] = np.nan
    else:
        keyed = likes[["start", "end", *columns]].astype({"start": np.int64, "end": np.int64})
        out = out.astype({"start": np.int64, "end": np.int64}).merge(keyed, on=["start", "end"], how="left")
        out.index = queue.index
    out["like"] = [like_text(r) for r in out.to_dict("records")] if len(out) else pd.Series(dtype=str)
    return out


def like_first(queue: pd.DataFrame) -> pd.DataFrame:
    """The queue with the events most like a dismissed one first (nearest look first), the others
    after them in their order."""
    distance = queue["like_distance"] if "like_distance" in queue else pd.Series(np.nan, index=queue.index)
    order = np.lexsort((np.arange(len(queue)), distance.fillna(np.inf).to_numpy()))
    return queue.iloc[order].reset_index(drop=True)


def filter_queue(queue: pd.DataFrame, statuses, tag: str | None = None, *, like_only: bool = False) -> pd.DataFrame:
    """The rows of ``queue`` shown with one of ``statuses`` (None: all) and, when given, with
    ``tag``, order kept.

    Parameters
    ----------
    queue : DataFrame
        From :meth:`ReviewStore.queue`, with ``status`` and ``tags`` columns.
    statuses : iterable of str or None
    tag : str, optional
    like_only : bool
        Only the events like a dismissed one (a ``like`` text, :func:`with_likes`).

    Returns
    -------
    DataFrame
        On a fresh index.

    Raises
    ------
    ValueError
        For a status the store does not know.
    """
    if statuses is not None:
        statuses = [statuses] if isinstance(statuses, str) else list(statuses)
        unknown = sorted(set(statuses) - set(REVIEW_STATUSES))
        if unknown:
            raise ValueError(f"unknown status {', '.join(map(repr, unknown))}; statuses are {', '.join(REVIEW_STATUSES)}")
        queue = queue[queue["status"].isin(statuses)]
    if like_only:
        queue = queue[queue["like"].astype(bool)] if "like" in queue else queue.iloc[:0]
    if tag is not None:
        queue = with_tag(queue, tag)
    return queue.reset_index(drop=True)


def similar_frame(nearest: pd.DataFrame, queue: pd.DataFrame) -> pd.DataFrame:
    """The queue's rows of the :func:`~aeviz_core.explain.nearest_events` of the open event
    (matched by their span), nearest first, with their ``distance``."""
    spans = nearest[["start", "end", "distance"]].astype({"start": np.int64, "end": np.int64})
    rows = queue.astype({"start": np.int64, "end": np.int64}).merge(spans, on=["start", "end"])
    return rows.sort_values(["distance", "start"], kind="stable").reset_index(drop=True)


def similar_line(like: dict) -> str:
    """One line of markdown about a similar event: what, when, how it was judged, how near."""
    when = (f"{_when(like['start_time'])}" if pd.notna(like.get("start_time"))
            else f"rows {int(like['start'])}–{int(like['end'])}")
    status = STATUS_LABELS.get(like["status"], like["status"])
    judged = ("**open**" if like["status"] == "open" else
              f"**{status}**{' (stale)' if like.get('stale') else ''} by {as_text(like.get('reviewer')) or '?'}")
    number = f"#{int(like['event'])} · " if pd.notna(like.get("event")) else ""
    peak = like.get("peak_score")
    peak = f" · peak {float(peak):.3g}" if peak is not None and pd.notna(peak) else ""
    parts = [f"{number}{when}{peak} · {judged}"]
    if like.get("tags"):
        parts.append(f"tags: {as_text(like['tags'])}")
    if like.get("note"):
        parts.append(f"“{as_text(_shortened(str(like['note'])))}”")
    close = " (alike)" if float(like["distance"]) <= LIKE_DISTANCE else ""
    parts.append(f"distance {float(like['distance']):.2f}{close}")
    return " · ".join(parts)


def format_seconds(seconds: float) -> str:
    """A length of time for people: ``"12 s"``, ``"2 min 5 s"``, ``"1 h 05 min"``, ``"3.0 days"``.

    Examples
    --------
    >>> format_seconds(860)
    '14 min 20 s'
    """
    s = float(seconds)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{int(s // 60)} min {round(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {round(s % 3600 / 60):02d} min"
    return f"{s / 86400:.1f} days"


def format_duration(seconds, n_rows: int) -> str:
    """An event's length for a table: ``"126 rows, 2 min 5 s"``; rows alone without time.

    ``seconds`` is ``end_time - start_time`` (NaN or None without a time index).

    Examples
    --------
    >>> format_duration(125.0, 126)
    '126 rows, 2 min 5 s'
    >>> format_duration(float("nan"), 1)
    '1 row'
    """
    rows = f"{int(n_rows):,} row{'s' if int(n_rows) != 1 else ''}"
    if seconds is None or not math.isfinite(float(seconds)):
        return rows
    return f"{rows}, {format_seconds(seconds)}"


def _when(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, str):  # as a review store keeps it (ISO text); shown like a timestamp
        try:
            value = pd.Timestamp(value)
        except ValueError:
            return value
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _status_text(row) -> str:
    text = STATUS_LABELS.get(row["status"], str(row["status"]))
    return f"{text} (stale)" if bool(row.get("stale", False)) else text


def queue_table(queue: pd.DataFrame) -> pd.DataFrame:
    """The queue as the page's table: one readable row per event, in the queue's order.

    Parameters
    ----------
    queue : DataFrame
        From :meth:`ReviewStore.queue` on events of ``flags_to_events``.

    Returns
    -------
    table : DataFrame
        ``event``, ``status`` (a label; "(stale)" when the decision was made
        under another model), ``blamed sensor`` (with its share), ``start`` (time, else row),
        ``duration`` (time, else rows), ``peak score`` (higher = more
        anomalous), ``tags``, ``reviewer``, ``note`` (its first ``NOTE_CHARS``
        characters; the whole note shows with the open event), ``comments``
        (how many), ``rows`` (first-last): what tells events apart first, so it
        fits without scrolling.
    """
    columns = ["event", "status", "blamed sensor", "start", "duration", "tags", "peak score", "reviewer", "note",
               "comments", "rows"] + (["like a dismissed event"] if "like" in queue else [])
    if not len(queue):
        return pd.DataFrame(columns=columns)
    has_time = "start_time" in queue and queue["start_time"].notna().any()
    seconds = queue["duration_s"] if "duration_s" in queue else pd.Series(np.nan, index=queue.index)
    n_rows = queue["n_rows"] if "n_rows" in queue else queue["end"] - queue["start"] + 1
    return pd.DataFrame({
        "event": queue["event"].to_numpy() if "event" in queue else np.arange(len(queue)),
        "status": [_status_text(r) for _, r in queue.iterrows()],
        "peak score": (queue["peak_score"].to_numpy(dtype=float) if "peak_score" in queue
                       else np.full(len(queue), np.nan)),
        "start": [_when(t) for t in queue["start_time"]] if has_time else queue["start"].astype(str).to_numpy(),
        "duration": [format_seconds(s) if pd.notna(s) else format_duration(None, n)
                     for s, n in zip(seconds, n_rows, strict=True)],
        "reviewer": queue["reviewer"].fillna("").astype(str).to_numpy(),
        "note": [_shortened(n) for n in queue["note"].fillna("").astype(str)],
        "tags": queue["tags"].fillna("").astype(str).to_numpy() if "tags" in queue else "",
        "comments": queue["comments"].to_numpy() if "comments" in queue else 0,
        "blamed sensor": _blamed(queue),
        "rows": [f"{int(a)}–{int(b)}" for a, b in zip(queue["start"], queue["end"], strict=True)],
        "like a dismissed event": queue["like"].fillna("").to_numpy() if "like" in queue else "",
    }, columns=columns)


def _blamed(queue: pd.DataFrame) -> list[str]:
    """``"name (share)"`` of each event's blamed sensor (``blamed_channel``, ``blame_share``);
    empty for an event not blamed yet."""
    if "blamed_channel" not in queue:
        return [""] * len(queue)
    shares = queue["blame_share"] if "blame_share" in queue else pd.Series(np.nan, index=queue.index)
    return [f"{name} ({share:.0%})" if name and pd.notna(share) else name
            for name, share in zip(queue["blamed_channel"].fillna("").astype(str), shares, strict=True)]


#: characters of a note the queue shows
NOTE_CHARS = 40


def _shortened(text: str) -> str:
    """One line of at most ``NOTE_CHARS`` characters, ending in "…" when cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= NOTE_CHARS else line[: NOTE_CHARS - 1].rstrip() + "…"


def event_label(row) -> str:
    """One line naming a queue row, for the event picker:
    ``"#3 · 2026-01-05 06:12:40 · peak 4.21 · open"``."""
    where = _when(row.get("start_time")) or f"rows {int(row['start'])}–{int(row['end'])}"
    peak = row.get("peak_score")
    parts = [f"#{int(row['event'])}" if "event" in row else event_key(row["start"], row["end"]), where]
    if peak is not None and not pd.isna(peak):
        parts.append(f"peak {float(peak):.3g}")
    parts.append(_status_text(row))
    return " · ".join(parts)


def pick_current(keys, wanted: str | None, last_position: int = 0) -> tuple[str | None, int]:
    """The event to open: ``wanted`` when it is still in ``keys``, else the one
    now at ``last_position`` (clamped), so that an event leaving a filtered
    queue hands over to the one that took its place.

    Returns
    -------
    (key, position) : (str or None, int)
        ``(None, 0)`` for an empty queue.

    Examples
    --------
    >>> pick_current(["1-2", "5-9"], "5-9")
    ('5-9', 1)
    >>> pick_current(["1-2", "5-9"], "3-4", last_position=7)
    ('5-9', 1)
    """
    keys = list(keys)
    if not keys:
        return None, 0
    if wanted in keys:
        return wanted, keys.index(wanted)
    position = min(max(int(last_position), 0), len(keys) - 1)
    return keys[position], position


def first_open(queue: pd.DataFrame) -> str | None:
    """The key of the queue's first event that awaits a decision (open, or decided only under another
    model: stale), else of its first event.

    Examples
    --------
    >>> first_open(pd.DataFrame({"start": [1, 5], "end": [2, 9], "status": ["confirmed", "open"]}))
    '5-9'
    """
    if not len(queue):
        return None
    waiting = queue["status"] == "open"
    if "stale" in queue:
        waiting |= queue["stale"].astype(bool)
    open_rows = queue[waiting]
    row = open_rows.iloc[0] if len(open_rows) else queue.iloc[0]
    return event_key(row["start"], row["end"])


def neighbour(keys, current: str, step: int) -> str | None:
    """The key ``step`` places from ``current`` in ``keys`` (None past either end).

    Examples
    --------
    >>> neighbour(["a", "b", "c"], "b", 1), neighbour(["a", "b", "c"], "a", -1)
    ('c', None)
    """
    keys = list(keys)
    if current not in keys:
        return None
    i = keys.index(current) + int(step)
    return keys[i] if 0 <= i < len(keys) else None


def threshold_advice(summary: dict, threshold: float) -> str:
    """A sentence on what the reviews say about ``threshold`` (the one now in use).

    Parameters
    ----------
    summary : dict
        From :func:`aeviz_core.feedback.threshold_summary`.
    threshold : float
        The threshold that flagged these events.
    """
    counts = summary["counts"]
    decided = counts.get("confirmed", 0) + counts.get("dismissed", 0)
    stale = summary.get("stale", 0)
    tail = (f" {stale} decision(s) were made under another model and are not counted."
            if stale else "")
    if not decided or summary.get("precision") is None:
        return ("No event is confirmed or dismissed under this model yet: the precision of the "
                "flags and a suggested threshold appear once there are decisions." + tail)
    precision = summary["precision"]
    text = f"{precision:.0%} of the decided flags were real anomalies."
    suggested = summary.get("threshold")
    if summary.get("threshold_method") == "inseparable":
        return text + (" Dismissed events score as high as confirmed ones, so no threshold drops a false "
                       "alarm without losing a real one: the reviews give no reason to move it." + tail)
    if suggested is None:
        need = "dismissed" if counts.get("dismissed", 0) == 0 else "confirmed"
        return text + f" A suggested threshold needs at least one {need} event too." + tail
    how = ("halfway between the highest dismissed and the lowest confirmed peak score"
           if summary.get("threshold_method") == "midpoint"
           else "the cut with the best F1 of flags against confirmed events, since their scores overlap")
    if suggested > threshold * 1.0001:
        move = f"raising it from {threshold:.4g} would drop dismissed events"
    elif suggested < threshold * 0.9999:
        move = f"lowering it from {threshold:.4g} would keep every confirmed event"
    else:
        move = "the threshold in use already separates them"
    return text + f" The reviews suggest a threshold of **{suggested:.4g}** ({how}): {move}." + tail


def review_scores_chart(queue: pd.DataFrame, threshold: float, suggested: float | None = None,
                        *, height: int = 150) -> alt.LayerChart:
    """The events' peak scores by status (a tick each), with the threshold in use
    (red, dashed) and the one the reviews suggest (green): what the decisions say
    about where the threshold should sit. Higher score = more anomalous."""
    frame = pd.DataFrame({
        "event": queue["event"].to_numpy() if "event" in queue else np.arange(len(queue)),
        "peak": pd.to_numeric(queue["peak_score"], errors="coerce").to_numpy(dtype=float),
        "status": [STATUS_LABELS.get(s, s) for s in queue["status"]],
        "stale": queue["stale"].astype(bool).to_numpy() if "stale" in queue else False,
    }).dropna(subset=["peak"])
    values = frame["peak"].to_numpy()
    lines = [float(threshold)] + ([float(suggested)] if suggested is not None else [])
    positive = values.size and values.min() > 0 and min(lines) > 0
    wide = positive and max(values.max(), *lines) / min(values.min(), *lines) > 20
    scale = alt.Scale(type="log") if wide else alt.Scale(zero=False)
    order = list(STATUS_LABELS.values())
    ticks = alt.Chart(frame).mark_tick(thickness=2, size=18).encode(
        x=alt.X("peak:Q", title="event peak score (higher = more anomalous)", scale=scale),
        y=alt.Y("status:N", title=None, sort=order, scale=alt.Scale(domain=order)),
        color=alt.Color("status:N", legend=None, scale=alt.Scale(
            domain=order, range=[STATUS_COLORS[s] for s in STATUS_LABELS])),
        opacity=alt.condition(alt.datum.stale, alt.value(0.35), alt.value(0.95)),
        tooltip=["event:Q", alt.Tooltip("peak:Q", format=".4g"), "status:N", "stale:N"],
    )
    drawn = ["in use", "suggested"][: len(lines)]  # the legend names only the rules drawn
    rules = pd.DataFrame({"value": lines, "which": drawn})
    rule = alt.Chart(rules).mark_rule(strokeWidth=2).encode(
        x="value:Q",
        color=alt.Color("which:N", title="threshold", scale=alt.Scale(
            domain=drawn, range=["#d62728", "#2ca02c"][: len(lines)])),
        strokeDash=alt.StrokeDash("which:N", legend=None, scale=alt.Scale(
            domain=drawn, range=[[5, 3], [1, 0]][: len(lines)])),
        tooltip=["which:N", alt.Tooltip("value:Q", format=".4g")],
    )
    return alt.layer(ticks, rule).resolve_scale(color="independent").properties(height=height)


# --------------------------------------------------------------------------- the open event


def export_csv(queue: pd.DataFrame) -> bytes:
    """The queue (as the page lists it, with its reviews and comments) as UTF-8 CSV, for a download."""
    return queue.to_csv(index=False).encode("utf-8")
