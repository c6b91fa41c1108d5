"""Project autoencoder latents to 2-D or 3-D, and build latent grids to decode.

Everything here takes and returns plain numpy arrays, so that the app can cache
the results. Nothing decodes: a grid or a batch of prior samples is handed to
the model by the caller.

==========  =====================================================================
method      what it does
==========  =====================================================================
``direct``  the latent itself; only when it has exactly ``n_components`` columns
``pca``     principal components (fast, linear, deterministic)
``tsne``    scikit-learn's t-SNE (perplexity clipped for small samples)
``umap``    umap-learn's UMAP, imported on first use (n_neighbors clipped)
``auto``    ``direct`` when the latent already has ``n_components`` columns,
            else ``pca``
==========  =====================================================================
"""

from __future__ import annotations

import numbers

import numpy as np

from .metrics import check_int

__all__ = [
    "PROJECTION_METHODS",
    "latent_box",
    "latent_grid",
    "prior_samples",
    "project_latent",
]

PROJECTION_METHODS = ("auto", "direct", "pca", "tsne", "umap")

_MIN_SAMPLES = 3


def _as_latent(Z) -> np.ndarray:
    """Validate a latent matrix: 2-D, finite, at least three rows."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array (n_samples, latent_dim), got shape {Z.shape}")
    if Z.shape[0] < _MIN_SAMPLES:
        raise ValueError(f"Z must have >= {_MIN_SAMPLES} rows, got {Z.shape[0]}")
    if Z.shape[1] < 1:
        raise ValueError(f"Z must have >= 1 column, got {Z.shape[1]}")
    n_bad = int(np.count_nonzero(~np.isfinite(Z)))
    if n_bad:
        raise ValueError(f"Z must be finite, got {n_bad} NaN or infinite values")
    return Z


def project_latent(Z, method="auto", n_components=2, random_state=0, **kwargs) -> np.ndarray:
    """Project latent vectors to 2-D or 3-D coordinates for plotting.

    Parameters
    ----------
    Z : array-like of shape (n_samples, latent_dim)
        Latent vectors (for a VAE, the posterior means). Finite, ``n_samples >= 3``.
    method : {"auto", "direct", "pca", "tsne", "umap"}, default "auto"
        ``"direct"`` returns ``Z`` itself and needs ``latent_dim == n_components``.
        ``"auto"`` is ``"direct"`` when ``latent_dim == n_components``, else ``"pca"``.
        ``"tsne"`` uses :class:`sklearn.manifold.TSNE`; ``perplexity`` (default 30)
        is clipped to ``(n_samples - 1) / 3`` so small samples still run.
        ``"umap"`` uses :class:`umap.UMAP` (imported here, on first use);
        ``n_neighbors`` (default 15) is clipped to ``n_samples - 1``.
    n_components : {2, 3}, default 2
        Output dimension. Must not exceed ``latent_dim``: a 2-D latent has no
        third axis to show.
    random_state : int, numpy Generator or None, default 0
        Seed for PCA's solver, t-SNE and UMAP. With a seed UMAP runs
        single-threaded (``n_jobs=1``) so that results repeat.
    **kwargs
        Passed to the estimator (``PCA``, ``TSNE`` or ``UMAP``), e.g.
        ``perplexity=50`` or ``min_dist=0.3``. Not accepted by ``"direct"``.

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components), float32
        Row ``i`` is the position of sample ``i``. Axes carry no units; only
        neighbourhoods are meaningful for t-SNE and UMAP.

    Examples
    --------
    >>> Z = np.random.default_rng(0).normal(size=(100, 8))
    >>> project_latent(Z, "pca").shape
    (100, 2)
    >>> project_latent(Z[:, :2], "direct").dtype
    dtype('float32')
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f"method must be one of {list(PROJECTION_METHODS)}, got {method!r}")
    if (isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral)
            or n_components not in (2, 3)):
        raise ValueError(f"n_components must be 2 or 3, got {n_components!r}")
    Z = _as_latent(Z)
    n_samples, latent_dim = Z.shape
    if latent_dim < n_components:
        raise ValueError(
            f"n_components must be <= the latent dimension ({latent_dim}), got {n_components}"
        )
    if method == "auto":
        method = "direct" if latent_dim == n_components else "pca"

    if method == "direct":
        if latent_dim != n_components:
            raise ValueError(
                f"method='direct' needs Z with exactly n_components={n_components} columns, "
                f"got {latent_dim}; use 'pca', 'tsne' or 'umap'"
            )
        if kwargs:
            raise ValueError(f"method='direct' takes no extra arguments, got {sorted(kwargs)}")
        return Z.astype(np.float32)

    if method == "pca":
        from sklearn.decomposition import PCA

        coords = PCA(n_components=n_components, random_state=random_state, **kwargs).fit_transform(Z)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(kwargs.pop("perplexity", 30.0))
        if not perplexity > 0:
            raise ValueError(f"perplexity must be > 0, got {perplexity}")
        kwargs["perplexity"] = min(perplexity, (n_samples - 1) / 3)
        kwargs.setdefault("init", "pca")
        coords = TSNE(n_components=n_components, random_state=random_state, **kwargs).fit_transform(Z)
    else:  # umap
        import umap

        n_neighbors = check_int("n_neighbors", kwargs.pop("n_neighbors", 15), 2)
        kwargs["n_neighbors"] = min(n_neighbors, n_samples - 1)
        if random_state is not None:
            kwargs.setdefault("n_jobs", 1)
        if n_samples <= n_components + 1:
            # too few points for a spectral initialisation
            kwargs.setdefault("init", "random")
        reducer = umap.UMAP(n_components=n_components, random_state=random_state, **kwargs)
        coords = reducer.fit_transform(Z)
    return np.asarray(coords, dtype=np.float32)


