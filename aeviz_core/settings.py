"""Settings a model is trained with: the model kinds, and the one check of a detector's
parameters that the estimator, the app's Train page and ``aeviz train`` share.

Light on purpose (no Keras): the CLI's parser and the app's forms read it at import time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .thresholds import ThresholdRule

__all__ = ["ITEM_KINDS", "ITEM_TRIM", "LEVELS", "MODEL_KINDS", "SCALINGS", "SERIES_SCORES", "TrainingPlan",
           "adapt_rows", "check_settings", "duration_text", "isolation_setting", "parse_duration",
           "row_period_seconds", "training_period_text", "training_plan", "trim_setting"]

#: the autoencoders aeviz trains, with the names the app shows
MODEL_KINDS = {"ae": "AE (dense)", "conv-ae": "Conv AE", "vae": "VAE (dense)", "conv-vae": "Conv VAE"}
SCALINGS = ("channel", "global", "none")
LEVELS = ("auto", "range", "relative", "absolute")
#: how a series model scores rows (see AutoencoderDetector's ``series_score``); the first is the default
SERIES_SCORES = ("lasting", "smooth", "regime")
#: the input kinds whose items are scored one by one (not rows of a series, not its windows)
ITEM_KINDS = ("table", "images")
#: ``trim="auto"`` on items: the share of each batch's items an autoencoder's loss leaves out
ITEM_TRIM = 0.25


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_settings(params: dict) -> None:
    """Raise ValueError, naming the setting, for parameters
    :class:`~aeviz_core.detector.AutoencoderDetector` cannot train with.

    ``params`` holds the estimator's parameters (``get_params()``, or the part of them a
    caller sets; absent ones take their defaults).
    """
    get = params.get
    model = get("model", "ae")
    if model not in MODEL_KINDS:
        raise ValueError(f"model must be one of {tuple(MODEL_KINDS)}, got {model!r}")
    if get("scaling", "channel") not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {get('scaling')!r}")
    for name, low in (("latent_dim", 1), ("epochs", 1), ("batch_size", 1), ("patience", 1)):
        value = get(name)
        if (name in ("batch_size", "epochs") and value is None) or (name == "latent_dim" and value == "auto"):
            continue
        if not _is_int(value) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    weight = get("neighbor_weight", "auto")
    if not (weight == "auto" or (isinstance(weight, (int, float, np.number)) and not isinstance(weight, bool)
                                 and 0 <= weight < math.inf)):
        raise ValueError(f"neighbor_weight must be 'auto' or a number >= 0, got {weight!r}")
    if weight != "auto" and weight > 0 and model.endswith("vae"):
        raise ValueError("neighbor_weight applies to autoencoders ('ae', 'conv-ae'), not to VAEs")
    early = get("early_stopping", "auto")
    if not (early == "auto" or isinstance(early, (bool, np.bool_))):
        raise ValueError(f"early_stopping must be True, False or 'auto', got {early!r}")
    window, stride, smooth = get("window"), get("stride", 1), get("smooth")
    if window is not None and (not _is_int(window) or window < 2):
        raise ValueError(f"window must be None or an integer >= 2, got {window!r}")
    if not _is_int(stride) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if smooth is not None and (not _is_int(smooth) or smooth < 1):
        raise ValueError(f"smooth must be None or an integer >= 1, got {smooth!r}")
    if window is not None and stride > window:
        raise ValueError(f"stride must be <= window ({window}), got {stride}")
    adapt = get("adapt_after")
    if adapt is not None and not (_is_int(adapt) and adapt >= 1):
        try:
            parse_duration(adapt)
        except ValueError as exc:
            raise ValueError(f"adapt_after must be None, a number of rows >= 1 or a duration such as '6h' or "
                             f"'1d', got {adapt!r}: {exc}") from None
    if get("series_score", "lasting") not in SERIES_SCORES:
        raise ValueError(f"series_score must be one of {SERIES_SCORES}, got {get('series_score')!r}")
    if get("level", "auto") not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {get('level')!r}")
    for name, low in (("level_window", 3), ("event_gap", 0)):
        value = get(name, "auto")
        if not (value == "auto" or (_is_int(value) and value >= low)):
            raise ValueError(f"{name} must be 'auto' or an integer >= {low} (rows), got {value!r}")
    trim = get("trim", "auto")
    if not (trim == "auto" or (isinstance(trim, (int, float, np.number)) and not isinstance(trim, (bool, np.bool_))
                               and 0 <= trim < 0.5)):
        raise ValueError(f"trim must be 'auto' or a share in [0, 0.5), got {trim!r}")
    isolation = get("isolation", "auto")
    if not (isolation == "auto" or isinstance(isolation, (bool, np.bool_))):
        raise ValueError(f"isolation must be True, False or 'auto', got {isolation!r}")
    if not 0.0 <= float(get("validation_fraction", 0.1)) < 0.5:
        raise ValueError(f"validation_fraction must be in [0, 0.5), got {get('validation_fraction')!r}")
    if not float(get("learning_rate", 3e-3)) > 0:
        raise ValueError(f"learning_rate must be > 0, got {get('learning_rate')!r}")
    ThresholdRule(get("threshold", "percentile"), get("threshold_param")).resolved()


@dataclass(frozen=True)
class TrainingPlan:
    """What a detector's ``"auto"`` and ``None`` training settings come to."""

    neighbor_weight: float  # the weight of the neighbour term (0: reconstruction alone)
    early_stopping: bool
    epochs: int
    batch_size: int
    hidden: tuple[int, ...]


