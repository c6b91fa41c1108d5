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
import math

import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from . import explain, training
from .inference import Inference
from .models import build_model
from .scores import REGIME_VERSION, SCORE_VERSION, SERIES_MARGIN, SERIES_PERCENTILE, SeriesScore, step_scale
from .settings import check_settings
from .thresholds import ThresholdRule, widen
from .training import TrainingCallback, TrainingError
from .windows import SCALED_LIMIT, ChannelScaler, remove_level, running_level, segments, window_starts

__all__ = ["AutoencoderDetector", "ModelMismatchError"]

class ModelMismatchError(ValueError):
    """The data does not match the model (other channels, order, width or item shape)."""


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
        The rule's parameter (rule default when None; for a ``series_score="regime"``
        model under the percentile rule, the 99.9th: a held-out stretch of a
        few days cannot show the tails of months, and on the GECCO
        water-quality series the 99.5th flags 1.8-2.0% of the later normal
        rows, the 99.9th 0.8-0.9%). A series model's fitted rules are
        widened by ``threshold_margin_``.
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
    series_score : {"smooth", "regime"}, default "smooth"
        Series only: how rows are scored (see :meth:`anomaly_score`).
        ``"smooth"`` (score version 3) averages each channel's residual over
        ``window - 1`` rows and flags on the largest channel. ``"regime"``
        (score version 4) is made for slow plants whose normal operation
        moves into regimes a short training period never showed: each
        channel's unsmoothed residual, raised to the channel's own recent
        level once that has stayed above its held-out level for a quarter of
        ``45 * window`` rows; the row's score is the geometric mean of its two
        largest channel residuals (or its stillness), and the percentile
        rule's default becomes the 99.9th. On GECCO 2018 (one row a minute)
        it reaches AP 0.67 and F1 0.65 at 0.8% false alarms where
        ``"smooth"`` reaches 0.42 and 0.40 at 3.9%; on the 1 Hz pump sample
        it flags single-row blips of noise (about 2 false events an hour)
        that ``"smooth"`` averages away. Saved with the model.

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
    threshold_margin_ : float
        Factor on a fitted rule's distance above the median of ``fit_errors_``
        (not for ``"manual"``): 1.2 for a series model
        (:data:`~aeviz_core.scores.SERIES_MARGIN`), whose few thousand
        autocorrelated held-out rows sit below the tail of months of normal
        rows; 1 otherwise and for models saved before it.
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
                 level_window="auto", event_gap="auto", series_score="smooth"):
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
        self.series_score = series_score

    # ------------------------------------------------------------------ validation
    def _validate_params(self):
        check_settings(self.get_params())

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
        problem = self.mismatch(X.shape, names)
        if problem:
            raise ModelMismatchError(problem)

    def mismatch(self, shape, names=None) -> str | None:
        """Why data of ``shape`` (with channel ``names``, when known) does not fit this model, in
        one line, or None when it does: other channels or another order, another width or
        item shape, too few rows for a window. The app lists only models that fit its data
        set with it; scoring raises :class:`ModelMismatchError` with it."""
        check_is_fitted(self, "model_")
        expected = getattr(self, "feature_names_in_", None)
        if names is not None and expected is not None and list(names) != list(expected):
            missing = [c for c in expected if c not in set(names)]
            extra = [c for c in names if c not in set(expected)]
            if missing or extra:
                return f"the data's channels do not match the model's: missing {missing}, unexpected {extra}"
            return f"the data's channels are in another order than the model's: expected {list(expected)}"
        if shape[-1] != self.n_features_in_:
            return f"X has {shape[-1]} channels, the model was trained on {self.n_features_in_}"
        if self.input_kind_ in ("windows", "images") and tuple(shape[1:]) != self.item_shape_:
            return f"items have shape {tuple(shape[1:])}, the model expects {self.item_shape_}"
        if self.input_kind_ == "series" and len(shape) != 2:
            return f"the model scores a 2-D series (rows, channels), got shape {tuple(shape)}"
        if self.input_kind_ == "series" and shape[0] < self.window:
            return f"the data has {shape[0]} rows, fewer than one window of {self.window} rows"
        return None

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
        self.fingerprint_ = training.data_fingerprint(X)
        normal = training.normal_from_labels(y, len(X))
        fraction = float(self.validation_fraction)
        if self.input_kind_ == "series":
            self.score_version_ = REGIME_VERSION if self.series_score == "regime" else SCORE_VERSION
            normal = training.trainable_rows(X, normal, self.window)
            running = running_level(X, self._detrend_rows(), self.window) if self._detrend_rows() else None
            if running is not None:
                self.level_range_ = np.stack([running[normal].min(axis=0), running[normal].max(axis=0)])
            detrended = self._detrended(X, running)
            self.scaler_ = self._fit_scaler(detrended[normal])
            Xs = self._scale(detrended)
            train, val, held = training.split_series(Xs, normal, self.window, self.stride, fraction)
        else:
            self.scaler_ = self._fit_scaler(X)
            Xs = self._scale(X)
            train, val = training.split_items(Xs, normal, fraction, self.input_kind_ in ("table", "images"), rng)
        self.item_shape_ = tuple(train.shape[1:])
        self.latent_dim_ = (int(self.latent_dim) if self.latent_dim != "auto"
                            else training.auto_latent_dim(train, self.input_kind_))

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
            history = model.fit(**training.fit_inputs(train, val, self._batch_size(), self.random_state),
                                epochs=self._epochs(), callbacks=callbacks, verbose=self.verbose)
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
        self.model_id_ = training.weights_fingerprint(model)
        if self.input_kind_ == "series":
            self._fit_series_statistics(X, Xs, normal, held)
        else:
            self.fit_errors_ = self._inference().item_errors(val if val is not None else train)[0]
        self.threshold_source_ = "held-out" if val is not None else "training"
        self.threshold_margin_ = SERIES_MARGIN if self.input_kind_ == "series" else 1.0
        param = self.threshold_param
        if param is None and getattr(self, "score_version_", 0) >= REGIME_VERSION and self.threshold == "percentile":
            param = SERIES_PERCENTILE
        self.set_threshold(self.threshold, param)
        return self

    def _fit_series_statistics(self, X, Xs, normal, held):
        """A series model's scales and the row scores its threshold is fitted on: those of the
        held-out rows (or, without any, the training rows), since the threshold applies to rows."""
        runs = segments(Xs, self.window)
        run = self._inference()
        raw = np.full(Xs.shape, np.nan)
        for a, b in runs:
            raw[a:b] = run.series_errors(Xs[a:b], self.window)
        held = held & ~np.isnan(raw[:, 0])
        held = training.away_from_anomalies(held, normal, ~np.isnan(X).any(axis=1),
                                            self._series_score().reach, 2 * self.window)
        scale = raw[held].mean(axis=0)
        self.channel_scale_ = np.maximum(scale, 1e-6 * max(scale.max(), 1e-12))
        self.step_scale_ = step_scale(Xs, normal, self._series_score().still_smooth, runs,
                                      repeats=self.score_version_ >= REGIME_VERSION)
        self.reference_scale_ = self._series_score().held_reference(raw[held])
        score = self._series_score()
        scores = np.full(len(Xs), np.nan)
        for a, b in runs:
            scores[a:b] = score.scores(Xs[a:b], raw[a:b])[0]
        self.fit_errors_ = scores[held]
        self.level_ = np.median(X[normal], axis=0)
        self.train_range_ = np.percentile(X[normal], [0.1, 99.9], axis=0)

    def event_gap_rows(self) -> int:
        """The rows of :attr:`event_gap` (``"auto"``: the window, 0 without one)."""
        return int(self.window or 0) if self.event_gap == "auto" else int(self.event_gap)

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

    def _unscale(self, values) -> np.ndarray:
        """Scaled values back in the data's units (the inverse of :meth:`_scale`, without its clip)."""
        if self.scaler_ is None:
            return values
        if self.scaler_.n_features_in_ == 1 and values.shape[-1] != 1:
            return self.scaler_.inverse_transform(values[..., None])[..., 0]
        return self.scaler_.inverse_transform(values)

    def _detrend_rows(self) -> int:
        """Rows of the running median behind ``level`` (0: the level is left as it is)."""
        if self.level == "absolute" or self.input_kind_ != "series":
            return 0
        return 32 * self.window + 1 if self.level_window == "auto" else int(self.level_window)

    def _detrended(self, X, running=None) -> np.ndarray:
        """A series less the part of its running level (``running``, computed when not given)
        that ``level`` takes out."""
        rows = self._detrend_rows()
        if not rows:
            return X
        if running is None:
            running = running_level(X, rows, self.window)
        return remove_level(X, running, self.level, getattr(self, "level_range_", None))

    def _prepare(self, X) -> np.ndarray:
        """Model input of a gap-free piece of a series: detrended, then scaled."""
        return self._scale(self._detrended(X))

    # ------------------------------------------------------------------ thresholds
    def set_threshold(self, rule=None, param=None, margin=None):
        """Refit the threshold from the stored errors, in place, without retraining.

        Parameters
        ----------
        rule : str, optional
            Threshold rule; keeps the current one when None.
        param : float, optional
            The rule's parameter (``"manual"``: the threshold value itself).
        margin : float, optional
            A new ``threshold_margin_`` (>= 1; 1 takes the rule's value as it
            is); keeps the current one when None.

        Returns
        -------
        self
        """
        check_is_fitted(self, "fit_errors_")
        spec = ThresholdRule(rule or self.threshold_rule_.rule, param).resolved()
        if margin is not None:
            if not (isinstance(margin, (int, float, np.number)) and 1.0 <= margin < math.inf):
                raise ValueError(f"margin must be a number >= 1, got {margin!r}")
            self.threshold_margin_ = float(margin)
        self.threshold_rule_ = spec
        fitted = spec.fit(self.fit_errors_)
        self.threshold_ = (fitted if spec.rule == "manual"
                           else widen(fitted, self.fit_errors_, getattr(self, "threshold_margin_", 1.0)))
        self.offset_ = -self.threshold_
        return self

    def with_threshold(self, rule=None, param=None, margin=None) -> AutoencoderDetector:
        """A copy with another threshold; the Keras model is shared, not copied.

        Use this on a detector shared between sessions (``st.cache_resource``):
        the shared one is never mutated.
        """
        other = copy.copy(self)
        return other.set_threshold(rule, param, margin)

    # ------------------------------------------------------------------ scoring core
    def _inference(self) -> Inference:
        """The trained model's compiled scorer (built once per model, never pickled)."""
        check_is_fitted(self, "model_")
        run = self.__dict__.get("_runner")
        if run is None or run.model is not self.model_:
            run = self.__dict__["_runner"] = Inference(self.model_, self.item_shape_)
        return run

    def _series_score(self) -> SeriesScore:
        """How this series model turns squared errors into scores (see :mod:`aeviz_core.scores`)."""
        return SeriesScore.of(self.window, getattr(self, "score_version_", SCORE_VERSION), self.smooth,
                              self._detrend_rows(), getattr(self, "channel_scale_", None),
                              getattr(self, "step_scale_", None), getattr(self, "reference_scale_", None))

    def _by_segment(self, X, fn) -> np.ndarray:
        """``fn(prepared piece)`` on each gap-free stretch of a series of at least one
        window; NaN on gap rows and on stretches shorter than a window."""
        out = np.full(X.shape, np.nan)
        for a, b in segments(X, self.window):
            out[a:b] = fn(self._prepare(X[a:b]))
        return out

    def _errors(self, X):
        """(item_errors, channel_errors): scaled MSE; for a series normalised per channel
        (NaN on gap rows)."""
        run = self._inference()
        if self.input_kind_ == "series":
            chan = self._by_segment(X, lambda Xs: run.series_errors(Xs, self.window) / self.channel_scale_)
            return chan.mean(axis=1), chan
        return run.item_errors(self._scale(X))

    def _scores(self, X):
        """(anomaly_score, channel_scores) of checked X: see :meth:`anomaly_score`."""
        if self.input_kind_ != "series":
            return self._errors(X)
        run, score = self._inference(), self._series_score()
        scores, parts = np.full(len(X), np.nan), np.full(X.shape, np.nan)
        for a, b in segments(X, self.window):
            Xs = self._prepare(X[a:b])
            scores[a:b], parts[a:b] = score.scores(Xs, run.series_errors(Xs, self.window))
        return scores, parts

    @property
    def context_rows(self) -> int:
        """Rows on each side that a row's score depends on (0 for tables, windows, images).

        A piece of a series scored with this many extra rows before and after
        gives its rows the same scores as scoring the whole series.
        """
        check_is_fitted(self, "model_")
        return self._series_score().context_rows if self.input_kind_ == "series" else 0

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

        With ``series_score="regime"`` (score version 4) the residual is not
        averaged; each channel's ratio is divided by its 75th percentile over
        the ``45 * window`` rows ending two windows before the row, over the
        same percentile on the held-out rows, when above 1; and the row's
        score is the mean of its two largest channel residuals (the geometric
        mean of the ratios) or its largest stillness, whichever is larger.
        Channel parts (:meth:`channel_scores`) are as above.

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
            Xs = training.series_windows(self._by_segment(X, lambda piece: piece), self.window, self.stride)
        else:
            Xs = self._scale(X)
        return self._inference().encode(Xs)

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions in the input's units and shape (a series: per row,
        averaged over the windows covering each row)."""
        X = self._check_array(X)
        run = self._inference()
        if self.input_kind_ != "series":
            return self._unscale(run.rebuild(self._scale(X)))
        out = np.full(X.shape, np.nan)
        for a, b in segments(X, self.window):
            detrended = self._detrended(X[a:b])  # the running level, once per stretch
            rebuilt = self._unscale(run.rebuild_rows(self._scale(detrended), self.window))
            out[a:b] = rebuilt + (X[a:b] - detrended)  # the model rebuilds around the level: it goes back in
        return out

    def blame(self, X, start: int, end: int, *, passes: int = 3, max_rows: int = 20_000) -> np.ndarray:
        """Each channel's share of one event of a series (rows ``start``..``end`` of ``X``,
        inclusive): which sensor to blame. See :func:`aeviz_core.explain.blame`.

        Returns
        -------
        shares : ndarray, shape (n_channels,)
            Non-negative, summing to 1 (equal shares when nothing stands out).
        """
        return explain.blame(self, X, start, end, passes=passes, max_rows=max_rows)

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

    def latent_starts(self, n_rows: int) -> np.ndarray:
        """For a series: the first row of each latent point returned by :meth:`transform`."""
        return window_starts(n_rows, self.window, self.stride)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_runner", None)  # compiled functions do not pickle
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = True
        return tags
