"""Explanations of a series' events: which sensor to blame, and which other events look alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .scores import squared_steps
from .windows import segments

__all__ = ["LIKE_DISTANCE", "SIGNATURE", "blame", "blame_events", "event_signatures", "like_decided",
           "nearest_events", "nearest_signatures", "type_agreement"]


def blame(detector, X, start: int, end: int, *, passes: int = 3, max_rows: int = 20_000) -> np.ndarray:
    """Each channel's share of one event of a series: which sensor to blame.

    The plain per-channel errors blame every channel of a broken relation,
    often the best-predicted one: a drifting flow sensor also raises the
    error of the motor current that follows flow, and the current, whose
    normal error is tiny, looks the worse. Here each channel in turn is
    replaced over the event's rows by the model's reconstruction of it
    (``passes`` times, each from the last), and the event's normalised
    squared error over all channels is measured again. Replacing the faulty
    channel removes the whole excess; replacing a bystander removes only its
    own part. A channel's share is how much the total falls (a
    reconstruction-based contribution).

    An event whose peak comes from a channel that is too quiet (a stuck
    sensor: steps or error below normal) has no excess to remove; there the
    channels' parts of the anomaly score, summed over the event, give the
    shares.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted on a series (``window`` set).
    X : array-like or DataFrame, shape (n_rows, n_channels)
        The series, or a piece of it holding the event and the detector's
        ``context_rows`` rows on each side where it has them.
    start, end : int
        The event's first and last row in ``X`` (inclusive).
    passes : int, default 3
    max_rows : int, default 20,000
        A longer event is judged on the ``max_rows`` rows around its highest
        score: each pass rebuilds every row it judges (and a window on each
        side), 4 passes per channel.

    Returns
    -------
    shares : ndarray, shape (n_channels,)
        Non-negative, summing to 1 (equal shares when nothing stands out).
    """
    start, end = int(start), int(end)
    X = _checked(detector, X, [(start, end)], max_rows)
    stretch = [(a, b) for a, b in segments(X, 1) if a <= start and end < b]
    if not stretch:
        raise ValueError(f"rows {start}..{end} cross a gap (a row with a missing value): an event lies "
                         "between gaps")
    X = X[: stretch[0][1]]  # the event's gap-free stretch and what precedes it
    first = stretch[0][0]
    context, window = detector.context_rows, detector.window
    if end - start + 1 > max_rows:  # judge the stretch around the event's highest score
        lo, hi = max(first, start - context), min(len(X), end + context + 1)
        start, end = _around_peak(detector.score_parts(X[lo:hi])[0][start - lo : end - lo + 1], start, end, max_rows)
    lo = max(first, start - context)
    hi = min(len(X), end + context + 1)
    if hi - lo < window:
        raise ValueError(f"the series holds {hi - lo} rows around the event; blame needs a window "
                         f"({window})")
    Xs, raw, _, parts, ratio = _stretch(detector, X[lo:hi])
    return _shares(detector, Xs, raw, parts, ratio, slice(start - lo, end - lo + 1), passes)


def prepared(detector, X) -> dict:
    """What :func:`blame_events` reads of a whole series, once: for each gap-free stretch
    ``(start, stop)``, its prepared rows, squared errors, row scores, channel parts and residual
    ratios. A caller that blames events of the same series again and again (a page, at each
    threshold) passes it as ``prepared`` and pays for each event only."""
    X = _checked(detector, X, [], 1)
    return {(a, b): _stretch(detector, X[a:b]) for a, b in segments(X, detector.window)}


def _stretch(detector, X) -> tuple:
    """``(Xs, raw, row scores, parts, ratio)`` of one gap-free stretch of raw rows ``X``: what
    :func:`_shares` reads."""
    run, score = detector.inference(), detector.series_scorer()
    Xs = detector.model_input(X)
    raw = run.series_errors(Xs, detector.window)
    return (Xs, raw, *score.scores(Xs, raw), score.ratio(raw))


def blame_events(detector, X, spans, *, passes: int = 3, max_rows: int = 20_000, prepared=None) -> np.ndarray:
    """:func:`blame` of many events of one series at once: the series is prepared and scored
    once, so each event costs only its own imputation (the shares are :func:`blame`'s).

    Parameters
    ----------
    spans : iterable of (start, end)
        Each event's first and last row (inclusive), none across a gap.

    prepared : dict, optional
        :func:`prepared` of this detector and ``X``, when the caller keeps it.

    Returns
    -------
    shares : ndarray, shape (n_events, n_channels)
    """
    spans = [(int(a), int(b)) for a, b in spans]
    X = _checked(detector, X, spans, max_rows)
    window = detector.window
    stretches = segments(X, 1)
    around = []  # each event's gap-free stretch, all checked before any work
    for start, end in spans:
        inside = [(a, b) for a, b in stretches if a <= start and end < b]
        if not inside:
            raise ValueError(f"rows {start}..{end} cross a gap (a row with a missing value): an event lies "
                             "between gaps")
        if inside[0][1] - inside[0][0] < window:
            raise ValueError(f"the series holds {inside[0][1] - inside[0][0]} rows around the event; blame "
                             f"needs a window ({window})")
        around.append(inside[0])
    out = np.empty((len(spans), X.shape[1]))
    cache: dict = dict(prepared or {})
    for i, ((start, end), (a, b)) in enumerate(zip(spans, around, strict=True)):
        if (a, b) not in cache:  # each gap-free stretch prepared and scored once
            cache[(a, b)] = _stretch(detector, X[a:b])
        Xs, raw, row_scores, parts, ratio = cache[(a, b)]
        if end - start + 1 > max_rows:
            start, end = _around_peak(row_scores[start - a : end - a + 1], start, end, max_rows)
        out[i] = _shares(detector, Xs, raw, parts, ratio, slice(start - a, end - a + 1), passes)
    return out


def _checked(detector, X, spans, max_rows) -> np.ndarray:
    check_is_fitted(detector, "model_")
    if detector.input_kind_ != "series":
        raise ValueError("blame needs a model fitted on a series (window set)")
    X = detector.check_input(X)
    for start, end in spans:
        if not 0 <= start <= end < len(X):
            raise ValueError(f"the event must satisfy 0 <= start <= end < {len(X)}, got {start}..{end}")
    if not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    return X


def _around_peak(event_scores, start: int, end: int, max_rows: int) -> tuple[int, int]:
    """The ``max_rows`` rows of an event around its highest score."""
    peak = start + int(np.argmax(event_scores))
    start = min(max(start, peak - max_rows // 2), end - max_rows + 1)
    return start, start + max_rows - 1


def _shares(detector, Xs, raw, parts, ratio, inner: slice, passes: int) -> np.ndarray:
    """The blame of the rows ``inner`` of a prepared stretch ``Xs`` with squared errors ``raw``,
    score parts ``parts`` and residual ratios ``ratio`` (see :func:`blame`)."""
    run, score, window = detector.inference(), detector.series_scorer(), detector.window
    parts = parts[inner]
    peak = np.unravel_index(np.argmax(parts), parts.shape)
    # the ratio computed over the whole stretch, as the parts were: the test compares them exactly
    excess = np.log(max(ratio[inner][peak], 1e-6))
    if excess <= 0 or parts[peak] > excess:  # too quiet (error or steps below normal): nothing to take away
        shares = parts.sum(axis=0)
    else:
        # only the windows that cover the event's rows bear on them: the rows a window before
        # and after are all the imputation needs (the same windows, so the same values)
        a, b = max(0, inner.start - (window - 1)), min(len(Xs), inner.stop + window - 1)
        near, rows = Xs[a:b], slice(inner.start - a, inner.stop - a)
        # one copy of those rows per channel, that channel imputed: all copies in one model call
        channels = np.arange(Xs.shape[1])
        imputed = np.repeat(near[None], len(channels), axis=0)
        for _ in range(passes):
            rebuilt = run.rebuild_stack(imputed, window)
            imputed[channels, rows, channels] = rebuilt[channels, rows, channels]
        errors = run.errors_stack(imputed, window)[:, rows] / score.channel_scale
        shares = imputed_shares((raw[inner] / score.channel_scale).sum(axis=0), errors.sum(axis=1))
    if not shares.sum() > 0:
        return np.full(Xs.shape[1], 1.0 / Xs.shape[1])
    return shares / shares.sum()


def imputed_shares(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Each channel's blame from the event's error per channel ``before`` (shape ``(C,)``) and
    ``after[k]``, the same with channel ``k`` imputed (``(C, C)``).

    Imputing a channel always removes its own error; what it removes of the others' says it
    caused theirs. A channel's own error counts only as far as imputing another channel does
    not remove it: a bystander whose reconstruction jumped (a flat thermocouple rebuilt from the
    shaking accelerometers of a rotor imbalance) loses that error when the faulty channel is
    imputed, so it is not blamed for it, while a channel that broke alone (a spike, a drift)
    keeps all of its own."""
    removed = np.maximum(before[None, :] - after, 0.0)  # removed[k, i]: of channel i's error, imputing k
    own = np.diag(removed).copy()
    np.fill_diagonal(removed, 0.0)
    explained = removed.max(axis=0)  # of each channel's error, the most another channel's imputation removes
    return removed.sum(axis=1) + np.maximum(own - explained, 0.0)


#: what :func:`event_signatures` measures of each event, whichever sensor it is on
SIGNATURE = ("rows", "stillness", "residual", "peakiness", "kurtosis", "misfit", "second_share", "step_energy")
#: two events whose looks lie at most this far apart are "alike" (:func:`like_decided`): on the pump
#: sample's detected events, 86% of the pairs that close share their fault type (92% within 0.75;
#: 63% within 3, where most events have some neighbour); with a lower threshold's false events among
#: them, 78%
LIKE_DISTANCE = 1.0


def event_signatures(detector, X, spans) -> pd.DataFrame:
    """How each event looks, whichever sensor it is on: the basis of "similar events".

    For each event the channel with the largest summed score parts is its
    suspect, and the signature describes what happened there and around it:

    * ``rows``: log of its length;
    * ``stillness``, ``residual``: the mean over its rows of the two tests of
      the anomaly score (see :class:`~aeviz_core.scores.SeriesScore`), each
      row's largest channel;
    * ``peakiness`` (largest over root-mean-square) and ``kurtosis`` (log) of the
      suspect's misfit, the reading less the model's reconstruction of it, in
      units of its normal error: a spike is peaked, noise and drift are not;
    * ``misfit``: log of that misfit's root-mean-square (how far off);
    * ``second_share``: the second channel's share over the suspect's (a broken
      relation involves two);
    * ``step_energy``: log of the suspect's squared steps over normal (a stuck
      sensor stops, noise moves more).

    On the pump sample (``bench/similar_events.py``, a model trained by ``aeviz
    train``), 97% of the 3 nearest events of each labelled fault's span share its
    fault type; of the events the model detects, 78%.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted on a series.
    X : array-like or DataFrame, shape (n_rows, n_channels)
    spans : iterable of (start, end)
        Each event's first and last row (inclusive).

    Returns
    -------
    signatures : DataFrame
        ``start``, ``end``, then the :data:`SIGNATURE` columns; one row per span.
    """
    check_is_fitted(detector, "model_")
    if detector.input_kind_ != "series":
        raise ValueError("event signatures need a model fitted on a series (window set)")
    X = detector.check_input(X)
    spans = [(int(a), int(b)) for a, b in spans]
    for a, b in spans:
        if not 0 <= a <= b < len(X):
            raise ValueError(f"an event must satisfy 0 <= start <= end < {len(X)}, got {a}..{b}")
    run, score, w = detector.inference(), detector.series_scorer(), detector.window
    residual, still, misfit, steps = (np.full(X.shape, np.nan) for _ in range(4))
    normal_step = np.where(detector.step_scale_ > 0, detector.step_scale_, np.nan)
    for a, b in segments(X, w):
        Xs = detector.model_input(X[a:b])
        raw = run.series_errors(Xs, w)
        residual[a:b], still[a:b] = score.tests(Xs, raw)
        misfit[a:b] = (Xs - run.rebuild_rows(Xs, w)) / np.sqrt(score.channel_scale)
        steps[a:b] = squared_steps(Xs) / normal_step
    rows = []
    for a, b in spans:
        inside = slice(a, b + 1)
        share = np.nan_to_num(np.nansum(np.maximum(residual[inside], still[inside]), axis=0))
        suspect = int(np.argmax(share))
        top = np.sort(share)[-2:]
        r = misfit[inside, suspect]
        r = r[np.isfinite(r)]
        rms = float(np.sqrt(np.mean(r**2))) if len(r) else np.nan
        step = steps[inside, suspect]
        rows.append({
            "start": a, "end": b,
            "rows": np.log(b - a + 1),
            "stillness": _nanmean(np.nanmax(still[inside], axis=1)),
            "residual": _nanmean(np.nanmax(residual[inside], axis=1)),
            "peakiness": float(np.max(np.abs(r)) / (rms + 1e-9)) if len(r) else np.nan,
            "kurtosis": float(np.log(np.mean(r**4) / (rms**4 + 1e-12) + 1e-6)) if len(r) else np.nan,
            "misfit": float(np.log(rms + 1e-6)),
            "second_share": float(top[0] / top[1]) if top[1] > 0 else 0.0,
            "step_energy": float(np.log(_nanmean(step) + 1e-6)) if np.isfinite(step).any() else 0.0,
        })
    return pd.DataFrame(rows, columns=["start", "end", *SIGNATURE])


def nearest_events(signatures: pd.DataFrame, index: int, k: int = 3) -> pd.DataFrame:
    """The ``k`` events whose :func:`event_signatures` are nearest to event ``index``'s.

    Euclidean distance over the :data:`SIGNATURE` columns as they are: logs
    (where 1 is a factor of e), ratios and shares, so one unit is a notable
    difference in each, and a signature means the same in any data set and for
    any number of events (a scale fitted to the events at hand would shrink the
    very features that tell two kinds apart). A missing value counts as 0.

    Returns
    -------
    nearest : DataFrame
        ``position`` (row of ``signatures``), ``start``, ``end`` and
        ``distance``, nearest first (ties: the earlier event first).
    """
    if not 0 <= index < len(signatures):
        raise ValueError(f"index must be in [0, {len(signatures)}), got {index}")
    distance = _distances(signatures, signatures.iloc[index])
    distance[index] = np.inf
    order = np.lexsort((signatures["start"].to_numpy(), distance))[: min(k, len(signatures) - 1)]
    return pd.DataFrame({"position": order, "start": signatures["start"].to_numpy()[order],
                         "end": signatures["end"].to_numpy()[order], "distance": distance[order]})


def nearest_signatures(signature, candidates: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` rows of ``candidates`` (any frame with the :data:`SIGNATURE` columns, such as
    the decided events of earlier data a review store kept) nearest to ``signature`` (a row of
    :func:`event_signatures`), nearest first, with their ``distance`` (as in
    :func:`nearest_events`; ties: the earlier row of ``candidates`` first)."""
    if not len(candidates):
        return candidates.assign(distance=pd.Series(dtype=float))
    distance = _distances(candidates, signature)
    order = np.argsort(distance, kind="stable")[:k]
    return candidates.iloc[order].assign(distance=distance[order]).reset_index(drop=True)


def like_decided(signatures: pd.DataFrame, decided: pd.DataFrame, *, status: str = "dismissed",
                 within: float | None = None) -> pd.DataFrame:
    """For each event of ``signatures``, the nearest event decided ``status`` whose look lies
    within ``within`` of its own (:data:`LIKE_DISTANCE` by default), or none.

    What an operator sees as "like rows 120-164 of FILE, dismissed by NAME": a hint beside a new
    event, never a decision (nothing is dismissed automatically).

    Parameters
    ----------
    signatures : DataFrame
        From :func:`event_signatures` (``start``, ``end`` and the :data:`SIGNATURE` columns).
    decided : DataFrame
        Decided events with their looks: ``start``, ``end``, ``status``, the :data:`SIGNATURE`
        columns and, when present, ``data_name``, ``reviewer``, ``tags`` and ``here`` (True for
        an event of the same data as ``signatures``: the event itself is never its own like).
    status : str
        The decision looked for.
    within : float, optional
        The largest distance that counts as alike.

    Returns
    -------
    like : DataFrame
        One row per row of ``signatures`` (same index): ``like_start``, ``like_end``,
        ``like_data``, ``like_reviewer``, ``like_tags`` and ``like_distance``; NaN (None) where
        no decided event is that near.
    """
    within = LIKE_DISTANCE if within is None else float(within)
    out = pd.DataFrame({"like_start": np.nan, "like_end": np.nan, "like_data": None, "like_reviewer": None,
                        "like_tags": None, "like_distance": np.nan}, index=signatures.index)
    pool = decided[decided["status"] == status].reset_index(drop=True) if len(decided) else decided
    if not len(pool) or not len(signatures):
        return out
    Z = np.nan_to_num(pool.reindex(columns=list(SIGNATURE)).to_numpy(dtype=np.float64))
    S = np.nan_to_num(signatures.reindex(columns=list(SIGNATURE)).to_numpy(dtype=np.float64))
    distance = np.sqrt(((S[:, None, :] - Z[None, :, :]) ** 2).sum(axis=2))
    if "here" in pool:  # an event of the same data is not its own like
        here = pool["here"].fillna(False).to_numpy(dtype=bool)
        same = ((signatures["start"].to_numpy()[:, None] <= pool["end"].to_numpy()[None, :])
                & (pool["start"].to_numpy()[None, :] <= signatures["end"].to_numpy()[:, None]) & here[None, :])
        distance[same] = np.inf
    best = distance.argmin(axis=1)
    near = distance[np.arange(len(S)), best] <= within
    rows = pool.iloc[best[near]]
    index = signatures.index[near]
    out.loc[index, "like_start"] = rows["start"].to_numpy(dtype=float)
    out.loc[index, "like_end"] = rows["end"].to_numpy(dtype=float)
    for column in ("data_name", "reviewer", "tags"):
        if column in rows:
            out.loc[index, f"like_{column.replace('_name', '')}"] = rows[column].to_numpy(dtype=object)
    out.loc[index, "like_distance"] = distance[np.arange(len(S)), best][near]
    return out


def _distances(signatures: pd.DataFrame, signature) -> np.ndarray:
    """Euclidean distance of every row's :data:`SIGNATURE` to ``signature``'s (missing: 0)."""
    # a look kept before a signature value existed has none: it counts as 0, like a missing one
    Z = np.nan_to_num(signatures.reindex(columns=list(SIGNATURE)).to_numpy(dtype=np.float64))
    one = np.nan_to_num(np.asarray([signature.get(name, np.nan) for name in SIGNATURE], dtype=np.float64))
    return np.sqrt(((Z - one) ** 2).sum(axis=1))


def type_agreement(signatures: pd.DataFrame, kinds, k: int = 3) -> dict[str, float]:
    """How often an event's ``k`` :func:`nearest_events` share its kind (``kinds``: one label per
    row of ``signatures``; ``"none"`` marks events left out of the count but kept as neighbours).

    Returns
    -------
    shares : dict
        Kind -> mean share over its events, and ``"all"`` -> the mean over every counted event.
    """
    kinds = np.asarray([str(k_) for k_ in kinds])
    hits: dict[str, list[float]] = {}
    for i, kind in enumerate(kinds):
        if kind != "none":
            near = nearest_events(signatures, i, k)["position"].to_numpy()
            hits.setdefault(str(kind), []).append(float(np.mean(kinds[near] == kind)))
    shares = {kind: float(np.mean(v)) for kind, v in sorted(hits.items())}
    shares["all"] = float(np.mean([h for v in hits.values() for h in v]))
    return shares


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
