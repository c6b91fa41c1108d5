"""Inference: a trained model's forward pass compiled once, run over batches of items or
windows, with the squared error reduced on the device.

:class:`Inference` is what :class:`~aeviz_core.detector.AutoencoderDetector` scores,
encodes and rebuilds with; each detector builds one lazily and never pickles it.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .models import inference_function
from .windows import iter_window_batches, overlap_average

__all__ = ["Inference", "scoring_batch"]


@functools.cache
def on_accelerator() -> bool:
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


def scoring_batch(cpu_batch: int) -> int:
    """Items per compiled scoring call: ``cpu_batch`` on CPUs, 16 times more on an accelerator.

    On CPUs larger batches gain nothing (a 2-core machine scored 64x8 windows
    at 38,000/s in batches of 512 and 27,000/s in batches of 8,192); on a GPU
    each call's fixed cost dominates small batches (an H200 through JAX:
    550,000/s in batches of 512, 1,480,000/s in batches of 8,192).
    """
    return cpu_batch * 16 if on_accelerator() else cpu_batch


class Inference:
    """A trained Keras autoencoder's compiled forward pass and squared error.

    Parameters
    ----------
    model : keras.Model
        The trained autoencoder (``model(x)`` rebuilds ``x``; ``model.encode(x)`` codes it).
    item_shape : tuple
        The shape of one model input (a window ``(window, channels)``, a row, an image).
    """

    def __init__(self, model, item_shape):
        self.model = model
        self.item_shape = tuple(item_shape)
        self._scorers = {}

    @functools.cached_property
    def forward(self):
        """:func:`~aeviz_core.models.inference_function` of the model, once checked against
        ``model(x)`` on a probe batch (else ``model(x)`` itself)."""
        model = self.model
        plain = lambda x: model(x, training=False)  # noqa: E731
        forward = inference_function(model)
        probe = np.random.default_rng(0).normal(size=(4, *self.item_shape)).astype(np.float32)
        want = keras.ops.convert_to_numpy(plain(probe))
        got = keras.ops.convert_to_numpy(forward(probe))
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4 * (1 + np.abs(want).max())):
            return plain
        return forward

    def scorer(self, reduce: bool):
        """A jitted scoring function, built once and reused.

        ``reduce=True``: ``x -> per-channel mean squared error (b, channels)``,
        averaged on the device so only b x channels floats come back;
        ``reduce=False``: ``x -> squared error`` of x's shape (series need
        every position). The forward pass and the error run in one compiled
        call, without ``model.predict``'s per-call set-up.
        """
        if reduce not in self._scorers:
            forward = self.forward

            def score(x):
                sq = keras.ops.square(x - forward(x))
                if reduce and sq.ndim > 2:
                    return keras.ops.mean(sq, axis=tuple(range(1, sq.ndim - 1)))
                return sq

            backend = keras.backend.backend()
            if backend == "tensorflow":
                import tensorflow as tf

                self._scorers[reduce] = tf.function(score, reduce_retracing=True)
            elif backend == "jax":
                import jax

                self._scorers[reduce] = jax.jit(score)
            else:
                self._scorers[reduce] = score
        return self._scorers[reduce]

    def scored_batches(self, batches, n, batch_size, reduce):
        """Run the compiled scorer over ``(key, batch)`` pairs, padding short batches.

        Every call sees one batch shape, so nothing is traced twice. One batch
        stays in flight: the next is dispatched before the last one's result is
        read back, so on an accelerator (JAX dispatches asynchronously) its
        transfer and the host's work overlap the computation.
        """
        scorer = self.scorer(reduce)
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

    def item_errors(self, items, batch_size=None):
        """``(mean squared error per item, per item and channel)`` of scaled items."""
        n = len(items)
        batch_size = batch_size or scoring_batch(512)
        chan_err = np.empty((n, items.shape[-1]), dtype=np.float64)
        batches = ((i, items[i : i + batch_size]) for i in range(0, n, batch_size))
        for i, per_channel in self.scored_batches(batches, n, batch_size, reduce=True):
            chan_err[i : i + len(per_channel)] = per_channel
        return chan_err.mean(axis=1), chan_err

    def series_errors(self, Xs, window: int):
        """Per-row, per-channel squared error of scaled rows, averaged over the stride-1 windows
        covering each row."""
        n, c = Xs.shape
        batch_size = scoring_batch(max(256, 2**18 // (window * c)))
        batches = iter_window_batches(Xs, window, 1, batch_size)
        return overlap_average(self.scored_batches(batches, n - window + 1, batch_size, reduce=False), n, window, c)

    def rebuild(self, items, batch_size=4096) -> np.ndarray:
        """Reconstructions of scaled items (scaled units)."""
        return np.concatenate([np.asarray(self.model(items[i : i + batch_size], training=False))
                               for i in range(0, len(items), batch_size)])

    def rebuild_rows(self, Xs, window: int) -> np.ndarray:
        """Scaled rows of a series rebuilt, each averaged over the stride-1 windows covering it."""
        n, c = Xs.shape
        batches = ((starts, np.asarray(self.model(np.asarray(windows), training=False)))
                   for starts, windows in iter_window_batches(Xs, window, 1, 4096))
        return overlap_average(batches, n, window, c)

    def rebuild_stack(self, stack, window: int) -> np.ndarray:
        """:meth:`rebuild_rows` of ``k`` equally long stretches, ``stack`` of shape (k, rows,
        channels): their windows go through the model together, not one stretch per call."""
        def rebuilt(windows):
            return np.concatenate([np.asarray(self.model(windows[i : i + 4096], training=False))
                                   for i in range(0, len(windows), 4096)])

        return self._stacked(stack, window, rebuilt, self.rebuild_rows)

    def errors_stack(self, stack, window: int) -> np.ndarray:
        """:meth:`series_errors` of ``k`` equally long stretches (``stack``: k, rows, channels)."""
        def squared(windows):
            m, c = len(windows), windows.shape[-1]
            size = scoring_batch(max(256, 2**18 // (window * c)))
            out = np.empty(windows.shape, dtype=np.float64)
            batches = ((i, windows[i : i + size]) for i in range(0, m, size))
            for i, part in self.scored_batches(batches, m, size, reduce=False):
                out[i : i + len(part)] = part
            return out

        return self._stacked(stack, window, squared, self.series_errors)

    #: windows one stacked call holds at most (beyond, one stretch at a time)
    STACKED_WINDOWS = 65_536

    def _stacked(self, stack, window, per_window, single) -> np.ndarray:
        """``per_window`` (windows -> one value per window position) over every stride-1 window
        of each stretch, averaged onto its rows; ``single`` (one stretch) where that many windows
        would not fit in :data:`STACKED_WINDOWS`."""
        k, n, c = stack.shape
        starts = np.arange(n - window + 1)
        if k * len(starts) > self.STACKED_WINDOWS:  # long stretches: one at a time, memory bounded
            return np.stack([single(stack[j], window) for j in range(k)])
        windows = sliding_window_view(stack, window, axis=1).transpose(0, 1, 3, 2).reshape(-1, window, c)
        values = np.asarray(per_window(np.ascontiguousarray(windows, dtype=np.float32)))
        values = values.reshape(k, len(starts), window, c)
        return np.stack([overlap_average([(starts, values[j])], n, window, c) for j in range(k)])

    def encode(self, items, batch_size=4096) -> np.ndarray:
        """Latent codes (a VAE's means) of scaled items, as float32."""
        out = [np.asarray(self.model.encode(items[i : i + batch_size])) for i in range(0, len(items), batch_size)]
        return np.concatenate(out).astype(np.float32)
