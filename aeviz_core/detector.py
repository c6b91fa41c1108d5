"""``AutoencoderDetector``: a scikit-learn outlier detector around a Keras autoencoder.

Score direction, everywhere in aeviz:

* :meth:`AutoencoderDetector.reconstruction_error` and
  :meth:`~AutoencoderDetector.channel_errors`: **higher = worse**;
* :meth:`~AutoencoderDetector.anomaly_score` and
  :meth:`~AutoencoderDetector.channel_scores` (both in one pass:
  :meth:`~AutoencoderDetector.score_parts`): **higher = more anomalous**,
  the score that is thresholded (for tables and images fitted without labels,
  the reconstruction error's and an IsolationForest's robust z-scores summed;
  the reconstruction error for windows and labelled items; a residual-energy
  test for series);
* :meth:`~AutoencoderDetector.score_samples`: scikit-learn's convention,
  **higher = more normal** (``-anomaly_score``); :meth:`~AutoencoderDetector.score`
  is their mean, one float;
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
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted

from . import explain, preparation, training
from .inference import Inference
from .isolation import IsolationTrees, PartReference
from .preparation import Preparation
from .scores import (LASTING_MARGIN, LASTING_PERCENTILE, LASTING_VERSION, REGIME_VERSION, SCORE_VERSION, SERIES_MARGIN,
                     SERIES_PERCENTILE, SeriesScore, fit_series_statistics)
from .settings import (TrainingPlan, adapt_rows, check_settings, isolation_setting, row_period_seconds, training_plan,
                       trim_setting)
from .thresholds import ThresholdRule, check_margin, widen
from .windows import segments, window_starts

__all__ = ["AutoencoderDetector", "ModelMismatchError"]


class ModelMismatchError(ValueError):
    """The data does not match the model (other channels, order, width or item shape)."""


#: :meth:`AutoencoderDetector.refine`'s batches, in the training's: twice, at twice the rate
REFINE_BATCH_FACTOR = 2


def statistics_end(normal: np.ndarray, context_rows: int, cover: int = 0) -> int:
    """The rows of a series its statistics are fitted over: up to the last ``normal`` one, or the
    row before ``cover`` when that is later, and the ``context_rows`` their scores depend on (the
    rows after them fit nothing); all rows without a normal one."""
    rows = np.flatnonzero(normal)
    if not len(rows):
        return len(normal)
    return min(len(normal), max(int(rows[-1]) + 1, int(cover)) + int(context_rows))


class AutoencoderDetector(OutlierMixin, BaseEstimator):
    """Anomaly detector scoring items by how badly an autoencoder rebuilds them.

    The estimator holds the parameters and the fitted state and keeps scikit-learn's
    contract; the work is done by the stages of the data flow: :mod:`~aeviz_core.preparation`
    (inputs, levels, scaling), :mod:`~aeviz_core.training`, :mod:`~aeviz_core.inference`,
    :mod:`~aeviz_core.scores`, :mod:`~aeviz_core.thresholds` and :mod:`~aeviz_core.explain`.

    Parameters
    ----------
    model : {"ae", "conv-ae", "vae", "conv-vae"}, default "ae"
        Dense or convolutional (Conv1D on windows, Conv2D on images) AE or VAE.
    latent_dim : int or "auto", default "auto"
        Size of the code. ``"auto"`` serves detection: as many as the principal
        components holding 90% of a table's or images' scaled variance (2 to
        32), 16 for a series. ``latent_dim=2`` is the model meant to be
        looked at (drawn directly, with the neighbour term).
    hidden : tuple of int or None, default None
        Dense units (default ``(256, 128)``) or conv filters per stride-2
        block (``conv-*``, default ``(32, 64)``).
    activation : str, default "gelu"
    epochs, batch_size, early_stopping, neighbor_weight
        ``None`` / ``"auto"``: see :func:`~aeviz_core.settings.training_plan`
        (60 epochs in batches of 64 with early stopping and no neighbour term,
        except for an AE with a 2-D or 3-D latent: neighbour weight 0.3, 150
        epochs in batches of 512, no early stop). The neighbour term
        (:func:`aeviz_core.models.neighbor_embedding_loss`, not for VAEs) keeps
        items near in the input near in the latent, as t-SNE does; early
        stopping keeps the best weights after ``patience`` epochs without a
        better validation loss.
    learning_rate : float, default 3e-3
        Peak rate of Adam with cosine decay.
    beta : float, default 1.0
        KL weight of a VAE.
    vae_weighting : {"elbo", "demo"}, default "elbo"
        See :mod:`aeviz_core.models`; ``"demo"`` reproduces the collapse.
    window : int or None, default None
        Window length when a 2-D input is a time series; ``None`` = a table.
    stride : int, default 1
        Step between training windows (scoring uses every window).
    smooth : int or None, default None
        Rows of residual averaged around each row of a series (``None``: the
        score version's default, see :class:`~aeviz_core.scores.SeriesScore`).
    scaling : {"channel", "global", "none"}, default "channel"
        Per-channel standardisation (sensors in different units), one
        scale for all values (pixels), or none.
    threshold : str, default "percentile"
        Threshold rule (see :mod:`aeviz_core.thresholds`).
    threshold_param : float or None
        The rule's parameter (``None``: its default; under the percentile rule a
        ``series_score="lasting"`` model takes the 99.95th, a ``"regime"`` one the
        99.9th). A series model's fitted rules are widened by ``threshold_margin_``.
    validation_fraction : float, default 0.1
        Held-out share of the training items (for a series, blocks spread
        over the training period; a random share of tables and images):
        early stopping and the threshold use their errors, which are honest
        where training errors are optimistic.
    patience : int, default 8
    random_state : int or None
        Makes a run repeatable (weights, shuffling, VAE sampling).
    verbose : int, default 0
    level : {"auto", "range", "relative", "absolute"}, default "auto"
        Series only: what happens to each channel's slow level (its running
        median over ``level_window`` rows). ``"auto"``: with the lasting score,
        kept on steady channels (noise around a level) and taken out on
        wandering ones (``steady_``; docs/series-scoring.md); with the older
        scores, ``"range"``. ``"range"``: taken out where it leaves the range it
        took in training; ``"relative"``: always; ``"absolute"``: never
        (models saved before the option).
    level_window : int or "auto", default "auto"
        ``"auto"``: ``32 * window + 1`` rows, and for ``level="auto"`` at most
        a quarter of the normal training rows (``level_rows_``).
    event_gap : int or "auto", default "auto"
        Flagged runs at most this many rows apart are one event
        (:mod:`aeviz_core.events`) wherever this model's events are listed.
        ``"auto"``: the window (0 for a table).
    series_score : {"lasting", "smooth", "regime"}, default "lasting"
        Series only: how rows are scored (:meth:`anomaly_score`). ``"lasting"``
        (score version 5) keeps a lasting change flagged until ``adapt_after``;
        ``"smooth"`` and ``"regime"`` are the scores of models saved before it,
        which adopt a lasting change on their own (docs/series-scoring.md).
    adapt_after : int, str or None, default None
        Series with the lasting score: a change that has lasted this long
        becomes the channel's reference (the new normal): a number of rows, or a
        duration such as ``"6h"`` or ``"1d"`` read against the times of a
        DataFrame indexed by time. ``None``: never.
    trim : float or "auto", default "auto"
        Share of each training (and validation) batch's items, those the model
        rebuilds worst, given weight 0 in the loss
        (:func:`aeviz_core.models.trim_weights`), in [0, 0.5). Unlabelled
        training items hold the anomalies nobody has found yet; items the model
        cannot rebuild from the start never pull it towards them, so it learns
        the majority. ``"auto"``: 0.25 for an autoencoder on items (a table,
        images); 0 for series and windows (their held-out statistics and
        thresholds are tuned without it), for VAEs (not measured) and for a
        model with the neighbour term (a 2-D or 3-D latent meant to be looked
        at: its layout places every item, and on the digits it kept its
        trustworthiness floor only untrimmed).
    isolation : bool or "auto", default "auto"
        Whether an item's anomaly score also counts an IsolationForest
        (:mod:`aeviz_core.isolation`; scikit-learn's defaults, ``random_state``)
        fitted on the scaled training items: the score is then
        ``z_ae + z_if``, each part the robust z-score of its log against the
        training items, ``(log s - median) / (0.7413 * IQR)``, of
        ``s_ae`` = the reconstruction error and ``s_if`` = the forest's
        anomaly score. An autoencoder alone misses anomalies it can rebuild,
        a forest those inside the data's range; the sum keeps both.
        ``"auto"``: on for items fitted without ``anomalous=`` labels (where the
        training data may hold anomalies); off for labelled fits (the model
        then knows normal) and for series and windows. ``True`` on a series is a
        ValueError.

        Measured with ``bench/tabular.py`` (ADBench's protocol: a stratified
        70/30 split, fit on the contaminated part, ROC-AUC x100 on the rest,
        seeds 0-2; docs/items.md has the tables, and they are rerun there).
        On the 22 development tables, the two settings together score 77.1 on
        average (IsolationForest 74.2), with the worst set 10.4 points below
        IsolationForest and none more than 15 below. Without them the mean was
        72.5, the worst set 37.3 below, and 5 sets more than 15 below. On the
        digits, with each digit in turn the rare class, the default scores
        69.2 against IsolationForest's 66.6 (70.6 without the two settings,
        but then one digit falls 19.1 below).

    Attributes
    ----------
    model_ : keras.Model
    scaler_ : ChannelScaler or None
    threshold_ : float
        Flag when ``anomaly_score > threshold_``.
    threshold_margin_ : float
        Factor on a fitted rule's distance above the median of ``fit_errors_``
        (not for ``"manual"``): for a series model 1.5 with the lasting score
        (:data:`~aeviz_core.scores.LASTING_MARGIN`) and 1.2 with the older ones
        (:data:`~aeviz_core.scores.SERIES_MARGIN`), whose few thousand
        autocorrelated held-out rows sit below the tail of months of normal
        rows; 1 otherwise and for models saved before it.
    threshold_source_ : {"held-out", "training"}
        Where ``fit_errors_`` come from: held-out rows that no labelled
        anomaly reaches, or the training items (when too few were held out, or,
        for the lasting score, when they give the higher threshold).
    steady_, level_rows_, channel_tail_, adapt_rows_ : ndarray, int
        Series with the lasting score: the channels whose level is kept, the rows
        of the running level of the others, each channel's tail (its residual's
        99th percentile on the threshold's rows) and ``adapt_after`` in rows
        (0: never).
    fit_errors_ : ndarray
        Anomaly scores the threshold is fitted on, kept so it can move
        without retraining.
    trim_ : float
        The share of each batch left out of the loss (``trim`` resolved; 0 for
        models saved before it).
    isolation_ : bool
        Whether the anomaly score counts the IsolationForest (``isolation``
        resolved; False for models saved before it).
    forest_ : IsolationTrees or None
        The fitted IsolationForest as arrays (:class:`~aeviz_core.isolation.IsolationTrees`).
    part_reference_ : tuple of PartReference or None
        Median and spread of the log of each part (reconstruction error, forest
        score) on the normal training items.
    offset_ : float
        ``-threshold_`` (scikit-learn's convention).
    channel_scale_, step_scale_, reference_scale_, level_, train_range_ : ndarray
        Series only, per channel: see :func:`aeviz_core.scores.fit_series_statistics`.
    n_features_in_, feature_names_in_, item_shape_, input_kind_, latent_dim_
    history_ : dict of lists
    interrupted_ : bool
        True when a stop request ended training early.
    fingerprint_, model_id_ : str
        Hashes of the training data and of the trained model (which keys
        operators' reviews).

    Examples
    --------
    >>> det = AutoencoderDetector(epochs=5, random_state=0).fit(X_train)  # doctest: +SKIP
    >>> det.predict(X_new)  # +1 normal, -1 flagged                   # doctest: +SKIP
    """

    def __init__(self, model="ae", latent_dim="auto", hidden=None, activation="gelu",
                 epochs=None, batch_size=None, learning_rate=3e-3, beta=1.0, vae_weighting="elbo",
                 window=None, stride=1, smooth=None, scaling="channel", threshold="percentile",
                 threshold_param=None, validation_fraction=0.1, early_stopping="auto",
                 patience=8, neighbor_weight="auto", random_state=None, verbose=0, level="auto",
                 level_window="auto", event_gap="auto", series_score="lasting", adapt_after=None, trim="auto",
                 isolation="auto"):
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
        self.adapt_after = adapt_after
        self.trim = trim
        self.isolation = isolation

    # ------------------------------------------------------------------ validation
    def _check_array(self, X, *, fitting=False) -> np.ndarray:
        """Turn X into a float array (:func:`~aeviz_core.preparation.as_array`); remember or
        check its columns."""
        series = self.window is not None if fitting else getattr(self, "input_kind_", None) == "series"
        if not fitting:
            check_is_fitted(self, "model_")
        X, names = preparation.as_array(X, series, self, min_samples=2 if fitting else 1)
        if fitting:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            problem = self.mismatch(X.shape, names)
            if problem:
                raise ModelMismatchError(problem)
        return X

    def check_input(self, X) -> np.ndarray:
        """``X`` as the fitted model reads it: a float array of the training columns, in their
        order (:class:`ModelMismatchError` when it does not fit). For code that hands ``X`` to
        this model's stages (:meth:`model_input`, :meth:`inference`, :meth:`series_scorer`),
        as :mod:`~aeviz_core.explain` does."""
        return self._check_array(X)

    def mismatch(self, shape, names=None) -> str | None:
        """Why data of ``shape`` (with channel ``names``, when known) does not fit this model, in
        one line, or None when it does: other channels or another order, another width or
        item shape, too few rows for a window. The app lists only models that fit its data
        set with it; scoring raises :class:`ModelMismatchError` with it."""
        check_is_fitted(self, "model_")
        return preparation.mismatch(self, shape, names)

    def training_plan(self) -> TrainingPlan:
        """What the ``"auto"`` and ``None`` training settings come to (epochs, batch size, ...)."""
        return training_plan(self.get_params())

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, *, anomalous=None, progress=None, stop=None):
        """Train the autoencoder on normal data and fit the threshold.

        Parameters
        ----------
        X : array-like or DataFrame
            Of a shape the module docstring lists; a series may hold NaN rows (gaps).
        y : None
            Not used, present for API consistency (as in scikit-learn's outlier
            detectors). Model selection (``cross_validate``, ``GridSearchCV``) passes its
            labels here; were they used to leave anomalies out of training, a score such
            as ROC AUC would be read on a model that knew them.
        anomalous : array-like of shape (n_items,) or (n_rows,), optional
            1 (or True) for items known to be anomalous, asked for by name: only normal
            data trains (for a series the windows whose rows are all normal) and no
            held-out row a labelled anomaly reaches fits the threshold. With labels,
            ``isolation="auto"`` scores items by their reconstruction error alone.
        progress : callable, optional
            ``progress(EpochInfo)`` is called after every epoch.
        stop : object with ``is_set()``, optional
            E.g. a ``threading.Event``: ends training after the current batch
            (``interrupted_`` True; the model keeps the weights reached and is usable).

        Returns
        -------
        self : AutoencoderDetector
        """
        check_settings(self.get_params())
        period = row_period_seconds(X.index.to_series()) if isinstance(getattr(X, "index", None), pd.DatetimeIndex) else None
        X = self._check_array(X, fitting=True)
        if self.random_state is not None and keras.backend.backend() != "tensorflow":
            # on TensorFlow every source of randomness is seeded on its own (the
            # initialisers, the tf.data shuffle, the VAE's sampling), so concurrent
            # fits in one process (app sessions) never reseed each other; other
            # backends shuffle arrays with the process-wide generators
            keras.utils.set_random_seed(int(self.random_state))
        rng = np.random.default_rng(self.random_state)
        self.input_kind_ = preparation.input_kind(X, self.window, self.model)
        self.trim_ = trim_setting(self.trim, self.input_kind_, self.model, self.training_plan().neighbor_weight)
        self.isolation_ = isolation_setting(self.isolation, self.input_kind_, anomalous is not None)
        self.n_features_in_ = X.shape[-1]
        self.fingerprint_ = training.data_fingerprint(X)
        normal = training.normal_from_labels(anomalous, len(X))
        series = self.input_kind_ == "series"
        if series:
            self.score_version_ = {"regime": REGIME_VERSION, "lasting": LASTING_VERSION}.get(self.series_score,
                                                                                            SCORE_VERSION)
            self.adapt_rows_ = adapt_rows(self.adapt_after, period)
            normal = training.trainable_rows(X, normal, self.window)
        for stale in ("steady_", "level_rows_", "channel_tail_", "level_range_", "forest_", "part_reference_"):
            self.__dict__.pop(stale, None)  # a refit starts afresh
        prep, detrended = Preparation.fit(self, X, normal if series else None)
        self.scaler_ = prep.scaler
        if prep.level_range is not None:
            self.level_range_ = prep.level_range
        if prep.steady is not None:  # level="auto": which channels keep their level, how long the running one is
            self.steady_, self.level_rows_ = prep.steady, prep.level_rows
        self._train_and_calibrate(X, prep.scale(detrended), normal, rng, progress, stop)
        return self

    def _train_and_calibrate(self, X, Xs, normal, rng, progress, stop, *, start_from=None, epochs=None,
                             learning_rate=None, batch_size=None, watch=True, rows_out=None, cover=0) -> None:
        """Train on the ``normal`` items of the prepared ``Xs`` (from ``start_from``'s weights when
        given), then fit the series statistics and the threshold: the part of :meth:`fit` that
        :meth:`refine` repeats. ``Xs`` need only hold the rows up to :func:`statistics_end` with
        ``cover`` (``rows_out``: see :func:`~aeviz_core.scores.fit_series_statistics`)."""
        series, fraction = self.input_kind_ == "series", float(self.validation_fraction)
        if series:
            train, val, held = training.split_series(Xs, normal, self.window, self.stride, fraction)
        else:
            train, val = training.split_items(Xs, normal, fraction, self.input_kind_ in ("table", "images"), rng)
        self.item_shape_ = tuple(train.shape[1:])
        if start_from is None:
            self.latent_dim_ = (int(self.latent_dim) if self.latent_dim != "auto"
                                else training.auto_latent_dim(train, self.input_kind_))
        plan = self.training_plan()
        if epochs is not None:
            plan = replace(plan, epochs=int(epochs))
        if batch_size is not None:
            plan = replace(plan, batch_size=int(batch_size))
        self.model_, self.history_, self.interrupted_ = training.train_model(
            self, plan, train, val if watch else None, progress, stop, start_from=start_from,
            learning_rate=learning_rate)
        self.model_id_ = training.weights_fingerprint(self.model_)
        self.threshold_source_ = "held-out" if val is not None else "training"
        if series:
            end = statistics_end(normal, self.context_rows, cover)
            for name, value in fit_series_statistics(self, X[:end], Xs[:end], normal[:end], held[:end],
                                                     rows_out=rows_out).items():
                setattr(self, name, value)
        else:
            self._fit_isolation(Xs if normal is None else Xs[normal])
            self.fit_errors_ = self._item_scores(val if val is not None else train)[0]
        version = getattr(self, "score_version_", 0)
        self.threshold_margin_ = (LASTING_MARGIN if version >= LASTING_VERSION else SERIES_MARGIN) if series else 1.0
        param = self.threshold_param
        if param is None and version >= REGIME_VERSION and self.threshold == "percentile":
            param = LASTING_PERCENTILE if version >= LASTING_VERSION else SERIES_PERCENTILE
        self.set_threshold(self.threshold, param)

    def _fit_isolation(self, items) -> None:
        """With ``isolation_``: the IsolationForest on the scaled normal training ``items`` and
        each score part's reference on them (see :mod:`aeviz_core.isolation`)."""
        self.forest_, self.part_reference_ = None, None
        if not getattr(self, "isolation_", False):
            return
        flat = items.reshape(len(items), -1)
        self.forest_ = IsolationTrees.fit(flat, random_state=self.random_state)
        errors = self.inference().item_errors(items)[0]
        self.part_reference_ = (PartReference.fit(errors), PartReference.fit(self.forest_.anomaly_scores(flat)))

    def refine(self, X, normal, *, epochs=None, learning_rate=None, progress=None, stop=None, rows_out=None,
               cover=0) -> AutoencoderDetector:
        """A new detector fine-tuned on the ``normal`` rows (or items) of ``X``, from this model's
        weights; this one is left as it is.

        What operators decided teaches the model (:func:`aeviz_core.feedback.refit` builds
        ``normal`` from their decisions). The preparation is kept (scaling, levels, steady
        channels), so the weights fit their input; the series statistics, the tails and the
        threshold (the same rule) are fitted anew on the new normal rows, so a change they hold
        (a dismissed shift) becomes normal. Items keep the model's ``trim_`` and ``isolation_``;
        the IsolationForest and the score parts' references are fitted anew on the normal items.

        Parameters
        ----------
        X : array-like or DataFrame
            Data of the shape this model scores.
        normal : array-like of bool, shape (n_rows,) or (n_items,)
            The rows (items) to learn from.
        epochs : int, optional
            At most this many epochs (default :meth:`refine_epochs`). The held-out rows fit the
            threshold but are not watched by early stopping: a fine-tune of a few epochs at a
            decaying rate keeps its best epoch by the training loss, and skips the held-out
            pass and its graph (same flags on ``bench/feedback.py``'s three sets).
        learning_rate : float, optional
            Peak rate of the fine-tune (default two thirds of the model's). The fine-tune's
            batches hold :data:`REFINE_BATCH_FACTOR` times the training's items, so it takes
            half the steps, each at twice the rate it had with the training's batches (a third
            of the model's): on ``bench/feedback.py`` the pump's refit took 2.4 s instead of
            3.1-4.1 s with the same figures, SKAB's missed rows moved by 0.1 point and GECCO's F1
            after a month of decisions went from 0.634 to 0.640 (with the training's batches at
            a third of the rate, 0.619).
        progress, stop : optional
            As in :meth:`fit`.
        rows_out : dict, optional
            A series only: receives the new version's ``"scores"`` and channel ``"parts"`` of the
            rows its statistics cover (those up to the last normal row, or the row before
            ``cover`` when that is later, and :attr:`context_rows` more; the scores of all but
            the last :attr:`context_rows` are what :meth:`score_parts` of the whole series
            gives). :func:`aeviz_core.feedback.refit` reads the decided rows' scores there
            instead of scoring them again.
        cover : int, optional
            A series only: the statistics cover at least the rows before this one.

        Returns
        -------
        detector : AutoencoderDetector
            Fitted; ``model_id_`` names the new weights.
        """
        check_is_fitted(self, "model_")
        X = self._check_array(X)
        normal = np.asarray(normal, dtype=bool)
        if normal.shape != (len(X),):
            raise ValueError(f"normal must hold one flag per row of X ({len(X)}), got shape {normal.shape}")
        new = copy.copy(self)
        new.__dict__.pop("_runner", None)
        prep = Preparation.of(self)
        if self.input_kind_ == "series":
            normal = training.trainable_rows(X, normal, self.window)
            # only the rows that training and the statistics read are prepared (the level of the
            # rows after them would not change theirs); the others stay NaN, which nothing reads
            end = statistics_end(normal, self.context_rows, cover)
            Xs = np.full(X.shape, np.nan, dtype=np.float32)
            Xs[:end] = prep.scale(prep.detrended(X[:end]))
        else:
            if not normal.any():
                raise ValueError("normal marks no item: nothing to learn from")
            Xs = prep.scale(X)
        epochs = self.refine_epochs() if epochs is None else int(epochs)
        # a third of the model's rate per batch of the training's size, so REFINE_BATCH_FACTOR times it
        rate = float(self.learning_rate) / 3 * REFINE_BATCH_FACTOR if learning_rate is None else float(learning_rate)
        new.fingerprint_ = training.data_fingerprint(X[normal])
        new._train_and_calibrate(X, Xs, normal, np.random.default_rng(self.random_state), progress, stop,
                                 start_from=self.model_, epochs=epochs, learning_rate=rate,
                                 batch_size=REFINE_BATCH_FACTOR * self.training_plan().batch_size, watch=False,
                                 rows_out=rows_out, cover=cover)
        return new

    def refine_epochs(self) -> int:
        """The most epochs :meth:`refine` runs by default: a twelfth of the training plan's, at least 5.
        ``bench/feedback.py`` with 3 instead: the pump's refit took 0.34 of its first training instead
        of 0.45-0.55 with the same flags, SKAB's the same, but GECCO's F1 after a month of decisions
        fell to 0.573 (0.634 with 5); a refit's graph building and new threshold cost what they cost
        in a first training, so fewer epochs save less than their share."""
        return max(5, self.training_plan().epochs // 12)

    def event_gap_rows(self) -> int:
        """The rows of :attr:`event_gap` (``"auto"``: the window, 0 without one)."""
        return int(self.window or 0) if self.event_gap == "auto" else int(self.event_gap)

    # ------------------------------------------------------------------ preparation
    def _scale(self, X) -> np.ndarray:
        return Preparation.of(self).scale(X)

    def _unscale(self, values) -> np.ndarray:
        return Preparation.of(self).unscale(values)

    def model_input(self, X) -> np.ndarray:
        """Model input of a gap-free piece of a series: detrended, then scaled."""
        return Preparation.of(self).prepare(X)

    # ------------------------------------------------------------------ thresholds
    def set_threshold(self, rule=None, param=None, margin=None):
        """Refit the threshold from the stored errors, in place, without retraining: ``rule``
        (None: the current one) with ``param`` (None: its default, or the current one when the
        rule is kept too; ``"manual"``: the threshold itself), and a new ``threshold_margin_``
        (>= 1; None keeps it). Returns self."""
        check_is_fitted(self, "fit_errors_")
        if rule is None and param is None:  # only the margin changes: the rule stays as it is
            param = self.threshold_rule_.param
        spec = ThresholdRule(rule or self.threshold_rule_.rule, param).resolved()
        if margin is not None:
            self.threshold_margin_ = check_margin(margin)
        self.threshold_rule_ = spec
        fitted = spec.fit(self.fit_errors_)
        self.threshold_ = (fitted if spec.rule == "manual"
                           else widen(fitted, self.fit_errors_, getattr(self, "threshold_margin_", 1.0)))
        self.offset_ = -self.threshold_
        return self

    def with_threshold(self, rule=None, param=None, margin=None) -> AutoencoderDetector:
        """A copy with another threshold (:meth:`set_threshold`), sharing the Keras model: use it
        on a detector shared between sessions (``st.cache_resource``), which is never mutated."""
        other = copy.copy(self)
        return other.set_threshold(rule, param, margin)

    # ------------------------------------------------------------------ scoring core
    def inference(self) -> Inference:
        """The trained model's compiled scorer (built once per model, never pickled)."""
        check_is_fitted(self, "model_")
        run = self.__dict__.get("_runner")
        if run is None or run.model is not self.model_:
            run = self.__dict__["_runner"] = Inference(self.model_, self.item_shape_)
        return run

    def series_scorer(self) -> SeriesScore:
        """How this series model turns squared errors into scores (see :mod:`aeviz_core.scores`)."""
        return SeriesScore.of(self.window, getattr(self, "score_version_", SCORE_VERSION), self.smooth,
                              Preparation.of(self).level_rows, getattr(self, "channel_scale_", None),
                              getattr(self, "step_scale_", None), getattr(self, "reference_scale_", None),
                              steady=getattr(self, "steady_", None), tail=getattr(self, "channel_tail_", None),
                              adapt_rows=getattr(self, "adapt_rows_", 0))

    def _by_segment(self, X, fn) -> np.ndarray:
        """``fn(prepared piece)`` on each gap-free stretch of a series of at least one
        window; NaN on gap rows and on stretches shorter than a window."""
        out = np.full(X.shape, np.nan)
        for a, b in segments(X, self.window):
            out[a:b] = fn(self.model_input(X[a:b]))
        return out

    def _errors(self, X):
        """(item_errors, channel_errors): scaled MSE; for a series normalised per channel
        (NaN on gap rows)."""
        run = self.inference()
        if self.input_kind_ == "series":
            chan = self._by_segment(X, lambda Xs: run.series_errors(Xs, self.window) / self.channel_scale_)
            return chan.mean(axis=1), chan
        return run.item_errors(self._scale(X))

    def _item_scores(self, Xs):
        """(anomaly_score, channel_errors) of scaled items: the reconstruction error, or with
        ``isolation_`` the sum of the two parts' z-scores."""
        errors, channels = self.inference().item_errors(Xs)
        if not getattr(self, "isolation_", False):
            return errors, channels
        reconstruction, isolation = self.part_reference_
        isolated = self.forest_.anomaly_scores(Xs.reshape(len(Xs), -1))
        return reconstruction.z(errors) + isolation.z(isolated), channels

    def _scores(self, X):
        """(anomaly_score, channel_scores) of checked X: see :meth:`anomaly_score`."""
        if self.input_kind_ != "series":
            return self._item_scores(self._scale(X))
        run, score = self.inference(), self.series_scorer()
        scores, parts = np.full(len(X), np.nan), np.full(X.shape, np.nan)
        for a, b in segments(X, self.window):
            Xs = self.model_input(X[a:b])
            scores[a:b], parts[a:b] = score.scores(Xs, run.series_errors(Xs, self.window))
        return scores, parts

    @property
    def context_rows(self) -> int:
        """Rows on each side that a row's score depends on (0 for tables, windows, images): a
        piece of a series scored with this many extra rows each side scores as the whole."""
        check_is_fitted(self, "model_")
        return self.series_scorer().context_rows if self.input_kind_ == "series" else 0

    @property
    def reach_rows(self) -> int:
        """Rows on each side whose readings move a row's score directly (its windows and the
        averages over them; 0 for tables, windows, images): the rows a fault lends its score to."""
        check_is_fitted(self, "model_")
        return self.series_scorer().reach if self.input_kind_ == "series" else 0

    # ------------------------------------------------------------------ public scoring API
    def reconstruction_error(self, X) -> np.ndarray:
        """Mean squared reconstruction error of each item, or row of a series (higher = worse),
        in scaled units; a series' channels each over their held-out mean (``channel_scale_``),
        so 1 is a typical error."""
        X = self._check_array(X)
        return self._errors(X)[0]

    def channel_errors(self, X) -> np.ndarray:
        """Reconstruction error per channel, ``(n, n_channels)``: row ``i`` averages to
        ``reconstruction_error(X)[i]``."""
        X = self._check_array(X)
        return self._errors(X)[1]

    def anomaly_score(self, X) -> np.ndarray:
        """The score that is thresholded and flagged (higher = more anomalous).

        For windows, and for tables and images fitted with ``anomalous=`` labels, it is
        :meth:`reconstruction_error`. For tables and images fitted without them
        (``isolation_``) it is ``z_ae + z_if``: the robust z-scores of the log of the
        reconstruction error and of an IsolationForest's score against the training items
        (0 for a typical training item, may be negative; see the ``isolation``
        parameter).
        For a series it is built from two tests per channel, each a log ratio
        (0 for rows like the normal ones; ``log 10`` = 2.3 for ten times the
        normal value), described in :class:`~aeviz_core.scores.SeriesScore`:

        * **residual**: the channel's squared error over its held-out mean
          (``channel_scale_``), against its own recent level, so a change that
          lasts (a line switched off for hours, a season the training period
          did not cover) is reported once rather than for as long as it lasts.
          Spikes, steps, noise and broken relations raise it.
        * **stillness**: how much less the channel moves than it recently did
          (a stuck sensor repeats its last value), on channels that move in
          normal rows (``step_scale_`` > 0).

        ``series_score="smooth"`` (score version 3) averages the residual over
        ``window - 1`` rows and takes the row's largest part; ``"regime"``
        (version 4) takes the geometric mean of the row's two largest
        unsmoothed residuals or its largest stillness. Models saved with an
        earlier version score as they did (``score_version_``). Gap rows
        score NaN. Returns shape ``(n_items,)`` or ``(n_rows,)``.
        """
        X = self._check_array(X)
        return self._scores(X)[0]

    def channel_scores(self, X) -> np.ndarray:
        """Per-channel parts of :meth:`anomaly_score` (argmax = the suspect sensor). For items
        they are the channel errors (:meth:`channel_errors`), also where the score counts an
        IsolationForest, which blames no feature."""
        X = self._check_array(X)
        return self._scores(X)[1]

    def score_parts(self, X) -> tuple[np.ndarray, np.ndarray]:
        """``(anomaly_score, channel_scores)`` in one pass (higher = more anomalous): the
        score of each item or row, ``(n,)``, and its channel parts, ``(n, n_channels)``."""
        X = self._check_array(X)
        return self._scores(X)

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples` over the items (a series: over its scored rows, gaps
        left out): higher = ``X`` looks more normal to the model.

        scikit-learn's ``score``: what ``GridSearchCV`` and ``cross_validate`` maximise
        when no ``scoring`` is given (a model that rebuilds held-out normal data better
        scores higher). ``y`` is not used, present for API consistency. For the scores of
        each item and their channel parts use :meth:`score_parts`.
        """
        return float(np.nanmean(self.score_samples(X)))

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's score: ``-anomaly_score`` (higher = more normal)."""
        return -self.anomaly_score(X)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples - offset_``: negative = flagged."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for normal items, -1 for flagged ones (``anomaly_score > threshold_``)."""
        return np.where(self.anomaly_score(X) > self.threshold_, -1, 1)

    def fit_transform(self, X, y=None, *, anomalous=None, progress=None, stop=None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same ``X`` (``y`` is not used)."""
        return self.fit(X, anomalous=anomalous, progress=progress, stop=stop).transform(X)

    def transform(self, X) -> np.ndarray:
        """Latent coordinates (a VAE's means), ``(n_items, latent_dim)``; for a series one per
        window, starting at :meth:`latent_starts` (NaN for a window that touches a gap)."""
        X = self._check_array(X)
        if self.input_kind_ == "series":
            Xs = training.series_windows(self._by_segment(X, lambda piece: piece), self.window, self.stride)
        else:
            Xs = self._scale(X)
        return self.inference().encode(Xs)

    def reconstruct(self, X) -> np.ndarray:
        """Reconstructions in the input's units and shape (a series: per row,
        averaged over the windows covering each row)."""
        X = self._check_array(X)
        run = self.inference()
        if self.input_kind_ != "series":
            return self._unscale(run.rebuild(self._scale(X)))
        out, prep = np.full(X.shape, np.nan), Preparation.of(self)
        for a, b in segments(X, self.window):
            detrended = prep.detrended(X[a:b])  # the running level, once per stretch
            rebuilt = prep.unscale(run.rebuild_rows(prep.scale(detrended), self.window))
            out[a:b] = rebuilt + (X[a:b] - detrended)  # the model rebuilds around the level: it goes back in
        return out

    def blame(self, X, start: int, end: int, *, passes: int = 3, max_rows: int = 20_000) -> np.ndarray:
        """Each channel's share (summing to 1) of one event of a series, rows ``start`` to ``end``
        inclusive: which sensor to blame (:func:`aeviz_core.explain.blame`)."""
        return explain.blame(self, X, start, end, passes=passes, max_rows=max_rows)

    def decode(self, Z) -> np.ndarray:
        """Items decoded from latent points ``Z`` ``(n, latent_dim)`` (a grid over the latent box,
        samples of a VAE's prior), in the data's units: ``(n, *item_shape)``, a window per
        point for a series."""
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
        """scikit-learn's tags: an outlier detector (``OutlierMixin``) that transforms to its
        latent (float32), dense input only; 2-D input is a table, or a series with
        ``window`` set, whose NaN rows are gaps (``allow_nan``); 3-D windows and 4-D images
        too, and only those for a convolutional model without a window."""
        tags = super().__sklearn_tags__()
        series = self.window is not None
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = series
        tags.input_tags.two_d_array = series or not str(self.model).startswith("conv")
        tags.input_tags.three_d_array = True
        tags.transformer_tags = TransformerTags(preserves_dtype=["float32"])
        return tags
