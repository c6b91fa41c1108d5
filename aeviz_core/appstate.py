"""What the app's pages share: the documented session keys, the current data set,
the trained models, and the training settings. Pure Python, no Streamlit.

Session state
-------------
Every page reads and writes the session through these keys only; each is set
once, by :func:`init_session` (``if key not in state``), and documented here:

================  ===========================================================
key               value
================  ===========================================================
``dataset``       :class:`Dataset`: the data every page works on (the pump
                  station sample on a fresh session).
``models``        ``dict[str, ModelEntry]``: the models of this session, by
                  name, in the order they were trained or loaded.
``active_model``  ``str`` or None: the name of the model pages 3-4 show.
``thresholds``    ``dict[str, tuple[str, float]]``: model name -> threshold
                  rule and parameter chosen on the Anomalies page (the
                  detector itself is never mutated: pages call
                  ``detector.with_threshold``).
``train_job``     :class:`TrainingJob` or None: the training running in the
                  background for this session.
``model_dir``     ``str``: the folder models are saved to and loaded from
                  (``$AEVIZ_MODEL_DIR``, else ``models/`` beside the app).
================  ===========================================================

Widget keys are local to the page that owns them and start with the page's
name (``train.*``, ``anomalies.*``...), so they never collide with these.
"""

from __future__ import annotations

import math
import os
import threading
import time as _time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .review_views import event_overlay_frame as overlay_frame  # one builder of actual-vs-rebuilt frames
from .settings import check_settings

__all__ = [
    "ACTIVE_MODEL",
    "DATASET",
    "MODELS",
    "MERGE_GAPS",
    "MODEL_DIR",
    "SESSION_KEYS",
    "THRESHOLDS",
    "TRAIN_JOB",
    "Dataset",
    "ModelEntry",
    "TrainSettings",
    "TrainingJob",
    "default_model_dir",
    "default_settings",
    "evaluation_labels",
    "init_session",
    "latent_frame",
    "latent_inputs",
    "overlay_frame",
    "parse_hidden",
    "rates_at",
    "training_notices",
    "scoring_input",
    "stopped_early",
    "training_data",
    "unique_name",
    "window_means",
]

DATASET = "dataset"
MODELS = "models"
ACTIVE_MODEL = "active_model"
THRESHOLDS = "thresholds"
THRESHOLD_DATA = "threshold_data"  # model name -> the data its session threshold was set on
MERGE_GAPS = "merge_gaps"
TRAIN_JOB = "train_job"
MODEL_DIR = "model_dir"

#: key -> one line on what it holds (the table in the module docstring).
SESSION_KEYS = {
    DATASET: "Dataset: the data every page works on",
    MODELS: "dict[str, ModelEntry]: this session's models, by name",
    ACTIVE_MODEL: "str or None: the model the Latent explorer and Anomalies pages show",
    THRESHOLDS: "dict[str, (rule, param)]: the threshold chosen per model",
    MERGE_GAPS: "dict[str, int]: the events' merge gap chosen per model (default: its window)",
    TRAIN_JOB: "TrainingJob or None: the training running for this session",
    MODEL_DIR: "str: the folder models are saved to and loaded from",
}


def default_model_dir() -> str:
    """``$AEVIZ_MODEL_DIR``, else ``models/`` at the repository root."""
    return os.environ.get("AEVIZ_MODEL_DIR") or str(Path(__file__).resolve().parent.parent / "models")


