"""Latent projections, latent grids and prior samples."""

from __future__ import annotations

import numpy as np
import pytest

from aeviz_core import knn_accuracy
from aeviz_core import latent_box, latent_grid, prior_samples, project_latent


@pytest.fixture(scope="session")
def blobs():
    """Three well-separated Gaussian blobs in an 8-D latent, 100 points each."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=8.0, size=(3, 8))
    labels = np.repeat(np.arange(3), 100)
    Z = centers[labels] + rng.normal(size=(300, 8))
    return Z, labels


@pytest.mark.parametrize("n_components", [2, 3])
@pytest.mark.parametrize("method", ["auto", "pca", "tsne"])
def test_methods_give_finite_coords_of_the_right_shape(blobs, method, n_components):
    Z, labels = blobs
    kwargs = {"max_iter": 300} if method == "tsne" else {}  # the blobs need no more
    coords = project_latent(Z, method, n_components, **kwargs)
    assert coords.shape == (300, n_components)
    assert coords.dtype == np.float32
    assert np.isfinite(coords).all()
    # blobs this far apart stay apart in any sensible layout
    assert knn_accuracy(coords, labels) > 0.95


def test_umap_gives_finite_coords_that_keep_the_blobs_apart(blobs):
    pytest.importorskip("umap")
    Z, labels = blobs
    for n_components in (2, 3):
        coords = project_latent(Z, "umap", n_components, n_epochs=100)
        assert coords.shape == (300, n_components)
        assert coords.dtype == np.float32
        assert np.isfinite(coords).all()
        assert knn_accuracy(coords, labels) > 0.95
    # n_neighbors is clipped to the sample size instead of failing
    small = project_latent(Z[:8], "umap", n_neighbors=50, n_epochs=50)
    assert small.shape == (8, 2) and np.isfinite(small).all()


def test_tsne_clips_perplexity_for_small_samples(blobs):
    Z, _ = blobs
    coords = project_latent(Z[:10], "tsne", perplexity=30, max_iter=250)
    assert coords.shape == (10, 2) and np.isfinite(coords).all()


def test_tsne_repeats_with_the_same_seed(blobs):
    Z, _ = blobs
    a = project_latent(Z[:60], "tsne", random_state=3, max_iter=250)
    b = project_latent(Z[:60], "tsne", random_state=3, max_iter=250)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_components", [2, 3])
def test_direct_and_auto_return_a_latent_of_the_requested_size_unchanged(blobs, n_components):
    Z = blobs[0][:, :n_components]
    np.testing.assert_array_equal(project_latent(Z, "direct", n_components), Z.astype(np.float32))
    np.testing.assert_array_equal(project_latent(Z, "auto", n_components), Z.astype(np.float32))


def test_auto_falls_back_to_pca_for_wider_latents(blobs):
    Z, _ = blobs
    np.testing.assert_array_equal(project_latent(Z, "auto"), project_latent(Z, "pca"))


def test_pca_keeps_the_plane_data_lies_in():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    plane = rng.normal(size=(200, 2)) * [3.0, 1.0]
    coords = project_latent(plane @ basis.T, "pca")
    # PCA recovers the plane up to rotation: pairwise distances are kept
    d_in = np.linalg.norm(plane[:, None] - plane[None], axis=-1)
    d_out = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-4)


@pytest.mark.parametrize(
    ("Z_shape", "kwargs", "match"),
    [
        ((50, 4), {"method": "isomap"}, "method must be one of"),
        ((50, 4), {"n_components": 4}, "n_components must be 2 or 3, got 4"),
        ((50, 4), {"n_components": 1}, "n_components must be 2 or 3, got 1"),
        ((50, 4), {"n_components": 2.0}, "n_components must be 2 or 3"),
        ((50, 2), {"n_components": 3}, r"n_components must be <= the latent dimension \(2\), got 3"),
        ((50, 2), {"method": "tsne", "n_components": 3}, "n_components must be <="),
        ((50, 5), {"method": "direct"}, "method='direct' needs Z with exactly n_components=2 columns, got 5"),
        ((50,), {}, r"Z must be a 2-D array"),
        ((2, 4), {}, "Z must have >= 3 rows, got 2"),
        ((50, 2), {"method": "direct", "whiten": True}, "method='direct' takes no extra arguments"),
        ((50, 4), {"method": "tsne", "perplexity": 0}, "perplexity must be > 0, got 0"),
    ],
)
def test_bad_arguments_name_the_parameter(Z_shape, kwargs, match):
    Z = np.random.default_rng(0).normal(size=Z_shape)
    with pytest.raises(ValueError, match=match):
        project_latent(Z, **kwargs)


def test_non_finite_latent_is_refused():
    Z = np.random.default_rng(0).normal(size=(20, 4))
    Z[3, 1] = np.nan
    with pytest.raises(ValueError, match="Z must be finite, got 1 NaN"):
        project_latent(Z, "pca")


def test_latent_grid_is_laid_out_like_an_image():
    grid = latent_grid([-2.0, -1.0], [2.0, 1.0], n=5)
    assert grid.shape == (25, 2) and grid.dtype == np.float32
    cells = grid.reshape(5, 5, 2)
    np.testing.assert_allclose(cells[0, 0], [-2.0, 1.0])   # top left
    np.testing.assert_allclose(cells[-1, -1], [2.0, -1.0])  # bottom right
    assert (np.diff(cells[..., 0], axis=1) > 0).all()       # x grows to the right
    assert (np.diff(cells[..., 1], axis=0) < 0).all()       # y shrinks downwards
    np.testing.assert_allclose(np.unique(grid[:, 0]), np.linspace(-2, 2, 5), rtol=1e-6)


def test_latent_grid_takes_scalar_bounds():
    grid = latent_grid(-3, 3, n=2)
    np.testing.assert_allclose(grid, [[-3, 3], [3, 3], [-3, -3], [3, -3]])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0, 0], [1, 1], 1), "n must be >= 2, got 1"),
        (([0, 0], [1, 1], 2.5), "n must be an integer"),
        (([0, 0, 0], [1, 1, 1], 3), r"z_min must be a scalar or have shape \(2,\)"),
        (([0, np.inf], [1, 1], 3), "z_min must be finite"),
        (([0, 2], [1, 1], 3), "z_min must be <= z_max"),
    ],
)
def test_latent_grid_rejects_bad_boxes(args, match):
    with pytest.raises(ValueError, match=match):
        latent_grid(*args)


def test_latent_box_trims_outliers(blobs):
    rng = np.random.default_rng(0)
    Z = rng.uniform(-1.0, 1.0, size=(2000, 3))
    Z[0] = [1e6, -1e6, 0.0]
    z_min, z_max = latent_box(Z)
    assert z_min.shape == z_max.shape == (3,)
    np.testing.assert_allclose(z_min, -0.98, atol=0.03)
    np.testing.assert_allclose(z_max, 0.98, atol=0.03)
    z_min, z_max = latent_box(Z, quantiles=(0.0, 1.0))
    assert z_max[0] == 1e6 and z_min[1] == -1e6


@pytest.mark.parametrize("quantiles", [(0.5, 0.5), (-0.1, 0.9), (0.1, 1.1), (0.9, 0.1), 0.5])
def test_latent_box_rejects_bad_quantiles(quantiles):
    with pytest.raises(ValueError, match="quantiles must"):
        latent_box(np.zeros((10, 2)), quantiles=quantiles)


def test_prior_samples_are_seeded_standard_normal():
    z = prior_samples(20_000, 3, random_state=1)
    assert z.shape == (20_000, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.03)
    np.testing.assert_array_equal(z, prior_samples(20_000, 3, random_state=1))
    assert not np.array_equal(z, prior_samples(20_000, 3, random_state=2))


@pytest.mark.parametrize(("n", "latent_dim", "match"), [(0, 2, "n must be >= 1"), (5, 0, "latent_dim must be >= 1")])
def test_prior_samples_reject_bad_sizes(n, latent_dim, match):
    with pytest.raises(ValueError, match=match):
        prior_samples(n, latent_dim)
