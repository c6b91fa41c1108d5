"""The session: its documented keys, the current data set, the models it trained or loaded,
the threshold and merge gap chosen per model, and the loaders and pickers every page uses.

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

Caching rules
-------------
* ``st.cache_resource`` for models (shared by every session: never mutated;
  pages call ``detector.with_threshold``), ``st.cache_data`` for frames and
  arrays (each caller gets a copy).
* Streamlit hashes a large frame or array from a sample, so every function
  that takes one takes it as an unhashed ``_argument`` together with an
  explicit version key (a model's ``model_id_``, a data set's ``key``): the
  key, not the array, decides what is cached, and a new model or new data can
  never be answered from a stale entry.
"""

from __future__ import annotations

import contextvars
import io
import math
import os
import time as _time
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

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
        from aeviz_core.scores import anomaly_column, normal_mask

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
    from aeviz_core.trust import threshold_origin

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


# --------------------------------------------------------------------------- latent helpers


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


# --------------------------------------------------------------------------- pages

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"

#: sample id -> label in the Data page's picker
SAMPLES = {
    "pump": "Pump station (7 sensors, 43,200 rows at 1 Hz)",
    "digits": "UCI digits (1,797 images, 8x8)",
    "mnist": "MNIST (10,000 images, 28x28)",
}
TRAIN_PAGE = "pages/2_train.py"


# --------------------------------------------------------------------------- data


class PageStop(Exception):
    """Raised by :func:`stop`: the page ends here and the router still draws the shared sidebar."""


#: True while the router (``streamlit_app.py``) runs a page: it catches :class:`PageStop`
ROUTED = contextvars.ContextVar("aeviz_routed", default=False)


def stop():
    """End the page here, like ``st.stop()``, but, under the router, leave the rest of the run to
    it: it draws the shared sidebar after every page, which ``st.stop()`` would drop. A page run
    on its own (``AppTest.switch_page``) stops with ``st.stop()``."""
    if ROUTED.get():
        raise PageStop
    st.stop()


@st.cache_data(show_spinner="Loading the sample...", max_entries=4)
def load_sample(sample: str) -> Dataset:
    """A bundled sample as a :class:`Dataset` (``pump``, ``digits``, ``mnist``)."""
    from aeviz_core import load_mnist, load_sensor_table, load_uci_digits

    if sample == "pump":
        data = load_sensor_table(SAMPLE_DIR / "pump_station.csv")
        ds = Dataset.from_sensor(data, "pump_station.csv")
    elif sample == "digits":
        X, y = load_uci_digits()
        ds = Dataset.from_images(X.reshape(-1, 8, 8), y, "UCI digits")
    elif sample == "mnist":
        X, y = load_mnist(10000)
        ds = Dataset.from_images(X, y, "MNIST (10,000)")
    else:
        raise ValueError(f"sample must be one of {sorted(SAMPLES)}, got {sample!r}")
    ds.source = f"sample:{sample}"
    return ds


@st.cache_data(show_spinner="Reading the file...", max_entries=4)
def load_upload(content: bytes, name: str, sep: str | None = None, time_col: str | None = None,
                drop: tuple = (), label_cols: tuple | None = None) -> Dataset:
    """An uploaded CSV/Parquet table as a :class:`Dataset`; raises ``DataError``."""
    from aeviz_core import load_sensor_table

    buffer = io.BytesIO(content)
    buffer.name = name
    data = load_sensor_table(buffer, sep=sep, time_col=time_col or None, drop=list(drop),
                             label_cols=None if label_cols is None else list(label_cols))
    ds = Dataset.from_sensor(data, name)
    ds.source = f"upload:{name}:{ds.key}"
    return ds


def column_list(text: str) -> tuple:
    """``"a, b"`` -> ``("a", "b")`` (names typed in a text box)."""
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


def pump_dataset() -> Dataset:
    return load_sample("pump")


# --------------------------------------------------------------------------- session


