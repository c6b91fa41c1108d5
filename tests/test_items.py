"""The default for items (a table, images): the trimmed loss (``trim``) and the IsolationForest part
of the anomaly score (``isolation``); their ``"auto"`` rules, the numpy forest and the saved
model. Small and fast: a few hundred items, a few epochs."""

import json

import numpy as np
import pytest

from aeviz_core import AutoencoderDetector, detector_to_zip, load_detector, load_detector_zip, save_detector
from aeviz_core.isolation import IsolationTrees, PartReference
from aeviz_core.models import build_model, trim_weights

FAST = dict(epochs=4, hidden=(16,), random_state=0)


@pytest.fixture(scope="module")
def contaminated_table():
    """400 items of 6 correlated features, the first 20 anomalous (labels ``y``)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    X[:, 3] = X[:, 0] + 0.1 * rng.normal(size=400)
    X[:, 4] = X[:, 1] - X[:, 2] + 0.1 * rng.normal(size=400)
    X[:20] += rng.normal(0, 4, (20, 6))
    y = np.zeros(400, dtype=int)
    y[:20] = 1
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def table_detector(contaminated_table):
    return AutoencoderDetector(**FAST).fit(contaminated_table[0])


# --------------------------------------------------------------------------- the trimmed loss


def test_trim_weights_give_a_batchs_worst_share_weight_zero():
    errors = np.array([0.1, 9.0, 0.3, 0.2, 7.0, 0.4, 0.5, 0.6])
    weights = np.asarray(trim_weights(errors, 0.25))
    np.testing.assert_array_equal(weights == 0, errors >= 7.0)  # the 2 worst of 8
    assert weights.mean() == pytest.approx(1.0)  # the loss stays a mean over the kept items
    np.testing.assert_array_equal(np.asarray(trim_weights(errors, 0.0)), np.ones(8))


@pytest.mark.parametrize("kind,shape", [("ae", (6,)), ("conv-ae", (8, 8, 1)), ("conv-ae", (16, 3))])
def test_the_trimmed_loss_is_the_mean_error_of_the_batchs_best_items(kind, shape):
    """Dense, Conv2D and Conv1D: the loss is the mean squared error over the 75% of the batch rebuilt
    best; making the worst items worse still does not move it."""
    model = build_model(kind, shape, latent_dim=2, hidden=(8,), seed=0, trim=0.25)
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, *shape)).astype(np.float32)
    x[:4] *= 20  # four items the model cannot rebuild: the batch's worst quarter
    rebuilt = model(x)
    per_item = ((x - np.asarray(rebuilt)) ** 2).reshape(16, -1).mean(axis=1)
    assert set(np.argsort(per_item)[-4:]) == {0, 1, 2, 3}
    loss = float(model.compute_loss(x, x, rebuilt))
    assert loss == pytest.approx(np.sort(per_item)[:12].mean(), rel=1e-5)
    worse = x.copy()
    worse[:4] *= 10
    worse_rebuilt = np.asarray(rebuilt).copy()  # the same reconstructions, worse targets
    assert float(model.compute_loss(worse, worse, worse_rebuilt)) == pytest.approx(loss, rel=1e-5)
    plain = build_model(kind, shape, latent_dim=2, hidden=(8,), seed=0)
    plain.compile(optimizer="adam", loss="mse")
    assert float(plain.compute_loss(x, x, rebuilt)) == pytest.approx(per_item.mean(), rel=1e-5)


def test_a_vae_trims_its_reconstruction_term():
    model = build_model("vae", (6,), latent_dim=2, hidden=(8,), seed=0, trim=0.25)
    plain = build_model("vae", (6,), latent_dim=2, hidden=(8,), seed=0)
    x = np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32)
    x[:2] *= 30
    for m in (model, plain):
        m.compile(optimizer="adam")
        m.compute_loss(x, x, m(x))
    trimmed, full = float(model.reconstruction_tracker.result()), float(plain.reconstruction_tracker.result())
    rebuilt = np.asarray(model(x))
    per_item = ((x - rebuilt) ** 2).sum(axis=1)  # the ELBO's sum over features
    assert trimmed == pytest.approx(np.sort(per_item)[:6].mean(), rel=1e-4)
    assert trimmed < full / 10


def test_the_trim_round_trips_and_an_untrimmed_config_is_unchanged(tmp_path):
    import keras

    model = build_model("ae", (6,), latent_dim=2, hidden=(8,), seed=0, trim=0.25)
    model(np.zeros((1, 6), dtype=np.float32))
    model.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras", safe_mode=True).trim == 0.25
    assert "trim" not in build_model("ae", (6,), latent_dim=2, hidden=(8,), seed=0).get_config()
    with pytest.raises(ValueError, match=r"trim must be in \[0, 0.5\), got 0.5"):
        build_model("ae", (6,), trim=0.5)


# --------------------------------------------------------------------------- the "auto" rules


def test_unlabelled_items_train_trimmed_and_count_the_forest(table_detector):
    assert table_detector.trim_ == 0.25 and table_detector.model_.trim == 0.25
    assert table_detector.isolation_ and isinstance(table_detector.forest_, IsolationTrees)


def test_labels_turn_the_forest_off_and_keep_the_trim(contaminated_table):
    X, y = contaminated_table
    det = AutoencoderDetector(**FAST).fit(X, anomalous=y)
    assert det.trim_ == 0.25 and not det.isolation_ and det.forest_ is None
    np.testing.assert_array_equal(det.anomaly_score(X), det.reconstruction_error(X))
    forced = AutoencoderDetector(isolation=True, **FAST).fit(X, anomalous=y)
    assert forced.isolation_ and forced.forest_.max_samples == 256


def test_the_settings_force_either_way(contaminated_table):
    X, _ = contaminated_table
    det = AutoencoderDetector(trim=0.0, isolation=False, **FAST).fit(X)
    assert det.trim_ == 0.0 and not det.isolation_ and "trim" not in det.model_.get_config()
    np.testing.assert_array_equal(det.anomaly_score(X), det.reconstruction_error(X))
    assert AutoencoderDetector(model="vae", **FAST).fit(X).trim_ == 0.0  # a VAE keeps its loss under "auto"
    view = AutoencoderDetector(latent_dim=2, **FAST).fit(X)  # the neighbour term: a layout of every item
    assert view.trim_ == 0.0 and view.isolation_


def test_images_train_trimmed_and_count_the_forest():
    images = np.random.default_rng(0).normal(size=(120, 8, 8, 1)).astype(np.float32)
    det = AutoencoderDetector(model="conv-ae", epochs=2, hidden=(4,), random_state=0).fit(images)
    assert det.input_kind_ == "images" and det.trim_ == 0.25 and det.isolation_
    assert det.anomaly_score(images).shape == (120,)


def test_a_series_keeps_its_untrimmed_loss_and_its_score(series_detector, series):
    assert series_detector.trim_ == 0.0 and not series_detector.isolation_
    assert "trim" not in series_detector.model_.get_config()  # the model (and its id) as before
    with pytest.raises(ValueError, match="isolation=True scores items"):
        AutoencoderDetector(window=16, isolation=True, **FAST).fit(series.iloc[:300])


@pytest.mark.parametrize("params,message", [
    ({"trim": 0.5}, r"trim must be 'auto' or a share in \[0, 0.5\), got 0.5"),
    ({"trim": "yes"}, "trim must be 'auto'"),
    ({"isolation": "on"}, "isolation must be True, False or 'auto', got 'on'"),
])
def test_bad_settings_name_the_parameter(contaminated_table, params, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderDetector(**FAST, **params).fit(contaminated_table[0])


# --------------------------------------------------------------------------- the combined score


def test_the_anomaly_score_sums_the_two_parts_robust_z_scores(table_detector, contaminated_table):
    """z_ae + z_if, each the log's distance from its median over the training items in robust
    standard deviations (0.7413 IQR); the forest is scikit-learn's, with the detector's seed."""
    from sklearn.ensemble import IsolationForest

    X, _ = contaminated_table
    det = table_detector
    scaled = det._scale(X)
    forest = IsolationForest(random_state=0).fit(scaled)
    errors = det.reconstruction_error(X)
    isolated = -forest.score_samples(scaled)

    def z(train, values):
        logs = np.log(train)
        q25, q50, q75 = np.percentile(logs, [25, 50, 75])
        return (np.log(values) - q50) / (0.7413 * (q75 - q25))

    expected = z(errors, errors) + z(isolated, isolated)  # the training items are all of X here
    np.testing.assert_allclose(det.anomaly_score(X), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(det.reconstruction_error(X), det.channel_errors(X).mean(axis=1))


def test_score_threshold_and_predictions_agree(table_detector, contaminated_table):
    from sklearn.metrics import roc_auc_score

    X, y = contaminated_table
    det = table_detector
    score = det.anomaly_score(X)
    parts = det.score_parts(X)
    np.testing.assert_array_equal(parts[0], score)
    np.testing.assert_array_equal(parts[1], det.channel_errors(X))
    np.testing.assert_array_equal(det.score_samples(X), -score)
    np.testing.assert_allclose(det.decision_function(X), det.threshold_ - score)
    np.testing.assert_array_equal(det.predict(X), np.where(score > det.threshold_, -1, 1))
    assert det.score(X) == pytest.approx(-score.mean())
    # the threshold keeps its rule, on the held-out items' anomaly scores (40 of 400)
    assert len(det.fit_errors_) == 40 and det.threshold_source_ == "held-out"
    assert det.threshold_ == pytest.approx(det.threshold_rule_.fit(det.fit_errors_))
    assert roc_auc_score(y, score) > 0.95


def test_part_reference_guards_a_constant_part():
    ref = PartReference.fit(np.zeros(10))
    assert ref.scale > 0 and np.isfinite(ref.z(np.array([0.0, 1.0]))).all()


# --------------------------------------------------------------------------- the forest as arrays


@pytest.mark.parametrize("n,features,max_features", [(300, 5, 1.0), (3000, 20, 1.0), (500, 8, 0.5), (3, 2, 1.0)])
def test_the_numpy_forest_scores_as_scikit_learn(n, features, max_features):
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, features)) * rng.uniform(0.01, 100, features)
    forest = IsolationForest(random_state=0, max_features=max_features).fit(X)
    trees = IsolationTrees.from_forest(forest)
    new = np.r_[X, 3 * rng.normal(size=(200, features)) * X.std(axis=0)]
    np.testing.assert_allclose(trees.score_samples(new), forest.score_samples(new), rtol=0, atol=1e-9)
    again = IsolationTrees.from_arrays(trees.to_arrays())
    np.testing.assert_array_equal(again.score_samples(new), trees.score_samples(new))


def test_a_saved_detector_scores_as_it_did_without_pickle(table_detector, contaminated_table, tmp_path):
    X, _ = contaminated_table
    path = save_detector(table_detector, tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["aeviz.json", "fit_errors.npy", "isolation.npz", "model.keras"]
    with np.load(path / "isolation.npz", allow_pickle=False) as arrays:  # plain arrays only
        assert {"children_left", "feature", "threshold", "n_node_samples", "max_samples"} <= set(arrays.files)
    loaded = load_detector(path)
    assert loaded.trim_ == 0.25 and loaded.isolation_ and loaded.threshold_ == table_detector.threshold_
    np.testing.assert_array_equal(loaded.anomaly_score(X), table_detector.anomaly_score(X))
    unzipped = load_detector_zip(detector_to_zip(table_detector), tmp_path / "unzipped")
    np.testing.assert_array_equal(unzipped.predict(X), table_detector.predict(X))


def test_a_table_model_saved_before_the_options_loads_without_them(contaminated_table, tmp_path):
    """A directory without ``trim``/``isolation`` (saved before them) loads with the trim 0 and the
    forest off, and scores by its reconstruction error, as it did."""
    X, _ = contaminated_table
    det = AutoencoderDetector(trim=0.0, isolation=False, **FAST).fit(X)
    path = save_detector(det, tmp_path / "old")
    meta = json.loads((path / "aeviz.json").read_text())
    for key in ("trim", "isolation", "part_reference"):
        del meta[key]
    del meta["params"]["trim"], meta["params"]["isolation"]
    (path / "aeviz.json").write_text(json.dumps(meta))
    old = load_detector(path)
    assert old.trim_ == 0.0 and not old.isolation_ and old.get_params()["isolation"] is False
    np.testing.assert_array_equal(old.anomaly_score(X), det.reconstruction_error(X))
    assert old.threshold_ == det.threshold_


def test_a_refined_model_refits_its_forest_on_the_new_normal_items(table_detector, contaminated_table):
    X, y = contaminated_table
    refined = table_detector.refine(X, y == 0, epochs=2)
    assert refined.isolation_ and refined.trim_ == 0.25
    assert refined.forest_ is not table_detector.forest_
    assert refined.forest_.n_trees == 100
