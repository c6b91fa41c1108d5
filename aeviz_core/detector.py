"""``AutoencoderDetector``: a scikit-learn outlier detector around a Keras autoencoder.

Score direction, everywhere in aeviz:

* :meth:`AutoencoderDetector.reconstruction_error` and
  :meth:`~AutoencoderDetector.channel_errors`: **higher = worse**;
* :meth:`~AutoencoderDetector.anomaly_score` and
  :meth:`~AutoencoderDetector.channel_scores`: **higher = more anomalous**,
  the score that is thresholded (equal to the reconstruction error for
  tables, windows and images; a residual-energy test for series);
* :meth:`~AutoencoderDetector.score_samples`: scikit-learn's convention,
  **higher = more normal** (``-anomaly_score``);
* :meth:`~AutoencoderDetector.decision_function` ``= score_samples - offset_``
  with ``offset_ = -threshold_``: negative means flagged;
* :meth:`~AutoencoderDetector.predict`: ``+1`` normal, ``-1`` flagged
  (flagged when the anomaly score is strictly greater than ``threshold_``).

Inputs
------
* 2-D ``(n_items, n_features)`` with ``window=None``: a table, one item a row.
* 2-D ``(n_rows, n_channels)`` with ``window=W``: a time series, cut into
  windows of ``W`` rows internally. Errors are per **row**: each window's
  squared error at each time step is averaged over the windows that cover
  the row, so a fault is located on the rows where it happens, not smeared
  over the window. The latent (:meth:`transform`) is per window.
* 3-D ``(n_windows, window, n_channels)``: windows cut by the caller; items
  are windows (Conv1D for ``model="conv-ae"``).
* 4-D ``(n_images, height, width, channels)``: images (Conv2D for ``conv-ae``).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from .data import _runs
from .models import build_model, inference_function
from .thresholds import ThresholdRule
from .windows import SCALED_LIMIT, ChannelScaler, iter_window_batches, window_starts

__all__ = [
    "AutoencoderDetector",
    "EpochInfo",
    "ModelMismatchError",
    "TrainingCallback",
    "TrainingError",
]

MODELS = ("ae", "conv-ae", "vae", "conv-vae")
SCALINGS = ("channel", "global", "none")
LEVELS = ("range", "relative", "absolute")
#: how a series row is scored: 3 = the residual over a short stretch against both its held-out
#: scale and the channel's recent residual, stillness over a longer stretch against the channel's
#: recent activity; 2 = the residual over 2 * window - 1 rows against the held-out scale alone
#: (stillness the same, over the same rows); 1 = the two-sided residual test and stillness
#: against the training rows. Saved models keep their version.
SCORE_VERSION = 3
#: latent_dim="auto": the code of a table or images holds this share of the scaled training
#: items' variance (principal components, measured on up to AUTO_LATENT_SAMPLE items), within
#: AUTO_LATENT_RANGE; a series gets AUTO_SERIES_LATENT
AUTO_LATENT_VARIANCE = 0.9
AUTO_LATENT_RANGE = (2, 32)
AUTO_LATENT_SAMPLE = 5000
AUTO_SERIES_LATENT = 16


class ModelMismatchError(ValueError):
    """The data does not match the model (other channels, order, width or item shape)."""


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


def _weights_fingerprint(model) -> str:
    """Identity of a trained model: a hash of its config and weights."""
    h = hashlib.sha256(repr(model.get_config()).encode())
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _data_fingerprint(X: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


class AutoencoderDetector(OutlierMixin, BaseEstimator):
    """Anomaly detector scoring items by how badly an autoencoder rebuilds them.

    Parameters
    ----------
    model : {"ae", "conv-ae", "vae", "conv-vae"}, default "ae"
        Dense AE, convolutional AE (Conv1D on windows, Conv2D on images), or
        their variational versions.
    latent_dim : int or "auto", default "auto"
        Size of the code. ``"auto"`` serves detection: for a table or images,
        the number of principal components that hold 90% of the variance of
        the scaled training items (between 2 and 32), so the code is as narrow
        as the data's structure allows and what does not fit it shows as
        error; for a series, 16. ``latent_dim=2`` is the model meant to be
        looked at (its latent is drawn directly, with the neighbour term;
        the app trains it for images and tables).
    hidden : tuple of int or None, default None
        Dense units (``ae``/``vae``, default ``(256, 128)``) or conv filters
        per stride-2 block (``conv-*``, default ``(32, 64)``).
    activation : str, default "gelu"
    epochs : int or None, default None
        Upper bound; early stopping usually ends sooner. ``None``: 60, or
        150 while the neighbour term trains (its batches are 8 times larger,
        so an epoch holds 8 times fewer steps; such a fit runs them all, see
        ``early_stopping``).
    batch_size : int or None, default None
        ``None``: 512 while the neighbour term trains (it looks for each
        item's neighbours within the batch), else 64.
    learning_rate : float, default 3e-3
        Peak rate of Adam with cosine decay.
    beta : float, default 1.0
        KL weight of a VAE.
    vae_weighting : {"elbo", "demo"}, default "elbo"
        See :mod:`aeviz_core.models`; ``"demo"`` reproduces the collapse.
    window : int or None, default None
        Window length when a 2-D input is a time series; ``None`` = a table.
    stride : int, default 1
        Step between training windows (scoring always uses every window, so
        every row is scored the same way).
    smooth : int or None, default None
        Rows of residual averaged around each row by a series'
        :meth:`anomaly_score` (``None``: ``window - 1``; models saved before
        score version 3: ``2 * window - 1``, which smeared a short event's
        score over twice its neighbourhood).
    scaling : {"channel", "global", "none"}, default "channel"
        Per-channel standardisation (sensors in different units), one
        scale for all values (pixels), or none. Fitted in ``fit`` only.
    threshold : str, default "percentile"
        Threshold rule (see :mod:`aeviz_core.thresholds`).
    threshold_param : float or None
        The rule's parameter (rule default when None).
    validation_fraction : float, default 0.1
        Held-out share of the training items (the last ones for series and
        windows, a random share for tables and images): early stopping and the
        threshold use their errors, which are honest where training errors are
        optimistic.
    early_stopping : bool or "auto", default "auto"
        Stop when the validation loss has not improved for ``patience``
        epochs and keep the best weights. ``"auto"``: on, except while the
        neighbour term trains: its value on a validation batch (neighbours
        among fewer items) does not measure the layout the training batches
        refine, and the layout keeps improving after the reconstruction has
        levelled off (on the digits, trustworthiness 0.971 when stopped at
        epoch 82, 0.977 after the whole schedule), so such a fit runs its
        ``epochs``. ``True`` with the neighbour term watches the validation
        reconstruction alone.
    patience : int, default 8
    neighbor_weight : float or "auto", default "auto"
        Weight of a neighbour-embedding term (see
        :func:`aeviz_core.models.neighbor_embedding_loss`) that keeps items
        which are near in the input near in the latent, as t-SNE does, so a
        latent drawn directly shows the data's structure. ``"auto"``: 0.3 for
        an autoencoder with a 2-D or 3-D latent (a latent meant to be looked
        at), 0 otherwise (a larger latent is for detection, and is projected
        for viewing). Not available for VAEs, whose latent is shaped by the
        KL term.
    random_state : int or None
        Makes a run repeatable (weights, shuffling, VAE sampling).
    verbose : int, default 0
    level : {"range", "relative", "absolute"}, default "range"
        Series only: what the model makes of each channel's slow level, its
        centred running median over ``level_window`` rows. ``"range"``: the
        part of that level beyond the range it took in the training rows is
        taken out before scaling, so a temperature or redox reading that
        drifts over weeks past anything the training period saw is judged
        by how it moves and relates around its level, while within the
        trained range nothing changes. ``"relative"``: the running level is
        always taken out (the model sees only movement around it).
        ``"absolute"``: nothing is taken out (models saved before this
        option load with it). Anything that changes within about half the
        span (a step, a spike, a broken relation, a stuck sensor) stays in
        view either way.
    event_gap : int or "auto", default "auto"
        Flagged runs at most this many rows apart are one event
        (:mod:`aeviz_core.events`), wherever this model's events are listed:
        the app's pages, ``aeviz score --events``, the Dask events file.
        ``"auto"``: the window (0 for a table). Saved with the model.
    level_window : int or "auto", default "auto"
        Rows of the running median; ``"auto"``: ``32 * window + 1``.

    Attributes
    ----------
    model_ : keras.Model
    scaler_ : ChannelScaler or None
    threshold_ : float
        Flag when ``anomaly_score > threshold_``.
    channel_scale_ : ndarray (series only)
        Each channel's mean squared error on held-out normal rows.
    level_ : ndarray (series only)
        Each channel's median level in the training rows (what a detrended
        model's :meth:`decode` adds back).
    train_range_ : ndarray (series only), shape (2, n_channels)
        The 0.1st and 99.9th percentiles of each channel's raw readings in
        the normal training rows; :func:`aeviz_core.trust.trust_report`
        compares new data with it.
    threshold_source_ : {"held-out", "training"}
        Where ``fit_errors_`` come from: rows held out of training (blocks
        spread over the training period for a series), or the training
        items themselves when there were too few to hold any out (the
        threshold is then optimistic).
    step_scale_ : ndarray (series only)
        Each channel's mean squared step between consecutive normal rows
        (scaled units); 0 for a channel that holds still in normal rows
        (left out of the stillness test, see :meth:`anomaly_score`).
    offset_ : float
        ``-threshold_`` (scikit-learn's convention).
    fit_errors_ : ndarray
        Item errors the threshold was fitted on (held-out when available),
        kept so the threshold can move without retraining.
    n_features_in_ : int
    feature_names_in_ : ndarray of str (when fitted on a DataFrame)
    item_shape_ : tuple
    input_kind_ : {"table", "series", "windows", "images"}
    history_ : dict of lists
    interrupted_ : bool
        True when a stop request ended training early.
    fingerprint_ : str
        Hash of the training data.
    model_id_ : str
        Hash of the trained model's config and weights (keys operators' reviews).

    Examples
    --------
    >>> det = AutoencoderDetector(epochs=5, random_state=0).fit(X_train)  # doctest: +SKIP
    >>> det.predict(X_new)  # +1 normal, -1 flagged                   # doctest: +SKIP
    """

    def __init__(self, model="ae", latent_dim="auto", hidden=None, activation="gelu",
                 epochs=None, batch_size=None, learning_rate=3e-3, beta=1.0, vae_weighting="elbo",
                 window=None, stride=1, smooth=None, scaling="channel", threshold="percentile",
                 threshold_param=None, validation_fraction=0.1, early_stopping="auto",
                 patience=8, neighbor_weight="auto", random_state=None, verbose=0, level="range",
                 level_window="auto", event_gap="auto"):
        self.model = model
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta = beta
        self.vae_weighting = vae_weighting
        self.window = window
        self.stride = stride
        self.smooth = smooth
        self.scaling = scaling
        self.threshold = threshold
        self.threshold_param = threshold_param
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.neighbor_weight = neighbor_weight
        self.random_state = random_state
        self.verbose = verbose
        self.level = level
        self.level_window = level_window
        self.event_gap = event_gap

    # ------------------------------------------------------------------ validation
    def _validate_params(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        for name, low in (("latent_dim", 1), ("epochs", 1), ("batch_size", 1), ("patience", 1)):
            value = getattr(self, name)
            if (name in ("batch_size", "epochs") and value is None) or (name == "latent_dim" and value == "auto"):
                continue
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        weight = self.neighbor_weight
        if not (weight == "auto" or (isinstance(weight, (int, float, np.number)) and not isinstance(weight, bool)
                                     and 0 <= weight < math.inf)):
            raise ValueError(f"neighbor_weight must be 'auto' or a number >= 0, got {weight!r}")
        if weight != "auto" and weight > 0 and self.model.endswith("vae"):
            raise ValueError("neighbor_weight applies to autoencoders ('ae', 'conv-ae'), not to VAEs")
        if not (self.early_stopping == "auto" or isinstance(self.early_stopping, (bool, np.bool_))):
            raise ValueError(f"early_stopping must be True, False or 'auto', got {self.early_stopping!r}")
        if self.window is not None and (not isinstance(self.window, (int, np.integer)) or self.window < 2):
            raise ValueError(f"window must be None or an integer >= 2, got {self.window!r}")
        if not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ValueError(f"stride must be an integer >= 1, got {self.stride!r}")
        if self.smooth is not None and (not isinstance(self.smooth, (int, np.integer)) or self.smooth < 1):
            raise ValueError(f"smooth must be None or an integer >= 1, got {self.smooth!r}")
        if self.window is not None and self.stride > self.window:
            raise ValueError(f"stride must be <= window ({self.window}), got {self.stride}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")
        for name, low in (("level_window", 3), ("event_gap", 0)):
            value = getattr(self, name)
            if not (value == "auto" or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                                        and value >= low)):
                raise ValueError(f"{name} must be 'auto' or an integer >= {low} (rows), got {value!r}")
        if not 0.0 <= float(self.validation_fraction) < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        ThresholdRule(self.threshold, self.threshold_param).resolved()

    def _check_array(self, X, *, fitting=False) -> np.ndarray:
        """Turn X into a finite float32 array; remember or check its columns."""
        names = None
        if isinstance(X, pd.DataFrame):
            names = np.asarray([str(c) for c in X.columns], dtype=object)
            non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            if non_numeric:
                raise ValueError(f"column {non_numeric[0]!r} is not numeric: drop it or load it as a label")
            X = X.to_numpy(dtype=np.float64)
        try:
            X = np.asarray(X)
            if X.dtype.kind != "f":  # floats keep their precision (no float32 -> float64 copy)
                X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must be numeric: {exc}") from None
        if X.ndim < 2 or X.ndim > 4:
            raise ValueError(f"X must be 2-D, 3-D (windows) or 4-D (images), got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("X has no rows")
        series = X.ndim == 2 and (self.window is not None if fitting
                                  else getattr(self, "input_kind_", None) == "series")
        if series:  # a row with a missing value is a gap: no window spans it, it gets no score
            if np.isinf(X).any():
                X = np.where(np.isinf(X), np.nan, X)
        elif not np.isfinite(X).all():
            idx = np.argwhere(~np.isfinite(X))[0]
            what = "NaN" if np.isnan(X[tuple(idx)]) else "an infinite value"
            channel = idx[-1]
            label = repr(names[channel]) if names is not None and X.ndim == 2 else str(channel)
            raise ValueError(f"X contains {what} at item {idx[0]}, channel {label}")
        if fitting:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            self._check_compatible(X, names)
        return X

    def _check_compatible(self, X, names):
        check_is_fitted(self, "model_")
        expected = getattr(self, "feature_names_in_", None)
        if names is not None and expected is not None and list(names) != list(expected):
            missing = [c for c in expected if c not in set(names)]
            extra = [c for c in names if c not in set(expected)]
            if missing or extra:
                raise ModelMismatchError(
                    f"the data's channels do not match the model's: missing {missing}, unexpected {extra}"
                )
            raise ModelMismatchError(f"the data's channels are in another order than the model's: expected {list(expected)}")
        if X.shape[-1] != self.n_features_in_:
            raise ModelMismatchError(
                f"X has {X.shape[-1]} channels, the model was trained on {self.n_features_in_}"
            )
        if self.input_kind_ in ("windows", "images") and X.shape[1:] != self.item_shape_:
            raise ModelMismatchError(f"items have shape {X.shape[1:]}, the model expects {self.item_shape_}")
        if self.input_kind_ == "series" and X.ndim != 2:
            raise ModelMismatchError(f"the model scores a 2-D series (rows, channels), got shape {X.shape}")
        if self.input_kind_ == "series" and X.shape[0] < self.window:
            raise ModelMismatchError(f"the data has {X.shape[0]} rows, fewer than one window of {self.window} rows")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, *, progress=None, stop=None):
        """Train the autoencoder on normal data and fit the threshold.

        Parameters
        ----------
        X : array-like or DataFrame
            See the module docstring for the accepted shapes.
        y : array-like of 0/1, optional
            Labels of the rows/items (1 = anomalous). When given, only normal
            data trains: items with ``y == 0``, or for a series the windows
            whose rows are all ``y == 0`` (no window spans a fault).
        progress : callable, optional
            Called after every epoch with an :class:`EpochInfo`.
        stop : object with ``is_set()``, optional
            E.g. a ``threading.Event``; training stops after the current batch
            once it is set (``interrupted_`` becomes True; the model keeps the
            weights reached so far and is usable).

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._check_array(X, fitting=True)

        if self.random_state is not None and keras.backend.backend() != "tensorflow":
            # on TensorFlow every source of randomness is seeded on its own (the
            # initialisers, the tf.data shuffle, the VAE's sampling), so concurrent
            # fits in one process (app sessions) never reseed each other; other
            # backends shuffle arrays with the process-wide generators
            keras.utils.set_random_seed(int(self.random_state))
        rng = np.random.default_rng(self.random_state)

        self.input_kind_ = self._input_kind(X)
        self.n_features_in_ = X.shape[-1]
        self.fingerprint_ = _data_fingerprint(X)
        normal = self._normal_mask(y, len(X))
        if self.input_kind_ == "series":
            self.score_version_ = SCORE_VERSION
            normal = self._series_normal(X, normal)
            running = self._running_level(X) if self._detrend_rows() else None
            if running is not None:
                self.level_range_ = np.stack([running[normal].min(axis=0), running[normal].max(axis=0)])
            detrended = self._detrended(X, running)
            self.scaler_ = self._fit_scaler(detrended[normal])
            Xs = self._scale(detrended)
            train, val, held = self._split_series(Xs, normal)
        else:
            self.scaler_ = self._fit_scaler(X)
            Xs = self._scale(X)
            train, val = self._split_items(Xs, normal, rng)
        self.item_shape_ = tuple(train.shape[1:])
        self.latent_dim_ = self._resolve_latent_dim(train)

        model = build_model(self.model, self.item_shape_, latent_dim=self.latent_dim_,
                            hidden=self._hidden(), activation=self.activation,
                            beta=self.beta, weighting=self.vae_weighting, seed=self.random_state,
                            neighbor_weight=self._neighbor_weight())
        steps = self._epochs() * math.ceil(len(train) / self._batch_size())
        schedule = keras.optimizers.schedules.CosineDecay(float(self.learning_rate), steps, alpha=0.05)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=None if self.model.endswith("vae") else "mse")
        callbacks = [keras.callbacks.TerminateOnNaN(), TrainingCallback(self._epochs(), progress, stop)]
        if self._early_stopping():
            # with the neighbour term, the reconstruction alone (see Autoencoder.compute_loss)
            watched = "reconstruction_loss" if self._neighbor_weight() > 0 else "loss"
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=f"val_{watched}" if val is not None else watched, patience=self.patience,
                mode="min", restore_best_weights=True, min_delta=1e-5))
        try:
            history = model.fit(**self._fit_inputs(train, val), epochs=self._epochs(),
                                callbacks=callbacks, verbose=self.verbose)
        except MemoryError:
            raise TrainingError(
                "training ran out of memory: lower batch_size, the window or the number of rows"
            ) from None
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        losses = self.history_.get("loss", [])
        if not losses or not all(math.isfinite(v) for v in losses):
            raise TrainingError(
                f"training diverged: the loss became NaN or infinite at epoch {len(losses)}; "
                "lower learning_rate or check the data's scale"
            )
        self.interrupted_ = callbacks[1].interrupted
        self.model_ = model
        self.model_id_ = _weights_fingerprint(model)
        self.__dict__.pop("_scorers", None)
        if self.input_kind_ == "series":
            # the threshold applies to row scores, so it is fitted on row scores
            # of the held-out rows (or, without any, the training rows)
            runs = _segments(Xs, self.window)
            raw = np.full(Xs.shape, np.nan)
            for a, b in runs:
                raw[a:b] = self._series_errors(Xs[a:b])
            held &= ~np.isnan(raw[:, 0])
            scale = raw[held].mean(axis=0)
            self.channel_scale_ = np.maximum(scale, 1e-6 * max(scale.max(), 1e-12))
            self.step_scale_ = _step_scale(Xs, normal, self._still_smooth(), runs)
            deviation = np.full(Xs.shape, np.nan)
            for a, b in runs:
                deviation[a:b] = self._series_deviation(Xs[a:b], raw[a:b])
            self.fit_errors_ = deviation.max(axis=1)[held]
            self.level_ = np.median(X[normal], axis=0)
            self.train_range_ = np.percentile(X[normal], [0.1, 99.9], axis=0)
        else:
            self.fit_errors_ = self._item_errors(val if val is not None else train)[0]
        self.threshold_source_ = "held-out" if val is not None else "training"
        self.set_threshold(self.threshold, self.threshold_param)
        return self

    def _fit_inputs(self, train, val) -> dict:
        """The data arguments of ``model.fit``.

        On TensorFlow the arrays become repeated ``tf.data`` pipelines read
        for a fixed number of steps per epoch: Keras then keeps one iterator
        for the whole run instead of building one per epoch, which on small
        data cost more than the epoch's training steps. Other backends get the
        arrays.
        """
        if keras.backend.backend() != "tensorflow":
            return {"x": train, "y": train, "batch_size": self._batch_size(), "shuffle": True,
                    "validation_data": None if val is None else (val, val)}
        import tensorflow as tf

        batch_size = self._batch_size()
        seed = self.random_state if self.random_state is not None else np.random.default_rng().integers(2**31)

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

    def event_gap_rows(self) -> int:
        """The rows of :attr:`event_gap` (``"auto"``: the window, 0 without one)."""
        return int(self.window or 0) if self.event_gap == "auto" else int(self.event_gap)

    def _resolve_latent_dim(self, train) -> int:
        """``latent_dim``, or for ``"auto"`` the size that serves detection (see the class doc)."""
        if self.latent_dim != "auto":
            return int(self.latent_dim)
        if self.input_kind_ in ("series", "windows"):
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

    def _neighbor_weight(self) -> float:
        if self.neighbor_weight != "auto":
            return float(self.neighbor_weight)
        # a latent of 2 or 3 is meant to be looked at; "auto" sizes one for detection
        looked_at = self.latent_dim != "auto" and int(self.latent_dim) <= 3
        return 0.3 if not self.model.endswith("vae") and looked_at else 0.0

    def _early_stopping(self) -> bool:
        if self.early_stopping == "auto":
            return self._neighbor_weight() == 0
        return bool(self.early_stopping)

    def _epochs(self) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        return 150 if self._neighbor_weight() > 0 else 60

    def _batch_size(self) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        return 512 if self._neighbor_weight() > 0 else 64

    def _hidden(self) -> tuple:
        if self.hidden is not None:
            return tuple(int(h) for h in self.hidden)
        return (32, 64) if self.model.startswith("conv") else (256, 128)

    def _input_kind(self, X):
        if X.ndim == 2:
            kind = "table" if self.window is None else "series"
        else:
            kind = "windows" if X.ndim == 3 else "images"
        if kind == "series" and X.shape[0] < self.window + 2:
            raise ValueError(
                f"the data has {X.shape[0]} rows; training needs at least window + 2 = {self.window + 2}"
            )
        if kind == "table" and self.model.startswith("conv"):
            raise ValueError(
                f"model {self.model!r} needs windows or images: set window= for a time series, "
                "or use model='ae' for a flat table"
            )
        return kind

    def _fit_scaler(self, X):
        if self.scaling == "none":
            return None
        if self.scaling == "global":
            return ChannelScaler(robust=False).fit(X.reshape(-1, 1))
        return ChannelScaler(robust=False).fit(X)

    def _scale(self, X) -> np.ndarray:
        """Scaled float32 values, clipped to +-1e6 so squared errors stay finite in float32.

        A value a million spreads from normal is an anomaly either way; the
        clip only keeps extreme inputs (1e30 in a file) from becoming inf/NaN scores.
        """
        if self.scaler_ is None:
            scaled = X.astype(np.float32)
        elif self.scaler_.n_features_in_ == 1 and X.shape[-1] != 1:
            scaled = self.scaler_.transform(X[..., None])[..., 0]
        else:
            scaled = self.scaler_.transform(X)
        return np.clip(scaled, -SCALED_LIMIT, SCALED_LIMIT, out=scaled)

    def _split_items(self, Xs, normal, rng):
        """Shuffled train / validation items of a table, images or windows."""
        items = Xs if normal is None else Xs[normal]
        n_val = int(round(len(items) * self.validation_fraction))
        if len(items) - n_val < 2:
            raise ValueError(f"too few items to train: {len(items)} (need at least {n_val + 2})")
        if self.input_kind_ in ("table", "images"):
            items = items[rng.permutation(len(items))]
        return (items[:-n_val], items[-n_val:]) if n_val else (items, None)

    def _split_series(self, Xs, normal):
        """Training and validation windows of a series, and the rows that fit the threshold.

        The held-out rows are blocks spread over the whole training period
        (``validation_fraction`` of its rows, at least two windows' worth),
        not its last rows: a slow change, a shift of regime or a fault near
        the end of the period then cannot make the whole threshold. No
        training window touches a held-out row, so their scores are honest.
        With too few rows to hold any out, the training rows fit the
        threshold (``threshold_source_ = "training"``).

        Returns
        -------
        train, val : window arrays (``val`` None without held-out rows)
        held : bool mask of the rows whose scores fit the threshold
        """
        n, w = len(Xs), self.window
        fraction = float(self.validation_fraction)
        n_val = max(int(round(n * fraction)), 2 * w) if fraction > 0 else 0
        if n_val and n - n_val >= 4 * w:
            blocks = int(np.clip(n_val // (8 * w), 1 if n_val < 4 * w else 2, 10))
            length = n_val // blocks
            held = np.zeros(n, bool)
            for centre in (np.arange(blocks) + 0.5) * n / blocks:
                a = int(centre) - length // 2
                held[max(a, 0) : a + length] = True
            try:
                train = self._training_items(Xs, normal & ~held)
                val = self._training_items(Xs, normal & held)
                return train, val, normal & held
            except ValueError:  # the held-out blocks hold no whole window of normal rows
                pass
        return self._training_items(Xs, normal), None, normal.copy()

    def _series_normal(self, X, normal):
        """Rows a series may train on: normal (when labelled) and without a missing value."""
        finite = ~np.isnan(X).any(axis=1)
        usable = finite if normal is None else normal & finite
        longest = max((b - a for a, b in _runs(usable)), default=0)
        if longest < self.window + 2:
            raise ValueError(
                f"the series has no stretch of {self.window + 2} rows (window + 2) without a gap"
                + ("" if normal is None else " or a labelled anomaly")
                + f" to train on; the longest is {longest} rows"
            )
        return usable

    def _detrend_rows(self) -> int:
        """Rows of the running median behind ``level`` (0: the level is left as it is)."""
        if self.level == "absolute" or self.input_kind_ != "series":
            return 0
        return 32 * self.window + 1 if self.level_window == "auto" else int(self.level_window)

    def _running_level(self, X) -> np.ndarray:
        """Each channel's running median, computed within each gap-free stretch (NaN in gaps)."""
        out = np.full(X.shape, np.nan)
        for a, b in _segments(X, 1):
            out[a:b] = _running_median(X[a:b], self._detrend_rows(), edge_rows=self.window)
        return out

    def _detrended(self, X, running=None) -> np.ndarray:
        """A series less the part of its running level (``running``, computed when not given)
        that ``level`` takes out."""
        if not self._detrend_rows():
            return X
        if running is None:
            running = self._running_level(X)
        if self.level == "range":
            low, high = self.level_range_
            return X - (running - np.clip(running, low, high))
        return X - running

    def _prepare(self, X) -> np.ndarray:
        """Model input of a gap-free piece of a series: detrended, then scaled."""
        return self._scale(self._detrended(X))

    @staticmethod
    def _normal_mask(y, n):
        if y is None:
            return None
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have one label per item ({n}), got shape {y.shape}")
        normal = y == 0
        if not normal.any():
            raise ValueError("y marks every item anomalous: nothing normal to train on")
        return normal

    def _training_items(self, Xs, normal=None):
        """Items to train on; for a series, windows (only all-normal ones when masked)."""
        if self.input_kind_ != "series":
            return Xs if normal is None else Xs[normal]
        starts = window_starts(len(Xs), self.window, self.stride)
        if normal is not None:
            bad = np.concatenate([[0], np.cumsum(~normal)])
            starts = starts[bad[starts + self.window] - bad[starts] == 0]
            if len(starts) < 2:
                raise ValueError(f"fewer than 2 windows of {self.window} rows lie entirely in normal rows")
        view = np.lib.stride_tricks.sliding_window_view(Xs, self.window, axis=0).transpose(0, 2, 1)
        return view[starts]

    # ------------------------------------------------------------------ thresholds
    def set_threshold(self, rule=None, param=None):
        """Refit the threshold from the stored errors, in place, without retraining.

        Parameters
        ----------
        rule : str, optional
            Threshold rule; keeps the current one when None.
        param : float, optional
            The rule's parameter (``"manual"``: the threshold value itself).

        Returns
        -------
        self
        """
        check_is_fitted(self, "fit_errors_")
        spec = ThresholdRule(rule or self.threshold_rule_.rule, param).resolved()
        self.threshold_rule_ = spec
        self.threshold_ = spec.fit(self.fit_errors_)
        self.offset_ = -self.threshold_
        return self

    def with_threshold(self, rule=None, param=None) -> AutoencoderDetector:
        """A copy with another threshold; the Keras model is shared, not copied.

        Use this on a detector shared between sessions (``st.cache_resource``):
        the shared one is never mutated.
        """
        other = copy.copy(self)
        return other.set_threshold(rule, param)

    # ------------------------------------------------------------------ scoring core
    def _compiled_scorer(self, reduce: bool):
        """A jitted scoring function, built once per detector and reused.

        ``reduce=True``: ``x -> per-channel mean squared error (b, channels)``,
        averaged on the device so only b x channels floats come back;
        ``reduce=False``: ``x -> squared error`` of x's shape (series need
        every position). The forward pass and the error run in one compiled
        call, without ``model.predict``'s per-call set-up.
        """
        scorers = self.__dict__.setdefault("_scorers", {})
        if reduce not in scorers:
            if "forward" not in scorers:  # checked once, shared by both scorers
                scorers["forward"] = self._inference_forward()
            forward = scorers["forward"]

            def score(x):
                sq = keras.ops.square(x - forward(x))
                if reduce and sq.ndim > 2:
                    return keras.ops.mean(sq, axis=tuple(range(1, sq.ndim - 1)))
                return sq

            backend = keras.backend.backend()
            if backend == "tensorflow":
                import tensorflow as tf

                scorers[reduce] = tf.function(score, reduce_retracing=True)
            elif backend == "jax":
                import jax

                scorers[reduce] = jax.jit(score)
            else:
                scorers[reduce] = score
        return scorers[reduce]

    def _inference_forward(self):
        """:func:`~aeviz_core.models.inference_function` of the model, once checked
        against ``model(x)`` on a probe batch (else ``model(x)`` itself)."""
        model = self.model_
        plain = lambda x: model(x, training=False)  # noqa: E731
        forward = inference_function(model)
        probe = np.random.default_rng(0).normal(size=(4, *self.item_shape_)).astype(np.float32)
        want = keras.ops.convert_to_numpy(plain(probe))
        got = keras.ops.convert_to_numpy(forward(probe))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max())):
            return plain
        return forward

    def _scored_batches(self, batches, n, batch_size, reduce):
        """Run the compiled scorer over ``(key, batch)`` pairs, padding short batches.

        Every call sees one batch shape, so nothing is traced twice. One batch
        stays in flight: the next is dispatched before the last one's result is
        read back, so on an accelerator (JAX dispatches asynchronously) its
        transfer and the host's work overlap the computation.
        """
        scorer = self._compiled_scorer(reduce)
        pending = None  # (key, rows, result) of the batch in flight
        for key, batch in batches:
            batch = np.asarray(batch, dtype=np.float32)
            m = len(batch)
            if m < batch_size and n > batch_size:
                batch = np.concatenate([batch, np.zeros((batch_size - m, *batch.shape[1:]), np.float32)])
            result = scorer(batch)
            if pending is not None:
                yield pending[0], np.asarray(pending[2])[: pending[1]]
            pending = (key, m, result)
        if pending is not None:
            yield pending[0], np.asarray(pending[2])[: pending[1]]

    def _item_errors(self, items, batch_size=None):
        """Mean squared error per item and per channel, for scaled items."""
        n = len(items)
        batch_size = batch_size or _scoring_batch(512)
        chan_err = np.empty((n, items.shape[-1]), dtype=np.float64)
        batches = ((i, items[i : i + batch_size]) for i in range(0, n, batch_size))
        for i, per_channel in self._scored_batches(batches, n, batch_size, reduce=True):
            chan_err[i : i + len(per_channel)] = per_channel
        return chan_err.mean(axis=1), chan_err

    def _series_errors(self, Xs):
        """Per-row, per-channel squared error averaged over the windows covering each row."""
        n, c = Xs.shape
        w = self.window
        batch_size = _scoring_batch(max(256, 2**18 // (w * c)))
        batches = iter_window_batches(Xs, w, 1, batch_size)
        return _overlap_average(self._scored_batches(batches, n - w + 1, batch_size, reduce=False), n, w, c)

    def _errors(self, X):
        """(item_errors, channel_errors): scaled MSE; for a series normalised per channel
        (NaN on gap rows)."""
        if self.input_kind_ == "series":
            chan = self._by_segment(X, lambda Xs: self._series_errors(Xs) / self.channel_scale_)
            return chan.mean(axis=1), chan
        return self._item_errors(self._scale(X))

    def _by_segment(self, X, fn) -> np.ndarray:
        """``fn(prepared piece)`` on each gap-free stretch of a series of at least one
        window; NaN on gap rows and on stretches shorter than a window."""
        out = np.full(X.shape, np.nan)
        for a, b in _segments(X, self.window):
            out[a:b] = fn(self._prepare(X[a:b]))
        return out

    def _series_deviation(self, Xs, raw_errors):
        """Per-row, per-channel deviation of scaled rows ``Xs`` with squared errors ``raw_errors``.

        The larger of the residual-energy deviation and the stillness of the
        reading itself (see :meth:`anomaly_score`).
        """
        if self._score_version() < 2:  # a model saved before scores version 2: scored as it was
            deviation = _residual_energy_deviation(raw_errors / self.channel_scale_, self._smooth())
            step_scale = getattr(self, "step_scale_", None)  # absent in models saved before it existed
            if step_scale is not None:
                np.maximum(deviation, _stillness(Xs, step_scale, self._smooth()), out=deviation)
            return deviation
        ratio = _moving_average(raw_errors / self.channel_scale_, self._smooth())
        if self._score_version() >= 3:  # against the channel's recent residual too (a new regime settles)
            ratio /= np.maximum(_trailing_median(ratio, self._stillness_rows()), 1.0)
        deviation = np.log(np.maximum(ratio, 1.0))
        step_scale = getattr(self, "step_scale_", None)
        if step_scale is not None:
            np.maximum(deviation, _local_stillness(Xs, step_scale, self._still_smooth(), self._stillness_rows()),
                       out=deviation)
        return deviation

    def _score_version(self) -> int:
        """1: two-sided residual test and absolute stillness (models saved before version 2)."""
        return getattr(self, "score_version_", SCORE_VERSION)

    def _stillness_rows(self) -> int:
        """Rows of the running reference a channel's stillness is measured against."""
        return self._detrend_rows() or 32 * self.window + 1

    def _scores(self, X):
        """(anomaly_score, channel_scores) of checked X: see :meth:`anomaly_score`."""
        if self.input_kind_ != "series":
            return self._errors(X)
        deviation = self._by_segment(X, lambda Xs: self._series_deviation(Xs, self._series_errors(Xs)))
        return deviation.max(axis=1), deviation

    @property
    def context_rows(self) -> int:
        """Rows on each side that a row's score depends on (0 for tables, windows, images).

        A piece of a series scored with this many extra rows before and after
        gives its rows the same scores as scoring the whole series.
        """
        check_is_fitted(self, "model_")
        if self.input_kind_ != "series":
            return 0
        residual = self.window - 1 + self._smooth() // 2 + self._detrend_rows() // 2
        if self._score_version() < 2:
            return residual
        still = self._detrend_rows() // 2 + self._still_smooth() // 2 + 1 + self._stillness_rows() // 2
        if self._score_version() >= 3:  # the residual's reference: the rows before it
            residual += self._stillness_rows() - 1
        return max(residual, still)

    def _smooth(self) -> int:
        """Rows the residual test averages around a row."""
        if self.smooth is not None:
            return int(self.smooth)
        return 2 * self.window - 1 if self._score_version() < 3 else self.window - 1

    def _still_smooth(self) -> int:
        """Rows of step energy the stillness test averages (a pause is not a stuck sensor)."""
        return self._smooth() if self._score_version() < 3 else 2 * self.window - 1

    # ------------------------------------------------------------------ public scoring API
    def reconstruction_error(self, X) -> np.ndarray:
        """Mean squared reconstruction error of each item (higher = worse).

        Returns
        -------
        errors : ndarray, shape (n_items,) or (n_rows,) for a series
            In scaled units, so channels of different physical units weigh
            the same. For a series each channel's error is divided by its
            mean error on held-out normal rows (``channel_scale_``), so 1 is
            a typical error and 10 ten times the typical error.
        """
        X = self._check_array(X)
        return self._errors(X)[0]

    def channel_errors(self, X) -> np.ndarray:
        """Reconstruction error per channel (which sensor), higher = worse.

        Returns
        -------
        errors : ndarray, shape (n_items, n_channels) or (n_rows, n_channels)
            Row ``i`` averages to ``reconstruction_error(X)[i]``.
        """
        X = self._check_array(X)
        return self._errors(X)[1]

    def anomaly_score(self, X) -> np.ndarray:
        """The score that is thresholded and flagged (higher = more anomalous).

        For tables, windows and images it is :meth:`reconstruction_error`.
        For a series it is the largest, over channels, of two tests, each a
        log ratio (0 for rows like the normal ones; ``log 10`` = 2.3 for ten
        times the normal value):

        * **residual**: ``log(max(r, 1))``, ``r`` the channel's squared error
          averaged over ``smooth`` rows around the row, divided by its mean on
          the held-out normal rows (``channel_scale_``) and by its own median
          over the ``32 * window + 1`` rows up to the row (when above 1).
          Spikes, steps, noise and broken relations between channels raise
          it. A change that lasts (a line switched off for hours, a season the
          training period did not cover) is flagged from its start until it
          fills half that span, then becomes the channel's reference, so a
          new regime is reported once rather than for as long as it lasts.
        * **stillness**: ``max(0, log(m / s))``, ``s`` the channel's mean
          squared step between consecutive readings over ``2 * window - 1``
          rows and ``m`` its running median over the same span (both floored
          at 1e-3 of the normal step, so at most about 6.9). A stuck sensor
          repeats its last value, so ``s`` falls while ``m`` remembers how it
          moved, even on a channel whose level the autoencoder follows (where
          the residual barely moves). A channel that holds still somewhere in
          the normal training rows (a set point, a valve at rest) is left out
          (``step_scale_`` 0).

        Models saved with an earlier score version score as they did
        (``score_version_``).

        Returns
        -------
        scores : ndarray, shape (n_items,) or (n_rows,)
        """
        X = self._check_array(X)
        return self._scores(X)[0]

    def channel_scores(self, X) -> np.ndarray:
        """Per-channel parts of :meth:`anomaly_score` (argmax = the suspect sensor)."""
        X = self._check_array(X)
        return self._scores(X)[1]

    def score(self, X):
        """``(anomaly_score, channel_scores)`` in one pass."""
        X = self._check_array(X)
        return self._scores(X)

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's score: ``-anomaly_score`` (higher = more normal)."""
        return -self.anomaly_score(X)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples - offset_``: negative = flagged."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for normal items, -1 for flagged ones (``anomaly_score > threshold_``)."""
        return np.where(self.anomaly_score(X) > self.threshold_, -1, 1)

    def transform(self, X) -> np.ndarray:
        """Latent coordinates (a VAE's means).

        Returns
        -------
        Z : ndarray, shape (n_items, latent_dim), or (n_windows, latent_dim) for a
            series, one per window starting at ``window_starts(n_rows, window, stride)``.
        """
        X = self._check_array(X)
        if self.input_kind_ == "series":  # a window that touches a gap has a NaN code
            Xs = self._training_items(self._by_segment(X, lambda piece: piece))
        else:
            Xs = self._scale(X)
        out = [np.asarray(self.model_.encode(Xs[i : i + 4096])) for i in range(0, len(Xs), 4096)]
        return np.concatenate(out).astype(np.float32)

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions in the input's units and shape (a series: per row,
        averaged over the windows covering each row)."""
        X = self._check_array(X)
        if self.input_kind_ != "series":
            Xs = self._scale(X)
            return self._unscale(np.concatenate([np.asarray(self.model_(Xs[i : i + 4096], training=False))
                                                 for i in range(0, len(Xs), 4096)]))
        out = np.full(X.shape, np.nan)
        for a, b in _segments(X, self.window):
            detrended = self._detrended(X[a:b])  # the running level, once per stretch
            rebuilt = self._unscale(self._row_reconstruction(self._scale(detrended)))
            out[a:b] = rebuilt + (X[a:b] - detrended)  # the model rebuilds around the level: it goes back in
        return out

    def _row_reconstruction(self, Xs) -> np.ndarray:
        """Scaled rows of a series rebuilt, each averaged over the windows covering it."""
        n, c = Xs.shape
        batches = ((starts, np.asarray(self.model_(np.asarray(windows), training=False)))
                   for starts, windows in iter_window_batches(Xs, self.window, 1, 4096))
        return _overlap_average(batches, n, self.window, c)

    def blame(self, X, start: int, end: int, *, passes: int = 3, max_rows: int = 20_000) -> np.ndarray:
        """Each channel's share of one event of a series: which sensor to blame.

        The plain per-channel errors blame every channel of a broken
        relation, often the best-predicted one: a drifting flow sensor also
        raises the error of the motor current that follows flow, and the
        current, whose normal error is tiny, looks the worse. Here each
        channel in turn is replaced over the event's rows by the model's
        reconstruction of it (``passes`` times, each from the last), and the
        event's normalised squared error over all channels is measured again.
        Replacing the faulty channel removes the whole excess; replacing a
        bystander removes only its own part. A channel's share is how much
        the total falls (a reconstruction-based contribution).

        An event whose peak comes from a channel that is too quiet (a stuck
        sensor: steps or error below normal) has no excess to remove; there
        the channels' parts of :meth:`anomaly_score`, summed over the event,
        give the shares.

        Parameters
        ----------
        X : array-like or DataFrame, shape (n_rows, n_channels)
            The series, or a piece of it holding the event and
            :attr:`context_rows` rows on each side where it has them.
        start, end : int
            The event's first and last row in ``X`` (inclusive).
        passes : int, default 3
        max_rows : int, default 20,000
            A longer event is judged on the ``max_rows`` rows around its
            highest score: each pass rebuilds every row it judges, 4 passes
            per channel.

        Returns
        -------
        shares : ndarray, shape (n_channels,)
            Non-negative, summing to 1 (equal shares when nothing stands out).
        """
        check_is_fitted(self, "model_")
        if self.input_kind_ != "series":
            raise ValueError("blame needs a model fitted on a series (window set)")
        X = self._check_array(X)
        start, end = int(start), int(end)
        if not 0 <= start <= end < len(X):
            raise ValueError(f"the event must satisfy 0 <= start <= end < {len(X)}, got {start}..{end}")
        if not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
            raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        stretch = [(a, b) for a, b in _segments(X, 1) if a <= start and end < b]
        if not stretch:
            raise ValueError(f"rows {start}..{end} cross a gap (a row with a missing value): an event lies "
                             "between gaps")
        X = X[: stretch[0][1]]  # the event's gap-free stretch and what precedes it
        first = stretch[0][0]
        if end - start + 1 > max_rows:  # judge the stretch around the event's highest score
            lo, hi = max(first, start - self.context_rows), min(len(X), end + self.context_rows + 1)
            peak = start + int(np.argmax(self._scores(X[lo:hi])[0][start - lo : end - lo + 1]))
            start = min(max(start, peak - max_rows // 2), end - max_rows + 1)
            end = start + max_rows - 1
        lo = max(first, start - self.context_rows)
        hi = min(len(X), end + self.context_rows + 1)
        if hi - lo < self.window:
            raise ValueError(f"the series holds {hi - lo} rows around the event; blame needs a window "
                             f"({self.window})")
        Xs = self._prepare(X[lo:hi])
        inner = slice(start - lo, end - lo + 1)
        raw = self._series_errors(Xs)
        parts = self._series_deviation(Xs, raw)[inner]
        peak = np.unravel_index(np.argmax(parts), parts.shape)
        excess = np.log(max(_moving_average(raw / self.channel_scale_, self._smooth())[inner][peak], 1e-6))
        if excess <= 0 or parts[peak] > excess:  # too quiet (error or steps below normal): nothing to take away
            shares = parts.sum(axis=0)
        else:
            total = (raw[inner] / self.channel_scale_).sum()
            shares = np.empty(Xs.shape[1])
            for c in range(Xs.shape[1]):
                imputed = Xs.copy()
                for _ in range(passes):
                    imputed[inner, c] = self._row_reconstruction(imputed)[inner, c]
                shares[c] = total - (self._series_errors(imputed)[inner] / self.channel_scale_).sum()
            shares = np.maximum(shares, 0.0)
        if not shares.sum() > 0:
            return np.full(Xs.shape[1], 1.0 / Xs.shape[1])
        return shares / shares.sum()

    def decode(self, Z) -> np.ndarray:
        """Items decoded from latent points, in the data's units.

        Parameters
        ----------
        Z : array-like (n, latent_dim)
            Latent points, e.g. a grid over the latent box or samples from a
            VAE's prior.

        Returns
        -------
        items : ndarray (n, *item_shape)
            A window ``(window, channels)`` per point for a series, an item of
            the training shape otherwise.
        """
        check_is_fitted(self, "model_")
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim_:
            raise ValueError(f"Z must have shape (n, {self.latent_dim_}), got {Z.shape}")
        items = self._unscale(np.asarray(self.model_.decoder(Z, training=False), dtype=np.float64))
        if self.input_kind_ == "series" and self.level == "relative":
            items = items + self.level_  # the model rebuilds around the level: the training median
        return items

    def _unscale(self, values) -> np.ndarray:
        """Scaled values back in the data's units (the inverse of :meth:`_scale`, without its clip)."""
        if self.scaler_ is None:
            return values
        if self.scaler_.n_features_in_ == 1 and values.shape[-1] != 1:
            return self.scaler_.inverse_transform(values[..., None])[..., 0]
        return self.scaler_.inverse_transform(values)

    def latent_starts(self, n_rows: int) -> np.ndarray:
        """For a series: the first row of each latent point returned by :meth:`transform`."""
        return window_starts(n_rows, self.window, self.stride)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scorers", None)  # compiled functions do not pickle
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = True
        return tags


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


@functools.cache
def _on_accelerator() -> bool:
    """Whether Keras computes on a GPU or TPU rather than the CPUs."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def _scoring_batch(cpu_batch: int) -> int:
    """Items per compiled scoring call: ``cpu_batch`` on CPUs, 16 times more on an accelerator.

    On CPUs larger batches gain nothing (a 2-core machine scored 64x8 windows
    at 38,000/s in batches of 512 and 27,000/s in batches of 8,192); on a GPU
    each call's fixed cost dominates small batches (an H200 through JAX:
    550,000/s in batches of 512, 1,480,000/s in batches of 8,192).
    """
    return cpu_batch * 16 if _on_accelerator() else cpu_batch


def _residual_energy_deviation(channel_errors: np.ndarray, smooth: int) -> np.ndarray:
    """``|log r|`` with ``r`` the centred moving average of normalised errors over ``smooth`` rows."""
    return np.abs(np.log(np.maximum(_moving_average(channel_errors, smooth), 1e-6)))


def _moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average over ``length`` rows, over fewer rows at the edges."""
    n = len(values)
    half = length // 2
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    rows = np.arange(n)
    lo, hi = np.maximum(rows - half, 0), np.minimum(rows + half + 1, n)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def _squared_steps(Xs: np.ndarray) -> np.ndarray:
    """``(x[i] - x[i-1])**2`` per row and channel; row 0 repeats row 1's step."""
    steps = np.empty(Xs.shape, dtype=np.float64)
    steps[1:] = np.square(np.diff(np.asarray(Xs, dtype=np.float64), axis=0))
    steps[0] = steps[1] if len(Xs) > 1 else 0.0
    return steps


