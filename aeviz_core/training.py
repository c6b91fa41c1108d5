"""Training: the inputs a Keras fit reads, train / validation splits, progress and stop hooks.

:class:`~aeviz_core.detector.AutoencoderDetector` calls these while it fits; they hold no
model state of their own.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import keras
import numpy as np

from .data import mask_runs
from .models import build_model
from .windows import window_starts

__all__ = ["EpochInfo", "TrainingCallback", "TrainingError", "train_model"]

#: latent_dim="auto": the code of a table or images holds this share of the scaled training
#: items' variance (principal components, measured on up to AUTO_LATENT_SAMPLE items), within
#: AUTO_LATENT_RANGE; a series gets AUTO_SERIES_LATENT
AUTO_LATENT_VARIANCE = 0.9
AUTO_LATENT_RANGE = (2, 32)
AUTO_LATENT_SAMPLE = 5000
AUTO_SERIES_LATENT = 16
#: on TensorFlow a fit of at most this many steps runs eagerly: tracing its training and
#: validation steps costs 2-3 s, more than running that many steps op by op (12 ms a step for a
#: small series model, 75 ms for the digits' default with its neighbour term; 2 CPU cores). On
#: JAX op-by-op dispatch is slower than its compile (a 4-model check took 80 s against 38 s)
EAGER_STEPS = 64


class TrainingError(RuntimeError):
    """Training could not finish (the loss became NaN, memory ran out, ...)."""


@dataclass(frozen=True)
class EpochInfo:
    """What the ``progress`` hook of :meth:`AutoencoderDetector.fit` receives each epoch."""

    epoch: int  # 1-based
    epochs: int
    loss: float
    val_loss: float | None
    logs: dict = field(default_factory=dict)
    #: the Keras model being trained, for a look at it between epochs (e.g. a
    #: live latent); read it, never change it
    model: object = field(default=None, repr=False, compare=False)


class TrainingCallback(keras.callbacks.Callback):
    """Forwards each epoch to ``progress(EpochInfo)`` and stops when ``stop.is_set()``."""

    def __init__(self, epochs, progress=None, stop=None):
        super().__init__()
        self.epochs = epochs
        self.progress = progress
        self.stop = stop
        self.interrupted = False

    def _check_stop(self):
        if self.stop is not None and self.stop.is_set():
            self.interrupted = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._check_stop()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.progress is not None:
            val = logs.get("val_loss")
            self.progress(EpochInfo(epoch + 1, self.epochs, float(logs.get("loss", math.nan)),
                                    None if val is None else float(val), logs, model=self.model))
        self._check_stop()


def weights_fingerprint(model) -> str:
    """Identity of a trained model: a hash of its config and weights."""
    h = hashlib.sha256(repr(model.get_config()).encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def data_fingerprint(X: np.ndarray) -> str:
    """Identity of the training data: a hash of its shape and values (as float32)."""
    h = hashlib.sha256()
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def normal_from_labels(anomalous, n):
    """``anomalous == 0`` as a mask of the items that may train (None without labels)."""
    if anomalous is None:
        return None
    anomalous = np.asarray(anomalous)
    if anomalous.shape != (n,):
        raise ValueError(f"anomalous must have one label per item ({n}), got shape {anomalous.shape}")
    normal = anomalous == 0
    if not normal.any():
        raise ValueError("anomalous marks every item as anomalous: nothing normal to train on")
    return normal


def auto_latent_dim(train: np.ndarray, kind: str) -> int:
    """``latent_dim="auto"``: for a table or images the number of principal components holding
    ``AUTO_LATENT_VARIANCE`` of the scaled training items' variance (within
    ``AUTO_LATENT_RANGE``), so the code is as narrow as the data's structure allows and what
    does not fit it shows as error; for series and windows ``AUTO_SERIES_LATENT``."""
    if kind in ("series", "windows"):
        return AUTO_SERIES_LATENT
    items = train.reshape(len(train), -1).astype(np.float64)
    if len(items) > AUTO_LATENT_SAMPLE:
        items = items[np.random.default_rng(0).choice(len(items), AUTO_LATENT_SAMPLE, replace=False)]
    items = items - items.mean(axis=0)
    power = np.linalg.svd(items, compute_uv=False) ** 2
    if not power.sum() > 0:
        return AUTO_LATENT_RANGE[0]
    needed = int(np.searchsorted(np.cumsum(power) / power.sum(), AUTO_LATENT_VARIANCE)) + 1
    return int(np.clip(needed, *AUTO_LATENT_RANGE))


def trainable_rows(X: np.ndarray, normal, window: int) -> np.ndarray:
    """Rows a series may train on: normal (when labelled) and without a missing value; a clear
    error when no stretch of them is long enough."""
    finite = ~np.isnan(X).any(axis=1)
    usable = finite if normal is None else normal & finite
    longest = max((b - a for a, b in mask_runs(usable)), default=0)
    if longest < window + 2:
        raise ValueError(
            f"the series has no stretch of {window + 2} rows (window + 2) without a gap"
            + ("" if normal is None else " or a labelled anomaly")
            + f" to train on; the longest is {longest} rows"
        )
    return usable


def series_windows(Xs: np.ndarray, window: int, stride: int, normal=None) -> np.ndarray:
    """Windows of a series to train on, every ``stride`` rows (only all-normal ones when
    masked): views ``(n_windows, window, channels)``, no copies."""
    starts = window_starts(len(Xs), window, stride)
    if normal is not None:
        bad = np.concatenate([[0], np.cumsum(~normal)])
        starts = starts[bad[starts + window] - bad[starts] == 0]
        if len(starts) < 2:
            raise ValueError(f"fewer than 2 windows of {window} rows lie entirely in normal rows")
    view = np.lib.stride_tricks.sliding_window_view(Xs, window, axis=0).transpose(0, 2, 1)
    return view[starts]


def split_items(Xs, normal, fraction: float, shuffle: bool, rng):
    """Train / validation items of a table, images or windows (shuffled first when
    ``shuffle``); validation None when ``fraction`` rounds to no item."""
    items = Xs if normal is None else Xs[normal]
    n_val = int(round(len(items) * fraction))
    if len(items) - n_val < 2:
        raise ValueError(f"too few items to train: {len(items)} (need at least {n_val + 2})")
    if shuffle:
        items = items[rng.permutation(len(items))]
    return (items[:-n_val], items[-n_val:]) if n_val else (items, None)


def split_series(Xs, normal, window: int, stride: int, fraction: float):
    """Training and validation windows of a series, and the rows that fit the threshold.

    The held-out rows are blocks spread over the whole training period
    (``fraction`` of its rows, at least two windows' worth), not its last
    rows: a slow change, a shift of regime or a fault near the end of the
    period then cannot make the whole threshold. No training window touches
    a held-out row, so their scores are honest. With too few rows to hold
    any out, the training rows fit the threshold.

    Returns
    -------
    train, val : window arrays (``val`` None without held-out rows)
    held : bool mask of the rows whose scores fit the threshold
    """
    n, w = len(Xs), window
    n_val = max(int(round(n * fraction)), 2 * w) if fraction > 0 else 0
    if n_val and n - n_val >= 4 * w:
        blocks = int(np.clip(n_val // (8 * w), 1 if n_val < 4 * w else 2, 10))
        length = n_val // blocks
        held = np.zeros(n, bool)
        for centre in (np.arange(blocks) + 0.5) * n / blocks:
            a = int(centre) - length // 2
            held[max(a, 0) : a + length] = True
        try:
            train = series_windows(Xs, w, stride, normal & ~held)
            val = series_windows(Xs, w, stride, normal & held)
            return train, val, normal & held
        except ValueError:  # the held-out blocks hold no whole window of normal rows
            pass
    return series_windows(Xs, w, stride, normal), None, normal.copy()


def fit_inputs(train, val, batch_size: int, seed) -> dict:
    """The data arguments of ``model.fit``.

    On TensorFlow the arrays become repeated ``tf.data`` pipelines read
    for a fixed number of steps per epoch: Keras then keeps one iterator
    for the whole run instead of building one per epoch, which on small
    data cost more than the epoch's training steps. Other backends get the
    arrays.
    """
    if keras.backend.backend() != "tensorflow":
        return {"x": train, "y": train, "batch_size": batch_size, "shuffle": True,
                "validation_data": None if val is None else (val, val)}
    import tensorflow as tf

    seed = seed if seed is not None else np.random.default_rng().integers(2**31)

    def repeated(items, shuffle):
        # shuffle row indices and gather whole batches: a shuffle buffer of
        # the items themselves would copy them one by one. Each epoch's
        # order is a stateless function of (seed, epoch), untouched by
        # TensorFlow's process-wide seed.
        n = len(items)
        items = tf.constant(items)
        if shuffle:
            def permutation(epoch):
                seeds = tf.stack([tf.constant(int(seed), tf.int64), epoch])
                return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seeds)

            batches = tf.data.Dataset.counter().map(permutation).flat_map(
                lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        else:
            batches = tf.data.Dataset.range(n).batch(batch_size).repeat()

        def gather(rows):
            batch = tf.gather(items, rows)
            return batch, batch

        return batches.map(gather).prefetch(2)

    steps = math.ceil(len(train) / batch_size)
    inputs = {"x": repeated(train, shuffle=True), "steps_per_epoch": steps, "shuffle": False}
    if val is not None:
        inputs["validation_data"] = repeated(val, shuffle=False)
        inputs["validation_steps"] = math.ceil(len(val) / batch_size)
    return inputs


def train_model(detector, plan, train, val, progress=None, stop=None, *, start_from=None, learning_rate=None):
    """Build, compile and fit ``detector``'s autoencoder on the ``train`` items (windows), with
    ``val`` watched by early stopping; the settings are the detector's parameters as ``plan``
    (:func:`~aeviz_core.settings.training_plan`) resolves them. ``start_from`` (a trained model
    of the same architecture) gives the starting weights of a fine-tune, ``learning_rate`` its
    peak rate (default the detector's).

    Returns ``(model, history, interrupted)``: the history as lists of floats per metric,
    ``interrupted`` True when ``stop`` ended the fit. The model's loss leaves out each batch's
    ``detector.trim_`` share of worst-rebuilt items (:func:`aeviz_core.models.trim_weights`).
    Raises :class:`TrainingError` when memory runs out or the loss diverges.
    """
    d = detector
    model = build_model(d.model, d.item_shape_, latent_dim=d.latent_dim_, hidden=plan.hidden,
                        activation=d.activation, beta=d.beta, weighting=d.vae_weighting, seed=d.random_state,
                        neighbor_weight=plan.neighbor_weight, trim=getattr(d, "trim_", 0.0))
    if start_from is not None:
        model(np.zeros((1, *d.item_shape_), dtype=np.float32))  # build, then take the weights
        model.set_weights(start_from.get_weights())
    steps = plan.epochs * math.ceil(len(train) / plan.batch_size)
    rate = float(d.learning_rate if learning_rate is None else learning_rate)
    schedule = keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=None if d.model.endswith("vae") else "mse",
                  run_eagerly=steps <= EAGER_STEPS and keras.backend.backend() == "tensorflow")
    # the optimizer's variables made now rather than inside the first traced step: TensorFlow
    # traces a step that creates variables twice (the pump station's refit: 4.6-5.5 s -> 3.7-4.3 s)
    model.optimizer.build(model.trainable_variables)
    hook = TrainingCallback(plan.epochs, progress, stop)
    callbacks = [keras.callbacks.TerminateOnNaN(), hook]
    if plan.early_stopping:
        # with the neighbour term, the reconstruction alone (see Autoencoder.compute_loss)
        watched = "reconstruction_loss" if plan.neighbor_weight > 0 else "loss"
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=f"val_{watched}" if val is not None else watched, patience=d.patience,
            mode="min", restore_best_weights=True, min_delta=1e-5))
    try:
        history = model.fit(**fit_inputs(train, val, plan.batch_size, d.random_state),
                            epochs=plan.epochs, callbacks=callbacks, verbose=d.verbose)
    except MemoryError:
        raise TrainingError("training ran out of memory: lower batch_size, the window or the number of rows") from None
    history = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    losses = history.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        raise TrainingError(
            f"training diverged: the loss became NaN or infinite at epoch {len(losses)}; "
            "lower learning_rate or check the data's scale"
        )
    return model, history, hook.interrupted