def init_session(state, dataset_factory=None) -> None:
    """Set every session key that is missing; never overwrite one.

    Parameters
    ----------
    state : MutableMapping
        ``st.session_state`` (or a dict in tests).
    dataset_factory : callable, optional
        Called (only when ``dataset`` is missing) for the initial :class:`Dataset`.
    """
    if DATASET not in state:
        state[DATASET] = dataset_factory() if dataset_factory is not None else None
    if MODELS not in state:
        state[MODELS] = {}
    if ACTIVE_MODEL not in state:
        state[ACTIVE_MODEL] = None
    if THRESHOLDS not in state:
        state[THRESHOLDS] = {}
    if THRESHOLD_DATA not in state:
        state[THRESHOLD_DATA] = {}
    if MERGE_GAPS not in state:
        state[MERGE_GAPS] = {}
    if TRAIN_JOB not in state:
        state[TRAIN_JOB] = None
    if MODEL_DIR not in state:
        state[MODEL_DIR] = default_model_dir()


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """The data a session works on, whatever it came from.

    Attributes
    ----------
    name : str
        Shown in the sidebar ("pump_station.csv", "UCI digits").
    kind : {"sensor", "images"}
        A multichannel table/time series, or digit images.
    X : ndarray
        ``sensor``: float32 ``(n_rows, n_channels)``; ``images``: float32
        ``(n, h, w)``.
    key : str
        Version key (a fingerprint of the values): cached arrays derived from
        this data set are keyed by it, so a cache never returns stale results.
    sensor : SensorData or None
        The loaded table (channels, time, labels, report) for ``sensor``.
    classes : ndarray or None
        A class per item (digit, or a sensor row's fault type, "normal" when none).
    anomaly : ndarray of int8 or None
        1 = labelled anomalous row/item, 0 = normal; None without labels.
    source : str
        Where it came from (``sample:pump``, ``upload:<name>:<key>``), so the
        Data page knows whether a choice is already loaded.
    """

    name: str
    kind: str
    X: np.ndarray
    key: str
    sensor: object = None
    classes: np.ndarray | None = None
    anomaly: np.ndarray | None = None
    source: str = ""

    @property
    def n_items(self) -> int:
        return int(self.X.shape[0])

    @property
    def is_images(self) -> bool:
        return self.kind == "images"

    @property
    def channel_names(self) -> list[str]:
        if self.sensor is not None:
            return self.sensor.channel_names
        return [f"p{i}" for i in range(int(np.prod(self.X.shape[1:])))]

    @property
    def time(self):
        return None if self.sensor is None else self.sensor.time

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return tuple(self.X.shape[1:3]) if self.is_images else None

    @classmethod
    def from_sensor(cls, data, name: str | None = None) -> Dataset:
        """Wrap a :class:`SensorData`; the anomaly label column
        (:func:`~aeviz_core.scores.anomaly_column`, else the first label column) gives the 0/1
        anomaly labels, ``fault_type`` the classes."""
        from .scores import anomaly_column, normal_mask

        anomaly = classes = None
        labels = data.labels
        if labels is not None and labels.shape[1]:
            column = anomaly_column(labels, first_otherwise=True)
            anomaly = (~normal_mask(labels[column])).astype(np.int8)
            if "fault_type" in labels.columns:
                text = labels["fault_type"].fillna("").astype(str).str.strip()
                classes = np.where(text == "", "normal", text).astype(object)
            else:
                classes = np.where(anomaly == 1, "anomaly", "normal").astype(object)
        return cls(name=name or data.source_name, kind="sensor", X=data.values,
                   key=data.fingerprint()[:16], sensor=data, classes=classes, anomaly=anomaly)

    @classmethod
    def from_images(cls, X, y, name: str) -> Dataset:
        """Digit images ``(n, h, w)`` (or ``(n, h*w)`` of a square) and their classes."""
        import hashlib

        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2:
            side = math.isqrt(X.shape[1])
            if side * side != X.shape[1]:
                raise ValueError(f"image rows must hold a square number of pixels, got {X.shape[1]}")
            X = X.reshape(len(X), side, side)
        key = hashlib.sha256(np.ascontiguousarray(X).tobytes() + str(X.shape).encode()).hexdigest()[:16]
        return cls(name=name, kind="images", X=X, key=key,
                   classes=np.asarray(y).astype(str).astype(object), anomaly=None)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainSettings:
    """Everything the Train form sets; :meth:`detector_params` maps it to
    :class:`AutoencoderDetector`'s parameters.

    ``train_start``/``train_end`` delimit the training rows of a series (end
    exclusive); ``normal_classes`` the classes of images that count as normal
    (the others are held out as anomalies), None = all.
    """

    model: str = "ae"
    latent_dim: int = 16
    hidden: tuple = (256, 128)
    window: int | None = 32
    stride: int = 4
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 3e-3
    beta: float = 1.0
    vae_weighting: str = "elbo"
    early_stopping: bool = True
    patience: int = 5
    seed: int = 0
    train_start: int = 0
    train_end: int | None = None
    normal_classes: tuple | None = None
    series_score: str = "lasting"
    adapt_after: str = ""  # a duration ("6h"), a number of rows, or "" for never

    def detector_params(self, dataset: Dataset) -> dict:
        """Keyword arguments of :class:`AutoencoderDetector` for this data set."""
        images = dataset.is_images
        return {
            "model": self.model,
            "latent_dim": int(self.latent_dim),
            "hidden": tuple(int(h) for h in self.hidden),
            "window": None if images else (None if not self.window else int(self.window)),
            "stride": 1 if images or not self.window else int(self.stride),
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "learning_rate": float(self.learning_rate),
            "beta": float(self.beta),
            "vae_weighting": self.vae_weighting,
            "scaling": "global" if images else "channel",
            "early_stopping": bool(self.early_stopping),
            "patience": int(self.patience),
            "random_state": int(self.seed),
            "series_score": self.series_score,
            "adapt_after": None if images or not self.window else adapt_setting(self.adapt_after),
        }

    def check(self, dataset: Dataset) -> None:
        """Raise ValueError (naming the setting) for what ``fit`` would refuse later."""
        check_settings(self.detector_params(dataset))  # what the estimator itself refuses
        if dataset.is_images:
            return
        if not self.window:
            if self.model.startswith("conv"):
                raise ValueError("a conv model needs a window of at least 2 rows")
            return
        end = dataset.n_items if self.train_end is None else self.train_end
        if end - self.train_start < self.window + 2:
            raise ValueError(
                f"the training period holds {end - self.train_start} rows; it needs at least "
                f"window + 2 = {self.window + 2}")

    def to_dict(self) -> dict:
        return asdict(self)


