"""Training in the app: the Train form's settings, the rows a model trains on, and the background
jobs that train a model or refit one from operators' decisions while the page keeps drawing
(a rerun never loses them); the Compare page's AE/VAE pairs, trained once and shared."""

from __future__ import annotations

import threading
import time as _time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_core.settings import check_settings

from .session import Dataset, ModelEntry, unique_name


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
        from aeviz_core.feedback import refit

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


@st.cache_resource(show_spinner=False)
def _pairs() -> dict:
    """The Compare page's trained pairs, by settings, shared by every session (at most
    ``PAIRS_KEPT``, the oldest dropped). Trained outside a cached function, so that the page can
    draw their progress, then kept here and never changed."""
    return {}


PAIRS_KEPT = 4


def _kept_pair(key: tuple, train):
    pairs = _pairs()
    if key not in pairs:
        pair = train()
        pairs[key] = pair
        while len(pairs) > PAIRS_KEPT:
            pairs.pop(next(iter(pairs)))
    return pairs[key]


def compare_pair(weighting: str, beta: float, epochs: int, latent_dim: int, seed: int,
                 held_out: int | None = None, progress=None):
    """An AE and a VAE trained on the UCI digits with the same architecture, shared
    by all sessions (the Compare page's pair); ``held_out`` digit is left out of training.
    ``progress(model_label, EpochInfo)`` hears each epoch while they train."""
    def train():
        from aeviz_core import load_uci_digits

        X, digit = load_uci_digits()
        y = None if held_out is None else (digit == held_out).astype(np.int8)
        common = {"latent_dim": latent_dim, "hidden": (256, 128), "epochs": epochs, "batch_size": 64,
                  "scaling": "global", "random_state": seed, "patience": 8}
        return _train_pair(common, X, y, weighting, beta, progress)

    return _kept_pair(("digits", weighting, beta, epochs, latent_dim, seed, held_out), train)


def compare_pair_series(ds: Dataset, weighting: str, beta: float, epochs: int, latent_dim: int, seed: int,
                        progress=None):
    """An AE and a VAE of the same architecture on the windows of a sensor data set, with the
    Train page's defaults for a series (windows of 32 rows, stride 4, the rows labelled anomalous
    left out), shared by all sessions."""
    def train():
        settings = default_settings(ds)
        X, y = training_data(ds, settings)
        common = {**settings.detector_params(ds), "latent_dim": latent_dim, "epochs": epochs,
                  "random_state": seed}
        for own in ("model", "beta", "vae_weighting", "neighbor_weight"):  # the pair sets these itself
            common.pop(own, None)
        return _train_pair(common, X, y, weighting, beta, progress)

    return _kept_pair((ds.key, weighting, beta, epochs, latent_dim, seed), train)


def _train_pair(common: dict, X, y, weighting: str, beta: float, progress):
    from aeviz_core import AutoencoderDetector

    def hook(label):
        return None if progress is None else (lambda info: progress(label, info))

    # a plain AE: the pair differs only in the variational part and its KL term
    ae = AutoencoderDetector(model="ae", neighbor_weight=0.0, **common).fit(X, anomalous=y, progress=hook("AE"))
    vae = AutoencoderDetector(model="vae", beta=beta, vae_weighting=weighting, **common).fit(
        X, anomalous=y, progress=hook("VAE"))
    return ae, vae