def keep_keras_between_runs() -> None:
    """Stop Streamlit from clearing Keras after every script run.

    After each run (a fragment's too: the sidebar's progress, every second) Streamlit calls
    ``keras.backend.clear_session()``, which empties TensorFlow's kernel cache and runs a full
    garbage collection while a model trains in the background: training in the app ran 4-25
    times slower than the same fit outside it (6 epochs of the pump sample: 160 s against 6 s).
    The app builds its models in background jobs and keeps them in caches, so nothing piles up
    in Keras's global state between runs; matplotlib is still closed as Streamlit does."""
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner._clean_problem_modules
    if getattr(original, "keeps_keras", False):
        return

    def clean_without_keras() -> None:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    clean_without_keras.keeps_keras = True
    clean_without_keras.streamlit_own = original
    script_runner._clean_problem_modules = clean_without_keras


def setup() -> None:
    """Set the documented session keys once and collect a finished training."""
    keep_keras_between_runs()
    init_session(st.session_state, pump_dataset)
    collect_training()


#: the page a session asked for by its own address before the router ever ran (a bookmark)
DEEP_LINK = "app.deep_link"


def dataset() -> Dataset:
    """The session's data set. A page opened by its own address (a bookmark, a shared link)
    before the router ran in the session runs without it, and has none yet: the router runs
    first and then opens that page (:data:`DEEP_LINK`)."""
    if DATASET not in st.session_state:
        page = Path(sys._getframe(1).f_globals.get("__file__") or "")
        st.session_state[DEEP_LINK] = f"pages/{page.name}" if page.parent.name == "pages" else None
        st.switch_page("streamlit_app.py")
    return st.session_state[DATASET]


def set_dataset(ds: Dataset) -> None:
    """Make ``ds`` the session's data set (models stay; pages show those that fit)."""
    st.session_state[DATASET] = ds


def collect_training() -> ModelEntry | None:
    """Move a finished background training into ``models``; returns the new entry. Whichever run
    collects it (the sidebar's progress, or the next page the user opens), the end is announced
    (``app.trained_notice``, a toast from the router)."""
    job = st.session_state.get(TRAIN_JOB)
    if job is None or not job.done:
        return None
    st.session_state[TRAIN_JOB] = None
    if job.error:
        st.session_state["train.last_error"] = job.error
        st.session_state[TRAINED_NOTICE] = f"Training of {job.name} failed: see the Train page."
        return None
    entry = job.entry()
    add_model(entry)
    st.session_state["train.last_done"] = entry.name
    st.session_state[TRAINED_NOTICE] = f"Training finished: **{entry.name}** is ready."
    return entry


#: the end of a training, said once by the router (a toast) on the run after it was collected
TRAINED_NOTICE = "app.trained_notice"


def add_model(entry: ModelEntry) -> None:
    models = st.session_state[MODELS]
    entry.name = unique_name(entry.name, [n for n, e in models.items() if e is not entry])
    models[entry.name] = entry
    st.session_state[ACTIVE_MODEL] = entry.name


def compatible_models(ds: Dataset) -> dict[str, ModelEntry]:
    """Models of the session that can score ``ds`` (same channels, item shape)."""
    out = {}
    for name, entry in st.session_state[MODELS].items():
        if model_problem(entry, ds) is None:
            out[name] = entry
    return out


def model_problem(entry: ModelEntry, ds: Dataset) -> str | None:
    """Why ``entry`` cannot score ``ds`` (one line), or None when it can."""
    det = entry.detector
    if ds.is_images:
        if det.input_kind_ == "images":
            ok = tuple(det.item_shape_[:2]) == ds.image_shape
        else:
            ok = det.input_kind_ == "table" and det.n_features_in_ == int(np.prod(ds.image_shape))
        return None if ok else f"{entry.name} was trained on other items than {ds.name}'s images"
    if det.input_kind_ not in ("series", "table"):
        return f"{entry.name} scores {det.input_kind_}, not a sensor table"
    problem = det.mismatch((ds.n_items, len(ds.channel_names)), ds.channel_names)
    return None if problem is None else f"{entry.name} cannot score {ds.name}: {problem}"