def training_plan(params: dict) -> TrainingPlan:
    """The :class:`TrainingPlan` of a detector's parameters (``get_params()``).

    A latent of 2 or 3 is meant to be looked at: an autoencoder with one gets the neighbour
    term (weight 0.3), the whole schedule (150 epochs, no early stop: the layout keeps
    improving after the reconstruction levels off) and batches of 512; ``"auto"`` sizes a
    latent for detection, trained on reconstruction alone for up to 60 epochs in batches of 64.
    """
    get = params.get
    model, latent = get("model", "ae"), get("latent_dim", "auto")
    weight = get("neighbor_weight", "auto")
    if weight == "auto":
        looked_at = latent != "auto" and int(latent) <= 3
        weight = 0.3 if not model.endswith("vae") and looked_at else 0.0
    weight = float(weight)
    early = get("early_stopping", "auto")
    hidden = get("hidden")
    return TrainingPlan(
        neighbor_weight=weight,
        early_stopping=weight == 0 if early == "auto" else bool(early),
        epochs=int(get("epochs")) if get("epochs") is not None else (150 if weight > 0 else 60),
        batch_size=int(get("batch_size")) if get("batch_size") is not None else (512 if weight > 0 else 64),
        hidden=(tuple(int(h) for h in hidden) if hidden is not None
                else (32, 64) if model.startswith("conv") else (256, 128)),
    )


def trim_setting(trim, kind: str, model: str, neighbor_weight: float = 0.0) -> float:
    """The share of each batch's items an autoencoder of ``model`` on inputs of ``kind`` leaves out
    of its loss (:func:`aeviz_core.models.trim_weights`): ``trim`` itself, or for ``"auto"``
    :data:`ITEM_TRIM` for a detection model on items (a table, images) and 0 for series,
    windows, VAEs and a model with the neighbour term (``neighbor_weight`` > 0: a 2-D or 3-D
    latent meant to be looked at, whose layout places every item).

    Examples
    --------
    >>> trim_setting("auto", "table", "ae"), trim_setting("auto", "series", "ae"), trim_setting(0.1, "series", "ae")
    (0.25, 0.0, 0.1)
    >>> trim_setting("auto", "images", "ae", neighbor_weight=0.3)
    0.0
    """
    if trim != "auto":
        return float(trim)
    detection = kind in ITEM_KINDS and not model.endswith("vae") and not neighbor_weight > 0
    return ITEM_TRIM if detection else 0.0