def latent_box(Z, quantiles=(0.01, 0.99)) -> tuple[np.ndarray, np.ndarray]:
    """The box holding the bulk of the latent vectors, per dimension.

    Parameters
    ----------
    Z : array-like of shape (n_samples, latent_dim)
        Latent vectors, finite.
    quantiles : (float, float), default (0.01, 0.99)
        Lower and upper quantile, ``0 <= low < high <= 1``. The defaults drop the
        most extreme 1 % on each side so one outlier does not stretch the grid.

    Returns
    -------
    z_min, z_max : ndarray of shape (latent_dim,)
        Per-dimension lower and upper bounds, ``z_min <= z_max``. Pass the first
        two entries of each to :func:`latent_grid`.

    Examples
    --------
    >>> Z = np.random.default_rng(0).normal(size=(1000, 2))
    >>> z_min, z_max = latent_box(Z)
    >>> bool((z_min < 0).all() and (z_max > 0).all())
    True
    """
    Z = _as_latent(Z)
    try:
        low, high = (float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ValueError(f"quantiles must be a pair (low, high), got {quantiles!r}") from None
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles!r}")
    bounds = np.quantile(Z, [low, high], axis=0)
    return bounds[0], bounds[1]


def latent_grid(z_min, z_max, n=15) -> np.ndarray:
    """A regular ``n`` x ``n`` grid over a 2-D latent box, for a decoder grid.

    Parameters
    ----------
    z_min, z_max : float or array-like of shape (2,)
        Lower and upper corner of the box; a scalar applies to both axes.
        Finite, ``z_min <= z_max`` on each axis.
    n : int, default 15
        Points per axis, ``n >= 2``.

    Returns
    -------
    grid : ndarray of shape (n * n, 2), float32
        Laid out like an image: ``grid.reshape(n, n, 2)[i, j]`` is the cell in
        row ``i`` (top to bottom, latent axis 1 *decreasing* from ``z_max[1]``)
        and column ``j`` (left to right, latent axis 0 increasing from
        ``z_min[0]``). Corners are included.

    Examples
    --------
    >>> g = latent_grid([-2, -1], [2, 1], n=3)
    >>> g.shape
    (9, 2)
    >>> g[0].tolist(), g[-1].tolist()
    ([-2.0, 1.0], [2.0, -1.0])
    """
    n = check_int("n", n, 2)
    corners = []
    for name, value in (("z_min", z_min), ("z_max", z_max)):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0:
            value = np.full(2, value)
        if value.shape != (2,):
            raise ValueError(f"{name} must be a scalar or have shape (2,), got shape {value.shape}")
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got {value.tolist()}")
        corners.append(value)
    lo, hi = corners
    if (lo > hi).any():
        raise ValueError(f"z_min must be <= z_max on each axis, got {lo.tolist()} and {hi.tolist()}")
    xs = np.linspace(lo[0], hi[0], n)
    ys = np.linspace(hi[1], lo[1], n)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float32)


def prior_samples(n, latent_dim, random_state=0) -> np.ndarray:
    """Draw from a VAE's standard normal prior, for the decoder to turn into samples.

    Parameters
    ----------
    n : int
        Number of samples, ``n >= 1``.
    latent_dim : int
        Latent dimension, ``latent_dim >= 1``.
    random_state : int, numpy Generator or None, default 0
        Seed passed to :func:`numpy.random.default_rng`.

    Returns
    -------
    z : ndarray of shape (n, latent_dim), float32
        Independent N(0, 1) draws.

    Examples
    --------
    >>> prior_samples(4, 2).shape
    (4, 2)
    """
    n = check_int("n", n, 1)
    latent_dim = check_int("latent_dim", latent_dim, 1)
    rng = np.random.default_rng(random_state)
    return rng.standard_normal((n, latent_dim)).astype(np.float32)