def need_model(ds: Dataset, *, what: str) -> None:
    """The message a page shows when no model fits the current data set."""
    st.info(f"No model fits **{ds.name}** yet: train one (or load a saved one) to see {what}.",
            icon=":material/model_training:")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/arrow_forward:")


def models_or_stop(ds: Dataset, *, what: str) -> dict[str, ModelEntry]:
    """The models that fit ``ds``; with none, the :func:`need_model` message and :func:`stop`."""
    models = compatible_models(ds)
    if not models:
        need_model(ds, what=what)
        stop()
    return models


def pick_model(models: dict[str, ModelEntry], *, key: str) -> ModelEntry:
    """A model selectbox that follows and sets ``active_model``."""
    names = list(models)
    active = st.session_state.get(ACTIVE_MODEL)
    index = names.index(active) if active in names else len(names) - 1
    name = st.selectbox("Model", names, index=index, key=key,
                        format_func=lambda n: f"{n}  ({models[n].detector.model}, latent {models[n].detector.latent_dim_})")
    st.session_state[ACTIVE_MODEL] = name
    return models[name]


def thresholded(entry: ModelEntry):
    """The entry's detector with the threshold chosen on the Anomalies page (a copy)."""
    choice = st.session_state[THRESHOLDS].get(entry.name)
    if choice is None:
        return entry.detector
    try:
        return entry.detector.with_threshold(*choice)
    except ValueError:
        return entry.detector


def threshold_source(entry: ModelEntry, ds: Dataset) -> str:
    """Where the threshold in use comes from, for a caption: the model's own, or set on the
    Anomalies page (and on which data, when it was another)."""
    if entry.name not in st.session_state[THRESHOLDS]:
        return "the model's own"
    where = st.session_state.setdefault(THRESHOLD_DATA, {}).get(entry.name)
    return "set on the Anomalies page" + (f" for {where}" if where and where != ds.name else "")


def merge_gap(entry: ModelEntry) -> int:
    """The events' merge gap of this model in this session: what the Anomalies or Review page set,
    else the model's own (``event_gap``, saved with it; what ``aeviz score --events`` uses)."""
    return int(st.session_state[MERGE_GAPS].get(entry.name, entry.detector.event_gap_rows()))


def merge_gap_input(box, entry: ModelEntry, *, key: str) -> int:
    """One merge-gap setting per model, shown on the Anomalies and Review pages alike, so both
    list the same events."""
    def keep():
        st.session_state[MERGE_GAPS][entry.name] = int(st.session_state[key])

    st.session_state[key] = merge_gap(entry)
    return int(box.number_input("Merge flagged runs at most this many rows apart", 0, 10_000, key=key,
                                on_change=keep,
                                help="Runs of flagged rows closer than this are one event, on the Anomalies "
                                     "and Review pages alike (default: the model's event_gap, as the CLI)."))


# --------------------------------------------------------------------------- cached computations


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def load_saved_model(path: str, mtime: float):
    """A model directory, loaded once per (path, modification time) and shared."""
    from aeviz_core import load_detector

    return load_detector(path)


# --------------------------------------------------------------------------- model directory


def saved_models(model_dir: str) -> list[Path]:
    """Model directories (holding ``aeviz.json``) directly under ``model_dir``."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "aeviz.json").is_file())


def safe_dir_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip())
    return keep.strip("-.") or "model"


def upload_dir(model_dir: str) -> str:
    root = Path(model_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="upload-", dir=root)
    except OSError:
        return tempfile.mkdtemp(prefix="aeviz-upload-")


def fmt(value, digits: int = 3) -> str:
    """A number for a metric tile: NaN as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def stopped_early(det) -> bool:
    """Whether early stopping ended the fit before its epochs (a stop request is not counted)."""
    if getattr(det, "interrupted_", False):
        return False
    return 0 < len((getattr(det, "history_", None) or {}).get("loss", [])) < det.training_plan().epochs