#: a channel whose step energy over ``smooth`` normal rows falls below this
#: share of its mean holds still in normal operation: no stillness test for it
_STILL_IN_NORMAL = 1e-2


def _step_scale(Xs: np.ndarray, normal, smooth: int, runs) -> np.ndarray:
    """Mean squared step of each channel over consecutive normal rows; 0 where it holds still.

    ``runs`` are the gap-free stretches ``(start, stop)``; no step spans a gap.
    """
    steps = np.full(Xs.shape, np.nan)
    energy = np.full(Xs.shape, np.nan)
    for a, b in runs:
        steps[a:b] = _squared_steps(Xs[a:b])
        energy[a:b] = _moving_average(steps[a:b], smooth)
    both = normal & np.r_[normal[:1], normal[:-1]] & ~np.isnan(steps[:, 0])
    if not both.any():
        return np.zeros(Xs.shape[1])
    scale = steps[both].mean(axis=0)  # 0 for a constant channel: left out as well
    still = (energy[both] < _STILL_IN_NORMAL * scale).any(axis=0)
    return np.where(still, 0.0, scale)


def _stillness(Xs: np.ndarray, step_scale: np.ndarray, smooth: int) -> np.ndarray:
    """``max(0, -log s)``: ``s`` the step energy over ``smooth`` rows relative to normal."""
    out = np.zeros(Xs.shape, dtype=np.float64)
    tested = step_scale > 0
    if not tested.any() or len(Xs) < 2:
        return out
    ratio = _moving_average(_squared_steps(Xs[:, tested]), smooth) / step_scale[tested]
    out[:, tested] = np.maximum(0.0, -np.log(np.maximum(ratio, 1e-6)))
    return out