def default_settings(dataset: Dataset) -> TrainSettings:
    """Settings an impatient user can afford on a shared CPU.

    A series trains a dense AE on windows of 32 rows (stride 4, latent 16,
    20 epochs with early stopping) over the whole file; rows labelled
    anomalous never train. That is ``aeviz train``'s rule (rows labelled
    normal, else all rows), so the app and the CLI learn from the same rows of
    a file. A leading period alone can miss part of the normal range:
    the pump sample's first six hours hold half of its twelve-hour ambient
    cycle, and a model trained on them alone flagged 35% of the later normal
    rows (bearing temperatures it had never seen), against 0.5% for the
    whole file's normal rows. A series is scored with the one default policy (``series_score="lasting"``,
    a lasting change flagged until ``adapt_after`` says otherwise). Images train a dense AE with a 2-D latent
    (drawn directly) on every class, with the neighbour term and its large
    batches for its whole 150-epoch schedule (:class:`AutoencoderDetector`'s
    defaults for a 2-D latent: the layout keeps improving after the
    validation loss has levelled off, so no early stopping).
    """
    if dataset.is_images:
        return TrainSettings(model="ae", latent_dim=2, hidden=(256, 128), window=None, stride=1,
                             epochs=150, batch_size=512, early_stopping=False, train_end=None)
    n = dataset.n_items
    window = 32 if n >= 32 * 8 else max(2, n // 8)
    return TrainSettings(window=window, stride=min(4, window), train_end=n)


def adapt_setting(text) -> int | str | None:
    """The Train page's "new normal after" field as ``adapt_after``: empty for never, digits for
    rows, anything else a duration the estimator reads (``"6h"``, ``"1d"``)."""
    text = "" if text is None else str(text).strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def parse_hidden(text: str) -> tuple:
    """``"256, 128"`` -> ``(256, 128)``; a ValueError names what is wrong."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError("layers must list at least one size, e.g. 256, 128")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"layers must be whole numbers separated by commas, got {text!r}") from None
    bad = [s for s in sizes if not 1 <= s <= 4096]
    if bad:
        raise ValueError(f"each layer size must be between 1 and 4096, got {bad[0]}")
    return sizes


def training_data(dataset: Dataset, settings: TrainSettings):
    """``(X, y)`` to pass to ``fit(X, anomalous=y)``: the training rows of a series, or all the
    images with ``y = 1`` for the classes not counted as normal.

    ``X`` is a DataFrame of channels (series), ``(n, h*w)`` pixels (``ae``/``vae``)
    or ``(n, h, w, 1)`` images (``conv-*``); ``y`` is 0/1 or None.
    """
    if dataset.is_images:
        X = dataset.X[..., None] if settings.model.startswith("conv") else dataset.X.reshape(dataset.n_items, -1)
        y = None
        if settings.normal_classes:
            normal = {str(c) for c in settings.normal_classes}
            y = np.array([0 if str(c) in normal else 1 for c in dataset.classes], dtype=np.int8)
        return X, y
    start = int(settings.train_start)
    end = dataset.n_items if settings.train_end is None else int(settings.train_end)
    if not 0 <= start < end <= dataset.n_items:
        raise ValueError(
            f"the training period must satisfy 0 <= start < end <= {dataset.n_items}, got {start}..{end}"
        )
    X = dataset.sensor.channels.iloc[start:end].reset_index(drop=True)
    time = dataset.sensor.time
    if time is not None and pd.api.types.is_datetime64_any_dtype(time):  # adapt_after reads a duration against it
        X.index = pd.DatetimeIndex(time.iloc[start:end].to_numpy())
    y = None if dataset.anomaly is None else dataset.anomaly[start:end]
    return X, y


def scoring_input(dataset: Dataset, detector):
    """The whole data set in the form ``detector`` scores (frame, flat pixels or images)."""
    if not dataset.is_images:
        return dataset.sensor.channels
    if getattr(detector, "input_kind_", "table") == "images":
        return dataset.X[..., None]
    return dataset.X.reshape(dataset.n_items, -1)


@dataclass
class ModelEntry:
    """A model of the session, with where it came from."""

    name: str
    detector: object
    dataset_key: str
    dataset_name: str
    settings: dict = field(default_factory=dict)
    source: str = "trained"  # trained | loaded | refit
    created: float = field(default_factory=_time.time)

    def save_extra(self) -> dict:
        """What ``save_detector(..., extra=)`` keeps beside the model, so a reloaded
        model knows its data and training settings (see :meth:`from_saved`)."""
        return {"data": self.dataset_name, "data_key": self.dataset_key, "settings": self.settings}

    @classmethod
    def from_saved(cls, detector, name: str) -> ModelEntry:
        """An entry for a detector from ``load_detector``: its data and settings come
        from the saved extra when it has one (else its parameters)."""
        extra = (getattr(detector, "saved_meta_", None) or {}).get("extra") or {}
        settings = extra.get("settings") or detector.get_params()
        return cls(name=name, detector=detector, dataset_key=str(extra.get("data_key", detector.fingerprint_)),
                   dataset_name=str(extra.get("data", "a saved model")), settings=dict(settings), source="loaded")

    def summary(self) -> dict:
        det = self.detector
        hist = getattr(det, "history_", {}) or {}
        loss = hist.get("loss") or [math.nan]
        val = hist.get("val_loss") or [math.nan]
        return {
            "name": self.name,
            "model": det.model,
            "latent": det.latent_dim_,
            "window": det.window,
            "data": self.dataset_name,
            "epochs run": len(hist.get("loss", [])),
            "final loss": float(loss[-1]),
            "final val loss": float(val[-1]),
            "threshold": float(det.threshold_),
            "stopped early": stopped_early(det),
            "stopped by you": bool(getattr(det, "interrupted_", False)),
            "threshold from": getattr(det, "threshold_source_", "held-out"),
            "source": self.source,
            "model id": det.model_id_,
        }


def stopped_early(det) -> bool:
    """Whether early stopping ended the fit before its epochs (a stop request is not counted)."""
    if getattr(det, "interrupted_", False):
        return False
    return 0 < len((getattr(det, "history_", None) or {}).get("loss", [])) < det.training_plan().epochs


def training_notices(det) -> list[str]:
    """What a fit could not do as asked, and what it did instead, in plain words."""
    notes = []
    # a version-5 model that held out a few rows fits its threshold on every training row by design
    # (threshold_line says so); no held-out row at all is worth a warning for any model
    by_design = getattr(det, "channel_tail_", None) is not None and "val_loss" in (getattr(det, "history_", {}) or {})
    if getattr(det, "threshold_source_", "held-out") == "training" and not by_design:
        notes.append(
            "Too few rows to hold any out: the threshold was fitted on the training rows themselves, "
            "which the model has seen, so it sits low and more rows than it promises will be flagged; "
            + ("early stopping watched the training loss instead of a validation loss. "
               if det.training_plan().early_stopping else "")
            + "Train on a longer period (or a smaller window) to fit it on rows the model has not seen."
        )
    return notes


def score_name(detector) -> str:
    """What a model's thresholded score is called on the pages: ``"reconstruction error"`` where it
    is one (windows, items fitted with labels), ``"anomaly score"`` where it is built from more
    (a series' deviation tests; items whose score also counts an IsolationForest)."""
    plain = getattr(detector, "input_kind_", "table") != "series" and not getattr(detector, "isolation_", False)
    return "reconstruction error" if plain else "anomaly score"


def threshold_line(entry: ModelEntry, dataset: Dataset | None) -> str | None:
    """For a series model trained in the app on ``dataset``: the training period in rows and
    time, where its threshold comes from and what a lasting change does
    (:func:`aeviz_core.trust.threshold_origin`); None for other models."""
    from .trust import threshold_origin

    det = entry.detector
    if getattr(det, "input_kind_", None) != "series" or dataset is None or dataset.is_images:
        return None
    settings = entry.settings or {}
    start = int(settings.get("train_start") or 0)
    end = int(settings.get("train_end") or dataset.n_items)
    rows = end - start if dataset.anomaly is None else int((np.asarray(dataset.anomaly[start:end]) == 0).sum())
    time = dataset.sensor.time
    return threshold_origin(det, rows, None if time is None else time.iloc[start:end])


def unique_name(base: str, taken) -> str:
    """``base``, or ``base (2)``, ``base (3)``... not in ``taken``."""
    if base not in taken:
        return base
    i = 2
    while f"{base} ({i})" in taken:
        i += 1
    return f"{base} ({i})"


class BackgroundJob:
    """Work in a background thread, polled by a page: a rerun of the page (any click) does not lose
    it. Subclasses set ``_thread`` (a thread on :meth:`_run`) and implement :meth:`_work`; an error
    (DataError, TrainingError, DecisionError...) becomes ``error``, one line, never a traceback."""

    error: str | None = None
    finished: float | None = None

    def start(self):
        self._thread.start()
        return self

    def _work(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Drop the inputs once the work has ended."""

    def _run(self):
        try:
            self._work()
        except (ValueError, RuntimeError, MemoryError) as exc:  # DataError, TrainingError...
            self.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        except Exception as exc:  # noqa: BLE001  (shown to the user, never a traceback)
            self.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        finally:
            self._release()
            self.finished = _time.time()

    @property
    def done(self) -> bool:
        return self.finished is not None

    def wait(self, timeout=None) -> bool:
        self._thread.join(timeout)
        return self.done


class TrainingJob(BackgroundJob):
    """A training running in a background thread, polled by the Train page.

    The page cannot train in its own script run: a click on *Stop* reruns the
    script, which would abort ``fit`` and lose the model. Here ``fit`` runs in
    a thread; the page polls ``history``/``done``; *Stop* sets ``stop``, and
    the detector keeps the weights reached so far. ``y`` (from :func:`training_data`)
    goes to ``fit`` as ``anomalous``.
    """

    def __init__(self, detector, X, y, *, name: str, dataset: Dataset, settings: TrainSettings):
        self.detector = detector
        self.name = name
        self.dataset_key = dataset.key
        self.dataset_name = dataset.name
        self.settings = settings
        self.stop = threading.Event()
        self.history: list[dict] = []
        self.error: str | None = None
        self.started = _time.time()
        self.finished: float | None = None
        self._X, self._y = X, y
        self._thread = threading.Thread(target=self._run, name=f"aeviz-train-{name}", daemon=True)

    def _progress(self, info):
        self.history.append({"epoch": info.epoch, "epochs": info.epochs, "loss": info.loss,
                             "val_loss": info.val_loss})

    def _work(self):
        self.detector.fit(self._X, anomalous=self._y, progress=self._progress, stop=self.stop)

    def _release(self):
        self._X = self._y = None

    @property
    def epochs(self) -> int:
        return int(self.settings.epochs)

    def entry(self) -> ModelEntry:
        """The finished model as a :class:`ModelEntry` (only when ``done`` without error)."""
        return ModelEntry(name=self.name, detector=self.detector, dataset_key=self.dataset_key,
                          dataset_name=self.dataset_name, settings=self.settings.to_dict())


class RefitJob(BackgroundJob):
    """A refit from operators' decisions (:func:`aeviz_core.feedback.refit`) running in a background
    thread, polled by the Review page like :class:`TrainingJob`: a rerun of the page (any click)
    does not lose it. ``result`` is the :class:`~aeviz_core.feedback.Refit` when it is done."""

    def __init__(self, detector, X, decisions, *, parent: ModelEntry, data_fingerprint: str, reviewer: str):
        self.parent = parent
        self.data_fingerprint = data_fingerprint
        self.reviewer = reviewer
        self.decisions = decisions
        self.stop = threading.Event()
        self.history: list[dict] = []
        self.epochs = int(detector.refine_epochs())
        self.result = None
        self.error: str | None = None
        self.finished: float | None = None
        self._args = (detector, X)
        self._thread = threading.Thread(target=self._run, name=f"aeviz-refit-{parent.name}", daemon=True)

    def _progress(self, info):
        self.history.append({"epoch": info.epoch, "epochs": info.epochs, "loss": info.loss})

    def _work(self):
        from .feedback import refit

        detector, X = self._args
        self.result = refit(detector, X, self.decisions, epochs=self.epochs, progress=self._progress, stop=self.stop)

    def _release(self):
        self._args = None

    def entry(self, taken) -> ModelEntry:
        """The new version as a :class:`ModelEntry` named after its parent (``NAME v2``, ...), with
        its lineage in its settings (only when ``done`` without error)."""
        parent = self.parent
        base = parent.name.rsplit(" v", 1)[0] if parent.settings.get("parent") else parent.name
        version = int(parent.settings.get("version", 1)) + 1
        name = unique_name(f"{base} v{version}", taken)
        settings = {**parent.settings, "parent": parent.name, "parent_model_id": parent.detector.model_id_,
                    "version": version, "decisions": int(len(self.result.decisions))}
        return ModelEntry(name=name, detector=self.result.detector, dataset_key=parent.dataset_key,
                          dataset_name=parent.dataset_name, settings=settings, source="refit")


# --------------------------------------------------------------------------- latent helpers


def window_means(values, starts, window: int | None) -> np.ndarray:
    """Mean of ``values`` (per row) over each window ``[s, s + window)``.

    With ``window=None`` returns ``values[starts]``. Used to give each latent
    point of a series its window's error (or the share of flagged rows).
    """
    values = np.asarray(values, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    if window is None:
        return values[starts]
    csum = np.concatenate([[0.0], np.cumsum(values)])
    return (csum[starts + window] - csum[starts]) / window


def latent_inputs(dataset: Dataset, detector) -> np.ndarray:
    """What each latent point encodes, flattened, for the quality numbers:
    image pixels, or a series' windows (at the model's stride) with each channel
    standardised. Shape ``(n_points, n_features)``, float32."""
    if dataset.is_images or detector.window is None:
        return np.asarray(dataset.X, dtype=np.float32).reshape(dataset.n_items, -1)
    X = dataset.X.astype(np.float32)
    std = np.nanstd(X, axis=0)  # rows of a gap are NaN, and so are the windows that touch them
    X = (X - np.nanmean(X, axis=0)) / np.where(std > 0, std, 1.0)
    w = int(detector.window)
    starts = detector.latent_starts(len(X))
    view = np.lib.stride_tricks.sliding_window_view(X, w, axis=0)  # (n - w + 1, c, w)
    return np.ascontiguousarray(view[starts]).reshape(len(starts), -1)


def latent_frame(coords, *, dataset: Dataset, detector, row_errors, threshold) -> pd.DataFrame:
    """One line per latent point: ``idx, [x, y, z], error, flag, class, [time], row``.

    ``coords`` (one row per point, 2 or 3 columns) may be None: the caller
    then adds the coordinates of the points it projects.

    For a series each point is a window: ``row`` is its first row, ``error``
    the mean row error over the window, ``flag`` "flagged" when any row of the
    window is above ``threshold``, ``class`` the most anomalous label inside it.
    For images/tables a point is an item.
    """
    errors = np.asarray(row_errors, dtype=np.float64)
    if dataset.is_images or detector.window is None:
        n = len(errors)
    else:
        n = len(detector.latent_starts(dataset.n_items))
    frame = pd.DataFrame({"idx": np.arange(n, dtype=np.int64)})
    if coords is not None:
        coords = np.asarray(coords)
        if len(coords) != n:
            raise ValueError(f"coords must have one row per latent point ({n}), got {len(coords)}")
        for name, j in zip("xyz", range(coords.shape[1]), strict=False):
            frame[name] = coords[:, j]
    flagged_rows = (errors > threshold).astype(np.float64)
    if dataset.is_images or detector.window is None:
        frame["error"] = errors
        frame["flag"] = np.where(flagged_rows > 0, "flagged", "normal")
        if dataset.classes is not None:
            frame["class"] = np.asarray(dataset.classes).astype(str)
        if dataset.time is not None:
            frame["time"] = dataset.time.to_numpy()
        frame["row"] = np.arange(n, dtype=np.int64)
        return frame
    starts = detector.latent_starts(dataset.n_items)
    w = int(detector.window)
    frame["row"] = starts
    frame["error"] = window_means(errors, starts, w)
    frame["flag"] = np.where(window_means(flagged_rows, starts, w) > 0, "flagged", "normal")
    if dataset.anomaly is not None and dataset.classes is not None:
        share = window_means(dataset.anomaly, starts, w)
        # the window's class: its labelled fault when any row is anomalous
        classes = np.asarray(dataset.classes).astype(str)
        last = np.minimum(starts + w - 1, len(classes) - 1)
        mid = np.minimum(starts + w // 2, len(classes) - 1)
        pick = np.where(classes[mid] != "normal", classes[mid],
                        np.where(classes[last] != "normal", classes[last], classes[starts]))
        frame["class"] = np.where(share > 0, pick, "normal")
    if dataset.time is not None:
        frame["time"] = dataset.time.to_numpy()[starts]
    return frame


def rates_at(flags, labels) -> dict:
    """The threshold-dependent half of ``detection_metrics`` (counts, precision,
    recall, F1, false- and missed-alarm rates) for flags already computed.

    ``detection_metrics`` also ranks every score for the ROC and PR AUCs, which do
    not depend on the threshold; the Anomalies page computes those once per model
    (cached) and these on every threshold move. NaN where a ratio is 0 / 0.
    """
    f = np.asarray(flags, dtype=bool)
    y = np.asarray(labels).astype(bool)
    tp = int(np.count_nonzero(f & y))
    fp = int(np.count_nonzero(f & ~y))
    fn = int(np.count_nonzero(~f & y))
    tn = int(y.size - tp - fp - fn)

    def ratio(a, b):
        return float(a / b) if b else float("nan")

    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "false_alarm_rate": ratio(fp, fp + tn), "missed_alarm_rate": ratio(fn, tp + fn)}


def evaluation_labels(entry: ModelEntry, dataset: Dataset):
    """The labels a model is judged by on ``dataset``, and the rows to judge it on.

    A series: its 0/1 anomaly labels, judged after the training period when the
    model was trained on this very data set (its training rows would flatter it).
    Images: anomalous = a class left out of the model's normal classes (no
    labels when it trained on every class).

    Returns
    -------
    labels : ndarray of int8, shape (n_items,), or None
    mask : ndarray of bool, shape (n_items,)
        True for the rows/items to evaluate on.
    """
    mask = np.ones(dataset.n_items, dtype=bool)
    labels = None
    if not dataset.is_images:
        if dataset.anomaly is not None:
            labels = np.asarray(dataset.anomaly, dtype=np.int8)
        end = entry.settings.get("train_end")
        if entry.dataset_key == dataset.key and end and int(end) < dataset.n_items:
            mask[: int(end)] = False
    elif entry.settings.get("normal_classes"):
        normal = {str(c) for c in entry.settings["normal_classes"]}
        labels = np.array([0 if str(c) in normal else 1 for c in dataset.classes], dtype=np.int8)
    return labels, mask
