"""Keras 3 autoencoders: dense, Conv1D (sensor windows), Conv2D (images), and VAEs.

Only backend-agnostic Keras APIs are used (``keras.ops``, ``keras.random``,
``keras.layers``), so the same models run on TensorFlow (the default) and on
JAX (``KERAS_BACKEND=jax``). Encoder and decoder are separate ``keras.Model``
objects; the autoencoder classes are registered and rebuild themselves from
their config, so a ``.keras`` file loads with ``safe_mode=True`` and holds no
Python code.

VAE loss weighting
------------------
``weighting="elbo"`` (default) sums the squared error over the features of an
item, as the Gaussian log-likelihood in the ELBO does, and adds
``beta * KL`` with the KL summed over latent dimensions. ``weighting="demo"``
reproduces the widely copied demo: the squared error *averaged* over features
plus the KL summed. Averaging divides the data term by the number of features
(64 for 8x8 digits), so the KL term dominates and the encoder learns to map
every item onto the prior: the latent space collapses into one blob.

Trimmed loss
------------
``trim=q`` (both autoencoders) gives weight 0, in every training and validation
batch, to the share ``q`` of its items with the largest reconstruction error
(:func:`trim_weights`); the others share the loss equally. Anomalies hidden in
unlabelled training data are the items a model rebuilds worst from the start,
so they never pull it towards them: it learns the majority. A VAE trims its
reconstruction term only; its KL term is one mean over the batch (added in
``call``) and pulls every code towards the prior, not towards an item.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from .settings import MODEL_KINDS

__all__ = ["Autoencoder", "Sampling", "VariationalAutoencoder", "build_model", "trim_weights"]

ARCHITECTURES = ("dense", "conv1d", "conv2d")
VAE_WEIGHTINGS = ("elbo", "demo")


class _KernelInit:
    """Kernel initialisers seeded from one seed, so a seeded model never touches
    Keras's process-wide generator (``None``: Keras's default, unseeded)."""

    def __init__(self, seed=None):
        self.seed = seed
        self.count = 0

    def __call__(self):
        if self.seed is None:
            return "glorot_uniform"
        self.count += 1
        return keras.initializers.GlorotUniform(seed=int(self.seed) * 1000 + self.count)


def _dense_stack(units, activation, name, init):
    return [layers.Dense(u, activation=activation, kernel_initializer=init(), name=f"{name}_dense{i}")
            for i, u in enumerate(units)]


def _build_encoder(arch, input_shape, hidden, latent_outputs, activation, init, name="encoder"):
    """Encoder from ``input_shape`` to ``latent_outputs`` linear units."""
    inputs = keras.Input(shape=input_shape, name="x")
    x = inputs
    if arch == "dense":
        x = layers.Flatten()(x)
        for layer in _dense_stack(hidden, activation, "enc", init):
            x = layer(x)
    else:
        conv = layers.Conv1D if arch == "conv1d" else layers.Conv2D
        kernel = 5 if arch == "conv1d" else 3
        for i, filters in enumerate(hidden):
            x = conv(filters, kernel, strides=2, padding="same", activation=activation,
                     kernel_initializer=init(), name=f"enc_conv{i}")(x)
        x = layers.Flatten()(x)
    outputs = layers.Dense(latent_outputs, kernel_initializer=init(), name="latent")(x)
    return keras.Model(inputs, outputs, name=name)


def _build_decoder(arch, output_shape, hidden, latent_dim, activation, init, name="decoder"):
    """Decoder from ``latent_dim`` to ``output_shape`` (linear output)."""
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    if arch == "dense":
        for layer in _dense_stack(tuple(reversed(hidden)), activation, "dec", init):
            x = layer(x)
        x = layers.Dense(math.prod(output_shape), kernel_initializer=init(), name="dec_out")(x)
        outputs = layers.Reshape(output_shape)(x)
        return keras.Model(inputs, outputs, name=name)
    spatial = output_shape[:-1]
    factor = 2 ** len(hidden)
    reduced = tuple(math.ceil(s / factor) for s in spatial)
    x = layers.Dense(math.prod(reduced) * hidden[-1], activation=activation, kernel_initializer=init(),
                     name="dec_dense")(x)
    x = layers.Reshape((*reduced, hidden[-1]))(x)
    conv_t = layers.Conv1DTranspose if arch == "conv1d" else layers.Conv2DTranspose
    kernel = 5 if arch == "conv1d" else 3
    for i, filters in enumerate(reversed(hidden)):
        x = conv_t(filters, kernel, strides=2, padding="same", activation=activation,
                   kernel_initializer=init(), name=f"dec_convt{i}")(x)
    conv = layers.Conv1D if arch == "conv1d" else layers.Conv2D
    x = conv(output_shape[-1], kernel, padding="same", kernel_initializer=init(), name="dec_out")(x)
    excess = tuple(r * factor - s for r, s in zip(reduced, spatial))
    if arch == "conv1d" and excess[0]:
        x = layers.Cropping1D((0, excess[0]))(x)
    elif arch == "conv2d" and any(excess):
        x = layers.Cropping2D(tuple((0, e) for e in excess))(x)
    return keras.Model(inputs, x, name=name)


def _check_arch(arch, input_shape, hidden, latent_dim):
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    want = {"conv1d": 2, "conv2d": 3}.get(arch)
    if want is not None and len(input_shape) != want:
        kind = "(window, channels)" if arch == "conv1d" else "(height, width, channels)"
        raise ValueError(f"{arch} needs items of shape {kind}, got item shape {tuple(input_shape)}")
    if int(latent_dim) < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
    if len(hidden) == 0 or any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty tuple of positive sizes, got {hidden!r}")


def _polyphase_conv1d_transpose(layer):
    """A ``Conv1DTranspose`` layer (padding ``"same"``) as one stride-1 convolution, or None.

    A transposed convolution with stride ``s`` gives each of the ``s`` output
    phases (positions ``s * p + r``) a short ordinary convolution of the input
    with a subset of the kernel's taps. Stacking the phases' kernels along the
    output channels and interleaving the result is the same arithmetic done by
    the CPU's fast convolution kernel instead of the transposed-convolution
    (input-gradient) kernel. Weights are read when this is called.
    """
    cfg = layer.get_config()
    (s,), (k,) = cfg["strides"], cfg["kernel_size"]
    if (cfg["padding"] != "same" or tuple(cfg["dilation_rate"]) != (1,) or s < 2
            or cfg.get("data_format", "channels_last") != "channels_last"
            or cfg.get("output_padding") not in (None, [None], (None,))):
        return None
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))  # (k, filters, inputs)
    filters, n_in = kernel.shape[1], kernel.shape[2]
    pad_left = max(k - s, 0) // 2  # where the forward "same" convolution pads
    taps = {}  # (phase, input offset) -> kernel tap
    for r in range(s):
        for j in range(k):
            if (j - r - pad_left) % s == 0:
                taps[(r, -((j - r - pad_left) // s))] = j
    lo, hi = min(o for _, o in taps), max(o for _, o in taps)
    weights = np.zeros((hi - lo + 1, n_in, s * filters), dtype=np.float32)
    for (r, o), j in taps.items():
        weights[o - lo, :, r * filters : (r + 1) * filters] = kernel[j].T
    bias = np.tile(keras.ops.convert_to_numpy(layer.bias), s) if cfg["use_bias"] else None
    activation = layer.activation

    def call(x):
        h = ops.conv(ops.pad(x, [(0, 0), (-lo, hi), (0, 0)]), weights, strides=1, padding="valid")
        if bias is not None:
            h = h + bias
        return activation(ops.reshape(h, (ops.shape(x)[0], ops.shape(x)[1] * s, filters)))

    return call


def inference_function(model):
    """``x -> model(x)`` at inference, with faster but equal arithmetic where there is one.

    The decoder of a Conv1D model runs its transposed convolutions as
    polyphase stride-1 convolutions (see :func:`_polyphase_conv1d_transpose`);
    everything else calls the layers. Callers check the result against
    ``model(x)`` (the detector's compiled scorer does) before trusting it.
    """
    if getattr(model, "arch", None) != "conv1d":
        return lambda x: model(x, training=False)
    steps = []
    for layer in model.decoder.layers[1:]:  # _build_decoder's chain after the input layer
        fast = _polyphase_conv1d_transpose(layer) if isinstance(layer, layers.Conv1DTranspose) else None
        steps.append(fast or layer)

    def forward(x):
        h = model.encode(x)
        for step in steps:
            h = step(h)
        return h

    return forward


def _pairwise_sq_distances(a):
    """Squared Euclidean distances between the rows of a (b, d) tensor."""
    sq = ops.sum(ops.square(a), axis=1)
    return ops.maximum(sq[:, None] + sq[None, :] - 2.0 * ops.matmul(a, ops.transpose(a)), 0.0)


def neighbor_embedding_loss(x, z, k=10):
    """Batch-wise neighbour-embedding loss: keep each item's input neighbours near in the latent.

    The affinities ``P`` are the symmetrised ``k`` nearest neighbours of each
    item within the batch, by Euclidean distance of the (flattened) inputs; the
    latent similarities ``Q`` use a Student-t kernel with ``latent_dim - 1``
    degrees of freedom (one for a 2-D or 3-D latent, as in t-SNE; heavier
    latents get lighter tails, as in parametric t-SNE). The loss is the
    cross-entropy ``-sum P log Q``, i.e. ``KL(P || Q)`` up to a constant.

    Parameters
    ----------
    x : tensor (b, ...)
        The batch of inputs.
    z : tensor (b, latent_dim)
        Their latent codes.
    k : int
        Neighbours per item (capped at ``b - 1``).
    """
    b = ops.shape(x)[0]
    off_diagonal = 1.0 - ops.eye(b, dtype=z.dtype)
    dist_x = _pairwise_sq_distances(ops.reshape(x, (b, -1)))
    dist_x = ops.cast(dist_x, z.dtype) + (1.0 - off_diagonal) * 1e30  # not its own neighbour
    # the k-th smallest distance of each row; padding columns let a batch smaller
    # than k + 1 use all its items
    padded = ops.concatenate([dist_x, ops.full((b, int(k)), 1e30, dtype=dist_x.dtype)], axis=1)
    kth = -ops.top_k(-padded, int(k))[0][:, -1:]
    p = ops.cast(dist_x <= kth, z.dtype) * off_diagonal
    p = p + ops.transpose(p)
    p = p / ops.maximum(ops.sum(p), 1e-12)
    dof = max(1.0, float(z.shape[-1]) - 1.0)
    q = ops.power(1.0 + _pairwise_sq_distances(z) / dof, -(dof + 1.0) / 2.0) * off_diagonal
    q = q / ops.maximum(ops.sum(q), 1e-12)
    return -ops.sum(p * ops.log(q + 1e-12))


def trim_weights(per_item, share: float):
    """Weights of a batch's items under a trimmed loss, shape ``(b,)``, no gradient.

    The ``share`` of the items with the largest ``per_item`` error get 0 (``floor(share * b)``
    of them; ties at the cut are kept); the others get equal weights averaging 1 over the
    batch, so a weighted mean of the errors is the mean over the kept items.

    Examples
    --------
    >>> [float(w) for w in trim_weights(np.array([1.0, 5.0, 2.0, 3.0]), 0.25)]
    [1.3333333333333333, 0.0, 1.3333333333333333, 1.3333333333333333]
    """
    per_item = ops.convert_to_tensor(per_item)
    n = ops.cast(ops.shape(per_item)[0], per_item.dtype)
    kept = ops.cast(ops.ceil((1.0 - float(share)) * n), "int32")
    cut = ops.take(ops.sort(per_item), ops.maximum(kept - 1, 0))
    keep = ops.cast(per_item <= cut, per_item.dtype)
    return ops.stop_gradient(keep * n / ops.maximum(ops.sum(keep), 1.0))


def _item_errors(y, y_pred):
    """Mean squared error of each item of a batch, shape ``(b,)``."""
    squared = ops.square(ops.cast(y, y_pred.dtype) - y_pred)
    return ops.mean(ops.reshape(squared, (ops.shape(squared)[0], -1)), axis=-1)


def _check_trim(trim) -> float:
    trim = float(trim)
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim}")
    return trim


class _ArchitectureMixin:
    """What both autoencoders store about their architecture, and its config."""

    def _set_architecture(self, input_shape, arch, latent_dim, hidden, activation):
        input_shape = tuple(int(s) for s in input_shape)
        hidden = tuple(int(h) for h in hidden)
        _check_arch(arch, input_shape, hidden, latent_dim)
        self.item_shape = input_shape
        self.arch = arch
        self.latent_dim = int(latent_dim)
        self.hidden = hidden
        self.activation = activation

    def _architecture_config(self) -> dict:
        return {
            "input_shape": list(self.item_shape),
            "arch": self.arch,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "name": self.name,
        }

    def build(self, input_shape=None):
        self.built = True  # encoder and decoder are built in __init__


@keras.saving.register_keras_serializable(package="aeviz")
class Autoencoder(_ArchitectureMixin, keras.Model):
    """A deterministic autoencoder: ``decoder(encoder(x))``.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one item (without the batch axis).
    arch : {"dense", "conv1d", "conv2d"}
    latent_dim : int
    hidden : tuple of int
        Dense units (dense) or filters per stride-2 conv block (conv).
    activation : str
    neighbor_weight : float
        Weight of :func:`neighbor_embedding_loss` in the training loss (0: off).
    neighbors : int
        Its neighbours per item.
    seed : int, optional
        Seeds the kernel initialisers (None: Keras's process-wide generator).
    trim : float
        Share of each batch's items, those rebuilt worst, left out of the reconstruction
        loss (0: none; see the module docstring), in [0, 0.5).
    """

    def __init__(self, input_shape, arch="dense", latent_dim=2, hidden=(256, 128),
                 activation="gelu", neighbor_weight=0.0, neighbors=10, seed=None, trim=0.0, **kwargs):
        super().__init__(**kwargs)
        self._set_architecture(input_shape, arch, latent_dim, hidden, activation)
        self.neighbor_weight = float(neighbor_weight)
        self.neighbors = int(neighbors)
        self.seed = seed
        self.trim = _check_trim(trim)
        init = _KernelInit(seed)
        self.encoder = _build_encoder(arch, self.item_shape, self.hidden, self.latent_dim, activation, init)
        self.decoder = _build_decoder(arch, self.item_shape, self.hidden, self.latent_dim, activation, init)
        if self.neighbor_weight > 0:  # the loss is more than the reconstruction: log it apart
            self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled reconstruction loss, plus the neighbour term when it is weighted.

        With the term on, the reconstruction part is also logged on its own
        (``reconstruction_loss``, ``val_reconstruction_loss``): that is what
        early stopping watches then, because the term's value on a validation
        batch (in-batch neighbours among fewer items) does not measure the
        layout the training batches refine.

        With ``trim`` > 0 the reconstruction part is the mean over the batch's
        items left after :func:`trim_weights` (training and validation batches
        alike); the neighbour term still sees every item.
        """
        if self.trim > 0 and y is not None and y_pred is not None:
            weights = trim_weights(_item_errors(y, y_pred), self.trim)
            if sample_weight is not None:
                weights = weights * ops.reshape(ops.cast(sample_weight, weights.dtype), (-1,))
            # the compiled mse keeps all but the last axis: one weight per item, broadcast over the rest
            sample_weight = ops.reshape(weights, (-1,) + (1,) * (len(y_pred.shape) - 2))
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if self.neighbor_weight > 0 and x is not None:
            self.reconstruction_tracker.update_state(loss)
            z = self.encoder(x, training=training)
            loss = loss + self.neighbor_weight * neighbor_embedding_loss(x, z, self.neighbors)
        return loss

    def encode(self, x, training=False):
        """Latent coordinates, shape (n, latent_dim)."""
        return self.encoder(x, training=training)

    def get_config(self):
        config = {**self._architecture_config(), "neighbor_weight": self.neighbor_weight,
                  "neighbors": self.neighbors, "seed": self.seed}
        if self.trim:  # absent when 0: an untrimmed model's config (and its model id) stay as they were
            config["trim"] = self.trim
        return config


@keras.saving.register_keras_serializable(package="aeviz")
class Sampling(layers.Layer):
    """Reparameterisation ``z = mean + exp(log_var / 2) * eps`` with a seeded generator."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, z_mean, z_log_var):
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="aeviz")
class VariationalAutoencoder(_ArchitectureMixin, keras.Model):
    """A VAE whose ``fit`` reports ``loss``, ``reconstruction_loss`` and ``kl_loss``.

    The encoder outputs ``2 * latent_dim`` units (mean and log-variance); the
    decoder maps a latent sample back. At inference ``call`` decodes the
    mean, so reconstruction errors are deterministic.

    Parameters
    ----------
    input_shape, arch, latent_dim, hidden, activation
        As for :class:`Autoencoder`.
    beta : float
        Weight of the KL term (beta-VAE); 1 is the ELBO.
    weighting : {"elbo", "demo"}
        See the module docstring.
    seed : int, optional
        Seeds the kernel initialisers and the sampling layer's
        ``keras.random.SeedGenerator``.
    trim : float
        As for :class:`Autoencoder`, on the reconstruction term only.
    """

    def __init__(self, input_shape, arch="dense", latent_dim=2, hidden=(256, 128),
                 activation="gelu", beta=1.0, weighting="elbo", seed=None, trim=0.0, **kwargs):
        super().__init__(**kwargs)
        self._set_architecture(input_shape, arch, latent_dim, hidden, activation)
        if weighting not in VAE_WEIGHTINGS:
            raise ValueError(f"weighting must be one of {VAE_WEIGHTINGS}, got {weighting!r}")
        if not float(beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.weighting = weighting
        self.seed = seed
        self.trim = _check_trim(trim)
        init = _KernelInit(seed)
        self.encoder = _build_encoder(arch, self.item_shape, self.hidden, 2 * self.latent_dim, activation, init)
        self.decoder = _build_decoder(arch, self.item_shape, self.hidden, self.latent_dim, activation, init)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def _moments(self, x, training=False):
        h = self.encoder(x, training=training)
        z_mean, z_log_var = h[:, : self.latent_dim], h[:, self.latent_dim :]
        return z_mean, ops.clip(z_log_var, -20.0, 10.0)

    def call(self, x, training=False):
        z_mean, z_log_var = self._moments(x, training=training)
        z = self.sampling(z_mean, z_log_var) if training else z_mean
        kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        return self.decoder(z, training=training)

    def encode(self, x, training=False):
        """Latent means, shape (n, latent_dim)."""
        return self._moments(x, training=training)[0]

    def encode_moments(self, x):
        """Latent means and log-variances, each (n, latent_dim)."""
        return self._moments(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        squared = ops.square(ops.cast(y, y_pred.dtype) - y_pred)
        per_item = ops.reshape(squared, (ops.shape(squared)[0], -1))
        per_item = ops.sum(per_item, axis=-1) if self.weighting == "elbo" else ops.mean(per_item, axis=-1)
        if self.trim > 0:
            per_item = per_item * trim_weights(per_item, self.trim)
        reconstruction = ops.mean(per_item)
        kl = ops.sum(ops.stack(self.losses))  # the KL added in call()
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return reconstruction + self.beta * kl

    def get_config(self):
        config = {**self._architecture_config(), "beta": self.beta, "weighting": self.weighting, "seed": self.seed}
        if self.trim:  # absent when 0, as for Autoencoder
            config["trim"] = self.trim
        return config


def build_model(kind, input_shape, *, latent_dim=2, hidden=(256, 128), activation="gelu",
                beta=1.0, weighting="elbo", seed=None, neighbor_weight=0.0, trim=0.0):
    """Build an (uncompiled) autoencoder.

    Parameters
    ----------
    kind : {"ae", "conv-ae", "vae", "conv-vae"}
        ``conv-*`` picks Conv1D for (window, channels) items and Conv2D for
        (height, width, channels) items.
    input_shape : tuple of int
        Shape of one item.
    latent_dim, hidden, activation, beta, weighting, seed, neighbor_weight, trim
        See :class:`Autoencoder` and :class:`VariationalAutoencoder`.

    Returns
    -------
    model : Autoencoder or VariationalAutoencoder

    Examples
    --------
    >>> build_model("ae", (64,), latent_dim=2).latent_dim
    2
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model must be one of {tuple(MODEL_KINDS)}, got {kind!r}")
    arch = "dense"
    if kind.startswith("conv"):
        arch = {2: "conv1d", 3: "conv2d"}.get(len(input_shape))
        if arch is None:
            raise ValueError(
                f"model {kind!r} needs windows (window, channels) or images (height, width, channels); "
                f"got items of shape {tuple(input_shape)}: use 'ae' for flat tables"
            )
    if kind.endswith("vae"):
        return VariationalAutoencoder(input_shape, arch, latent_dim, hidden, activation,
                                      beta=beta, weighting=weighting, seed=seed, trim=trim)
    return Autoencoder(input_shape, arch, latent_dim, hidden, activation, neighbor_weight=neighbor_weight, seed=seed,
                       trim=trim)