def isolation_setting(isolation, kind: str, labelled: bool) -> bool:
    """Whether the anomaly score of a model fitted on inputs of ``kind`` (with ``labelled``
    anomalies, or none) also counts an IsolationForest: ``isolation`` itself, or for ``"auto"``
    on items (a table, images) fitted without labels; never for a series or its windows (a
    clear ValueError when asked for).

    Examples
    --------
    >>> isolation_setting("auto", "table", False), isolation_setting("auto", "table", True)
    (True, False)
    """
    if isolation == "auto":
        return kind in ITEM_KINDS and not labelled
    if isolation and kind not in ITEM_KINDS:
        raise ValueError(f"isolation=True scores items (a table or images) one by one; this model's input is "
                         f"{'a series' if kind == 'series' else 'windows'}: use isolation=False or 'auto'")
    return bool(isolation)


def row_period_seconds(time) -> float | None:
    """The median step between consecutive rows' times, in seconds; None without a time column
    (or with one that is not dates and times, whose unit is unknown)."""
    if time is None:
        return None
    values = pd.Series(time)
    if not pd.api.types.is_datetime64_any_dtype(values):
        return None
    steps = values.diff().dt.total_seconds().to_numpy()
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.median(steps)) if len(steps) else None


def duration_text(seconds: float) -> str:
    """A duration in words a reader takes in at once: ``"6 min 40 s"``, ``"10 days 10 h"``.

    Examples
    --------
    >>> duration_text(400), duration_text(900_000), duration_text(21_600)
    ('6 min 40 s', '10 days 10 h', '6 h')
    """
    seconds = int(round(seconds))
    units = (("day", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if name == 'day' and count > 1 else ''}")
        if len(parts) == 2:
            break
    return " ".join(parts) or "0 s"


def training_period_text(rows: int, time=None) -> str:
    """``"400 rows = 6 min 40 s"``: how much a series model trained on, in rows and, when the
    rows carry times (a Series of them), in time (the rows times their median step)."""
    period = row_period_seconds(time)
    text = f"{int(rows):,} rows"
    return text if period is None else f"{text} = {duration_text(rows * period)}"


def parse_duration(value) -> float:
    """Seconds of a duration: a pandas Timedelta, a ``datetime.timedelta`` or text such as
    ``"90s"``, ``"6h"``, ``"1d"`` or ``"1 day 2 hours"``; a ValueError names what is wrong."""
    if isinstance(value, (bool, np.bool_)) or _is_int(value) or isinstance(value, float):
        raise ValueError(f"a duration needs a unit ('6h', '1d'), got {value!r}")
    try:
        seconds = pd.Timedelta(value).total_seconds()
    except (TypeError, ValueError):
        raise ValueError(f"not a duration: {value!r} (write it like '90s', '6h' or '1d')") from None
    if not seconds > 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return float(seconds)


def adapt_rows(adapt_after, period_s: float | None) -> int:
    """Rows of a series model's ``adapt_after``: 0 for None (a lasting change never becomes the
    new normal), the number itself for rows, a duration over the rows' period (``period_s``, the
    median step of the training rows' times) for a time such as ``"1d"``.

    Examples
    --------
    >>> adapt_rows("1h", 60.0), adapt_rows(500, None), adapt_rows(None, 1.0)
    (60, 500, 0)
    """
    if adapt_after is None:
        return 0
    if _is_int(adapt_after):
        return int(adapt_after)
    seconds = parse_duration(adapt_after)
    if period_s is None:
        raise ValueError(f"adapt_after={adapt_after!r} is a time, but the training rows carry no times: fit on a "
                         "DataFrame indexed by time (aeviz train and the app do), or give adapt_after in rows")
    return max(1, int(round(seconds / period_s)))