def _segments(X: np.ndarray, min_rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of rows of a series without a NaN, at least ``min_rows`` long."""
    return [(int(a), int(b)) for a, b in _runs(~np.isnan(X).any(axis=1)) if b - a >= min_rows]


def _running_median(X: np.ndarray, length: int, edge_rows: int = 0) -> np.ndarray:
    """Centred running median of each column over ``length`` rows.

    With ``edge_rows``, the series is continued past each end by its point
    reflection about the median of its ``edge_rows`` end rows, so a level
    that rises to the last row is followed there (a median over fewer rows
    would lag behind it); without, the edges take the median of fewer rows.
    """
    n, half = len(X), int(length) // 2
    k = min(half, n - 1) if edge_rows else 0
    if k > 0:
        left = 2 * np.median(X[:edge_rows], axis=0) - X[1 : k + 1][::-1]
        right = 2 * np.median(X[-edge_rows:], axis=0) - X[n - k - 1 : n - 1][::-1]
        X = np.vstack([left, X, right])
    return pd.DataFrame(X).rolling(int(length), center=True, min_periods=1).median().to_numpy()[k : k + n]


def _trailing_median(X: np.ndarray, length: int) -> np.ndarray:
    """Median of each column over the ``length`` rows up to and including each row (fewer at the start)."""
    return pd.DataFrame(X).rolling(int(length), min_periods=1).median().to_numpy()


#: the floor of a channel's step energy, as a share of its normal value: a channel's stillness
#: is at most -log of it (about 6.9), and a channel still for longer than the reference span
#: (its new normal) scores 0
_STILL_FLOOR = 1e-3


def _local_stillness(Xs: np.ndarray, step_scale: np.ndarray, smooth: int, span: int) -> np.ndarray:
    """How much more still a channel is than over the ``span`` rows around it: ``max(0, -log s)``.

    ``s`` is the step energy over ``smooth`` rows divided by its running
    median over ``span`` rows (both floored at ``_STILL_FLOOR`` of the
    normal step energy). A stuck sensor stops moving while it moved just
    before; a channel that settles for hours (a line switched off, a calm
    night) becomes its own reference and stops scoring once it has been
    still for half the span.
    """
    out = np.zeros(Xs.shape, dtype=np.float64)
    tested = step_scale > 0
    if not tested.any() or len(Xs) < 2:
        return out
    energy = _moving_average(_squared_steps(Xs[:, tested]), smooth)
    floor = _STILL_FLOOR * step_scale[tested]
    reference = _running_median(energy, span)
    out[:, tested] = np.maximum(0.0, np.log((reference + floor) / (energy + floor)))
    return out


def _overlap_average(batches, n_rows: int, window: int, n_channels: int) -> np.ndarray:
    """Average per-window values onto rows: ``batches`` yields (starts, values (b, window, c)).

    Stride-1 windows start at consecutive rows, so each offset inside the
    window is one slice add, not a scatter.
    """
    total = np.zeros((n_rows, n_channels), dtype=np.float64)
    for starts, values in batches:
        for offset in range(window):
            total[starts[0] + offset : starts[-1] + offset + 1] += values[:, offset, :]
    return total / _coverage(n_rows, window)[:, None]


def _coverage(n_rows: int, window: int) -> np.ndarray:
    """How many stride-1 windows cover each row: rows max(0, r-w+1) .. min(r, n-w)."""
    rows = np.arange(n_rows)
    return (np.minimum(rows, n_rows - window) - np.maximum(0, rows - window + 1) + 1).astype(np.float64)
