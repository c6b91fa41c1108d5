import copy
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aeviz_core import AutoencoderDetector, ModelMismatchError, TrainingError
from aeviz_core.scores import LASTING_MARGIN, LASTING_PERCENTILE, step_scale, stillness
from aeviz_core.training import series_windows


def test_fit_sets_the_fitted_attributes(series_detector, series):
    det = series_detector
    assert det.input_kind_ == "series" and det.n_features_in_ == 4
    assert list(det.feature_names_in_) == ["a", "b", "c", "level"]
    assert det.item_shape_ == (16, 4)
    assert np.isfinite(det.threshold_) and det.offset_ == -det.threshold_
    assert len(det.history_["loss"]) >= 1 and "val_loss" in det.history_
    assert len(det.model_id_) == 16 and len(det.fingerprint_) == 16


def test_a_spike_is_found_on_its_rows_and_its_channel(series_detector, faulty_series):
    det = series_detector
    errors = det.reconstruction_error(faulty_series)
    channels = det.channel_errors(faulty_series)
    assert errors.shape == (3000,) and channels.shape == (3000, 4)
    np.testing.assert_allclose(channels.mean(axis=1), errors, rtol=1e-6)
    truth = np.zeros(3000, int)
    truth[2000:2010] = 1
    assert roc_auc_score(truth, errors) > 0.97
    assert np.argmax(channels[2000:2010].sum(axis=0)) == 1  # the event's top channel is "b"
    assert np.mean(np.argmax(channels[2000:2010], axis=1) == 1) >= 0.8  # and most of its rows
    assert np.median(errors[:1500]) < 1.5  # normalised: 1 is a typical error
    scores, parts = det.score_parts(faulty_series)
    assert roc_auc_score(truth, scores) > 0.97
    assert np.argmax(parts[2000:2010].sum(axis=0)) == 1
    flagged = det.predict(faulty_series) == -1
    assert flagged[2000:2010].mean() >= 0.8
    assert flagged[:1500].mean() < 0.05


def test_a_stuck_sensor_scores_high_although_its_error_is_small(series_detector, series):
    stuck = series.copy()
    stuck.loc[2000:2150, "c"] = stuck.loc[2000, "c"]
    det = series_detector
    err = det.channel_errors(stuck)
    assert err[2020:2130, 2].mean() < err[:1500, 2].mean() * 3  # the reconstruction error barely moves
    truth = np.zeros(3000, int)
    truth[2000:2151] = 1
    assert roc_auc_score(truth, det.anomaly_score(stuck)) > 0.9
    assert np.argmax(det.channel_scores(stuck)[2000:2151].sum(axis=0)) == 2


def test_a_stuck_noisy_level_is_flagged_by_its_stillness(series_detector, series):
    """'level' is noise around a constant: stuck, its residual barely changes, but it stops moving."""
    det = series_detector
    assert det.step_scale_.shape == (4,) and (det.step_scale_ > 0).all()
    stuck = series.copy()
    stuck.loc[2000:2150, "level"] = stuck.loc[2000, "level"]
    scores, parts = det.score_parts(stuck)
    still_rows = det.series_scorer().still_smooth
    inner = slice(2001 + still_rows // 2, 2151 - still_rows // 2)  # every averaged step is still
    assert (np.argmax(parts[inner], axis=1) == 3).all()
    # at the stillness test's ceiling (-log of its floor, 6.9), over four times the threshold (4.1 measured)
    assert (scores[inner] > 4 * det.threshold_).all()
    # flagged from about half the stillness average (15 rows) into the stuck stretch: 93% measured
    assert (det.predict(stuck)[2010:2141] == -1).mean() > 0.9
    assert (det.predict(stuck)[:1500] == -1).mean() < 0.05
    # a model saved before the stillness test (no step_scale_) scores the residual alone: lower
    older = copy.copy(det)
    del older.step_scale_
    residual_only = older.anomaly_score(stuck)
    assert residual_only[inner].mean() < 0.5 * scores[inner].mean()
    np.testing.assert_array_equal(residual_only[:1500] <= scores[:1500], True)


def test_a_channel_that_rests_in_normal_data_is_left_out_of_the_stillness_test():
    rng = np.random.default_rng(1)
    n = 3000
    t = np.arange(n)
    setpoint = np.repeat(rng.choice([40.0, 50.0, 60.0], size=n // 300), 300)  # holds for 5 minutes
    frame = pd.DataFrame({
        "a": np.sin(t / 20) + rng.normal(0, 0.05, n),
        "b": np.cos(t / 20) + rng.normal(0, 0.05, n),
        "setpoint": setpoint,
    })
    det = AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=5, random_state=0).fit(frame.iloc[:2400])
    assert det.step_scale_[2] == 0 and (det.step_scale_[:2] > 0).all()
    smooth = det.series_scorer().smooth
    still = stillness(det._scale(frame.to_numpy()), det.step_scale_, smooth)
    assert (still[:, 2] == 0).all()
    held = frame.copy()
    held.loc[2500:2700, "a"] = held.loc[2500, "a"]
    assert stillness(det._scale(held.to_numpy()), det.step_scale_, smooth)[2550:2650, 0].min() > 5


def test_step_scale_uses_consecutive_normal_rows_only():
    Xs = np.c_[np.arange(10.0), np.zeros(10)]
    Xs[5, 0] = 100.0  # a fault row: its steps are not normal
    normal = np.ones(10, bool)
    normal[5] = False
    scale = step_scale(Xs, normal, smooth=3, runs=[(0, 10)])
    assert scale[0] == pytest.approx(1.0)  # unit steps; the jumps into and out of row 5 are left out
    assert scale[1] == 0.0  # a constant channel has nothing to test


def test_score_directions_agree(series_detector, faulty_series):
    det = series_detector
    err = det.anomaly_score(faulty_series)
    np.testing.assert_allclose(det.score_samples(faulty_series), -err)
    decision = det.decision_function(faulty_series)
    np.testing.assert_array_equal(det.predict(faulty_series), np.where(decision < 0, -1, 1))


def test_latent_and_reconstruction_shapes(series_detector, series):
    det = series_detector
    Z = det.transform(series)
    assert Z.shape == (len(det.latent_starts(3000)), 3)
    recon = det.reconstruct(series)
    assert recon.shape == (3000, 4)
    assert np.abs(recon - series.to_numpy()).mean() < 0.15  # back in the input's units


def test_threshold_moves_without_retraining(series_detector):
    det = series_detector
    weights = [w.copy() for w in det.model_.get_weights()]
    other = det.with_threshold("percentile", 50)
    assert other.threshold_ < det.threshold_
    assert det.threshold_rule_.rule == "percentile" and det.threshold_rule_.param == LASTING_PERCENTILE
    assert other.model_ is det.model_
    for a, b in zip(weights, det.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    manual = det.with_threshold("manual", 1.5)
    assert manual.threshold_ == 1.5


@pytest.mark.parametrize("fixture, percentile, margin", [("series_detector", LASTING_PERCENTILE, LASTING_MARGIN),
                                                        ("smooth_detector", 99.5, 1.2)])
def test_a_series_threshold_widens_the_fitted_rule_by_its_margin(fixture, percentile, margin, request):
    """A series model's fitted rules sit ``threshold_margin_`` times as far above the median of the
    threshold's rows as the rule's own value (1.5 for the default score, 1.2 for version 3);
    ``margin=1`` takes the rule as it is; a manual value is never moved."""
    from aeviz_core.thresholds import widen

    det = request.getfixturevalue(fixture)
    errors = det.fit_errors_
    plain, median = np.percentile(errors, percentile), np.median(errors)
    assert det.threshold_margin_ == margin
    assert det.threshold_ == pytest.approx(median + margin * (plain - median))
    assert det.threshold_ > plain
    assert det.with_threshold(margin=1.0).threshold_ == pytest.approx(plain)
    assert det.threshold_margin_ == margin  # with_threshold changed a copy
    far = det.with_threshold("far", 0.01)
    assert far.threshold_ == pytest.approx(widen(np.sort(errors)[int(np.ceil((len(errors) + 1) * 0.99)) - 1],
                                                 errors, margin))
    assert det.with_threshold("manual", 0.7).threshold_ == 0.7
    with pytest.raises(ValueError, match="margin must be a number >= 1"):
        det.with_threshold(margin=0.5)


def test_a_labelled_fault_beside_the_held_out_rows_does_not_raise_the_threshold(series, smooth_detector,
                                                                                 series_detector):
    """Held-out rows whose windows or averages reach a labelled fault would score the fault and lift
    the threshold toward it; they are left out of the threshold's rows."""
    from aeviz_core import AutoencoderDetector

    X = series.iloc[:1500].copy()
    y = np.zeros(len(X), dtype=int)
    # the held-out blocks of 1,500 rows are rows 338-412 and 1088-1162: a fault 8 rows after the first
    X.loc[420:440, "a"] += 3.0
    y[420:441] = 1
    # version 3 fits its threshold on the held-out rows
    params = dict(window=16, stride=2, latent_dim=3, epochs=15, random_state=0, series_score="smooth")
    det = AutoencoderDetector(**params).fit(X, anomalous=y)
    reach = det.series_scorer().reach
    assert len(det.fit_errors_) == 150 - (412 - (420 - reach) + 1)  # the rows within reach are out
    clean = smooth_detector  # the same settings on the same rows without the fault
    assert clean.get_params() == {**clean.get_params(), **params}
    assert det.fit_errors_.max() < 2 * np.percentile(clean.fit_errors_, 99.5)
    assert det.threshold_ < 1.5 * clean.threshold_
    # the default score, with 150 held-out rows (fewer than 32 windows), on every normal training row
    params.pop("series_score")
    det = AutoencoderDetector(**params).fit(X, anomalous=y)
    reach = det.series_scorer().reach
    assert det.threshold_source_ == "training"
    assert len(det.fit_errors_) == 1500 - 21 - 2 * reach  # the fault's rows and the rows within reach are out
    clean = series_detector
    assert clean.get_params() == {**clean.get_params(), **params}
    assert det.fit_errors_.max() < 2 * np.percentile(clean.fit_errors_, 99.95)
    assert det.threshold_ < 1.5 * clean.threshold_


def test_other_channels_are_refused(series_detector, series):
    renamed = series.rename(columns={"c": "pressure"})
    with pytest.raises(ModelMismatchError, match=r"missing \['c'\], unexpected \['pressure'\]"):
        series_detector.reconstruction_error(renamed)
    with pytest.raises(ModelMismatchError, match="3 channels, the model was trained on 4"):
        series_detector.reconstruction_error(series.to_numpy()[:, :3])
    with pytest.raises(ModelMismatchError, match="another order"):
        series_detector.reconstruction_error(series[["b", "a", "c", "level"]])


def test_a_missing_value_in_a_series_is_a_gap_not_an_error(series_detector, series):
    """A row with a missing value gets no score; the stretches on either side are scored alone."""
    bad = series.copy()
    bad.iloc[1000, 2] = np.nan
    bad.iloc[1001, 0] = np.inf
    scores, parts = series_detector.score_parts(bad)
    assert np.isnan(scores[1000:1002]).all() and np.isnan(parts[1000:1002]).all()
    assert np.isfinite(scores[:1000]).all() and np.isfinite(scores[1002:]).all()
    # no window spans the gap: each side scores as if it were the whole series
    np.testing.assert_allclose(scores[:1000], series_detector.anomaly_score(series.iloc[:1000]), rtol=1e-5)
    np.testing.assert_allclose(scores[1002:], series_detector.anomaly_score(series.iloc[1002:]), rtol=1e-5)
    assert (series_detector.predict(bad)[1000:1002] == 1).all()  # a gap is never flagged


def test_nan_in_a_table_is_named():
    X = np.random.default_rng(0).normal(size=(200, 3))
    det = AutoencoderDetector(latent_dim=2, epochs=2, random_state=0).fit(X)
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="NaN at item 7, channel 2"):
        det.reconstruction_error(X)


def test_labels_keep_faults_out_of_training(series, faulty_series):
    y = np.zeros(len(faulty_series), int)
    y[2000:2010] = 1
    det = AutoencoderDetector(window=16, stride=4, latent_dim=3, epochs=2, random_state=0)
    det.fit(faulty_series, anomalous=y)
    scaled = det._scale(faulty_series.to_numpy())
    assert len(series_windows(scaled, 16, 4, normal=y == 0)) < len(series_windows(scaled, 16, 4))


def test_y_is_not_used_and_labels_are_asked_for_by_name():
    """``fit``'s y is ignored, as scikit-learn's outlier detectors ignore it (model selection passes
    its labels there); ``anomalous`` leaves the items it marks out of training."""
    X = np.random.default_rng(0).normal(size=(120, 3))
    params = dict(latent_dim=2, hidden=(8,), epochs=2, random_state=0)
    plain = AutoencoderDetector(**params).fit(X)
    with_y = AutoencoderDetector(**params).fit(X, np.ones(120))  # every item "anomalous" in y: not read
    np.testing.assert_array_equal(with_y.score_samples(X), plain.score_samples(X))
    labelled = AutoencoderDetector(**params).fit(X, anomalous=np.r_[np.ones(20), np.zeros(100)])
    assert not np.allclose(labelled.score_samples(X), plain.score_samples(X))
    with pytest.raises(ValueError, match="anomalous marks every item as anomalous: nothing normal"):
        AutoencoderDetector(**params).fit(X, anomalous=np.ones(120))
    with pytest.raises(ValueError, match=r"anomalous must have one label per item \(120\), got shape \(3,\)"):
        AutoencoderDetector(**params).fit(X, anomalous=[0, 1, 0])


def test_score_parts_in_one_pass_and_score_is_a_float(series_detector, faulty_series):
    """``score_parts``: the anomaly score and its channel parts; ``score``: scikit-learn's float, the
    mean of ``score_samples`` (higher = more normal) over the scored rows, y not used."""
    det = series_detector
    scores, parts = det.score_parts(faulty_series)
    np.testing.assert_array_equal(scores, det.anomaly_score(faulty_series))
    np.testing.assert_array_equal(parts, det.channel_scores(faulty_series))
    gappy = faulty_series.copy()
    gappy.iloc[100] = np.nan  # a gap row: no score, left out of the mean
    value = det.score(gappy, np.ones(len(gappy)))
    assert isinstance(value, float) and np.isfinite(value)
    assert value == pytest.approx(np.nanmean(det.score_samples(gappy)), rel=1e-12)
    assert det.score(gappy) == value


def test_random_state_makes_runs_repeatable(series):
    a = AutoencoderDetector(window=8, stride=8, latent_dim=2, epochs=3, random_state=3).fit(series.iloc[:800])
    b = AutoencoderDetector(window=8, stride=8, latent_dim=2, epochs=3, random_state=3).fit(series.iloc[:800])
    np.testing.assert_allclose(a.reconstruction_error(series.iloc[:800]),
                               b.reconstruction_error(series.iloc[:800]), rtol=1e-4)


def test_tables_and_images_work(digits):
    X, y = digits
    table = AutoencoderDetector(epochs=3, random_state=0).fit(X[:600])
    assert table.input_kind_ == "table" and table.reconstruction_error(X[:10]).shape == (10,)
    assert table.channel_errors(X[:10]).shape == (10, 64)
    images = X.reshape(-1, 8, 8, 1)
    conv = AutoencoderDetector(model="conv-ae", hidden=(8, 16), epochs=2, scaling="global",
                               random_state=0).fit(images[:600])
    assert conv.input_kind_ == "images" and conv.reconstruct(images[:5]).shape == (5, 8, 8, 1)
    with pytest.raises(ModelMismatchError, match="items have shape"):
        conv.reconstruction_error(X[:5].reshape(-1, 4, 16, 1))


def test_vae_detector_reports_its_losses(digits):
    X, _ = digits
    det = AutoencoderDetector(model="vae", epochs=2, random_state=0).fit(X[:500])
    assert {"reconstruction_loss", "kl_loss"} <= set(det.history_)
    assert det.transform(X[:20]).shape == (20, det.latent_dim_)


def test_progress_and_stop(series):
    seen, stop = [], threading.Event()

    def progress(info):
        seen.append(info)
        if info.epoch == 2:
            stop.set()

    det = AutoencoderDetector(window=8, stride=4, epochs=50, early_stopping=False, random_state=0)
    det.fit(series.iloc[:800], progress=progress, stop=stop)
    assert [i.epoch for i in seen] == [1, 2] and seen[0].epochs == 50
    assert seen[0].val_loss is not None and det.interrupted_
    assert np.isfinite(det.reconstruction_error(series.iloc[:100])).all()
    assert seen[0].model is det.model_  # the hook can look at the model being trained


def test_nan_loss_is_a_training_error(series):
    huge = series.iloc[:400] * 1e30
    det = AutoencoderDetector(window=8, stride=4, epochs=3, scaling="none", learning_rate=10.0)
    with pytest.raises(TrainingError, match="loss became NaN"):
        det.fit(huge)


@pytest.mark.parametrize("params, message", [
    ({"model": "pca"}, "model must be one of"),
    ({"latent_dim": 0}, "latent_dim must be an integer >= 1, got 0"),
    ({"window": 1}, "window must be None or an integer >= 2, got 1"),
    ({"threshold": "magic"}, "threshold rule must be one of"),
    ({"validation_fraction": 0.9}, "validation_fraction must be in"),
    ({"model": "conv-ae"}, "needs windows or images"),
])
def test_bad_parameters_are_named(params, message, series):
    with pytest.raises(ValueError, match=message):
        AutoencoderDetector(**params).fit(series.iloc[:200])


def test_too_few_rows():
    with pytest.raises(ValueError, match="training needs at least window \\+ 2 = 34"):
        AutoencoderDetector(window=32).fit(np.zeros((20, 3)))


def test_constant_channel_scores_are_finite(series):
    X = series.iloc[:600].copy()
    X["level"] = 3.0
    det = AutoencoderDetector(window=8, stride=4, epochs=2, random_state=0).fit(X)
    assert np.isfinite(det.reconstruction_error(X)).all()


def test_sklearn_clone_and_params():
    from sklearn.base import clone

    det = AutoencoderDetector(latent_dim=5, hidden=(32, 16))
    again = clone(det)
    assert again.get_params() == det.get_params()
    assert isinstance(pd.Series(det.get_params()), pd.Series)


@pytest.mark.parametrize("params, weight, batch, epochs", [
    ({}, 0.0, 64, 60),  # "auto" sizes a latent for detection: plain reconstruction
    ({"latent_dim": 2}, 0.3, 512, 150),  # a 2-D latent to look at: the neighbour term trains
    ({"latent_dim": 3, "model": "conv-ae"}, 0.3, 512, 150),
    ({"latent_dim": 16}, 0.0, 64, 60),  # a detection latent: plain reconstruction
    ({"model": "vae"}, 0.0, 64, 60),
    ({"neighbor_weight": 1.0, "latent_dim": 8}, 1.0, 512, 150),
    ({"neighbor_weight": 0.0, "batch_size": 32, "epochs": 7}, 0.0, 32, 7),
])
def test_auto_settings_follow_the_neighbour_term(params, weight, batch, epochs):
    det = AutoencoderDetector(**params)
    plan = det.training_plan()
    assert (plan.neighbor_weight, plan.batch_size, plan.epochs) == (weight, batch, epochs)


@pytest.mark.parametrize("params, stops_early", [
    ({}, True),
    ({"latent_dim": 2}, False),  # the neighbour term trains: the whole schedule
    ({"latent_dim": 16}, True),
    ({"early_stopping": True}, True),
    ({"early_stopping": False, "latent_dim": 16}, False),
])
def test_early_stopping_auto_follows_the_neighbour_term(params, stops_early):
    assert AutoencoderDetector(**params).training_plan().early_stopping is stops_early


def test_early_stopping_with_the_neighbour_term_watches_the_reconstruction():
    X = np.random.default_rng(0).normal(size=(300, 6))
    det = AutoencoderDetector(latent_dim=2, early_stopping=True, epochs=3, random_state=0).fit(X)
    assert {"reconstruction_loss", "val_reconstruction_loss", "val_loss"} <= set(det.history_)
    # the term is added on top of the reconstruction
    assert det.history_["loss"][-1] > det.history_["reconstruction_loss"][-1]
    det = AutoencoderDetector(latent_dim=2, epochs=4, random_state=0).fit(X)  # "auto": no early stop
    assert len(det.history_["loss"]) == 4
    plain = AutoencoderDetector(latent_dim=8, epochs=2, random_state=0).fit(X)
    assert "reconstruction_loss" not in plain.history_  # the loss is the reconstruction: one curve


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_bad_early_stopping_is_refused(value):
    with pytest.raises(ValueError, match="early_stopping must be True, False or 'auto'"):
        AutoencoderDetector(early_stopping=value).fit(np.random.default_rng(0).normal(size=(50, 4)))


@pytest.mark.parametrize("weight", [-0.1, float("nan"), "yes", True])
def test_bad_neighbor_weight_is_refused(weight):
    with pytest.raises(ValueError, match="neighbor_weight"):
        AutoencoderDetector(neighbor_weight=weight).fit(np.random.default_rng(0).normal(size=(50, 4)))


def test_a_vae_refuses_the_neighbour_term():
    with pytest.raises(ValueError, match="not to VAEs"):
        AutoencoderDetector(model="vae", neighbor_weight=0.5).fit(np.random.default_rng(0).normal(size=(50, 4)))


def test_the_neighbour_term_makes_a_2d_latent_keep_the_digits_apart():
    from aeviz_core import knn_accuracy, load_uci_digits

    X, y = load_uci_digits()
    common = {"latent_dim": 2, "epochs": 40, "batch_size": 512, "scaling": "global", "early_stopping": False, "random_state": 0}
    plain = AutoencoderDetector(neighbor_weight=0.0, **common).fit(X)
    embedded = AutoencoderDetector(neighbor_weight=0.3, **common).fit(X)
    plain_acc = knn_accuracy(plain.transform(X), y, k=5, cv=5)
    embedded_acc = knn_accuracy(embedded.transform(X), y, k=5, cv=5)
    assert embedded_acc > plain_acc + 0.05, (plain_acc, embedded_acc)


def test_the_compiled_scorer_of_a_conv_model_takes_the_fast_path_and_scores_the_same():
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(300, 32, 4)).astype("float32")
    det = AutoencoderDetector(model="conv-ae", latent_dim=4, epochs=2, random_state=0).fit(windows)
    forward = det.inference().forward
    assert forward.__name__ == "forward"  # the polyphase path passed its check, not the model call
    scaled = det._scale(windows)
    plain = ((scaled - np.asarray(det.model_(scaled))) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(det.reconstruction_error(windows), plain, rtol=1e-4)


def test_scores_do_not_depend_on_the_scoring_batch(series_detector, faulty_series, monkeypatch):
    """An accelerator scores in 16-times larger batches; batches are padded at the end and
    kept one in flight. None of that changes a figure."""
    from aeviz_core import inference

    assert inference.scoring_batch(512) == 512  # no GPU seen here
    monkeypatch.setattr(inference, "on_accelerator", lambda: True)
    assert inference.scoring_batch(512) == 8192
    rows = faulty_series.to_numpy()
    table = AutoencoderDetector(epochs=2, latent_dim=2, random_state=0).fit(rows[:700])
    results = []
    for batch in (lambda b: b, lambda b: 7, lambda b: b * 16):  # as now, tiny with a padded tail, huge
        monkeypatch.setattr(inference, "scoring_batch", batch)
        series, items = copy.deepcopy(series_detector), copy.deepcopy(table)  # fresh compiled scorers
        results.append((series.anomaly_score(rows), series.channel_errors(rows), items.reconstruction_error(rows)))
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def _pump_like_series(n=4000, seed=0):
    """A noisy flow meter, a motor current and a pressure that follow the true flow closely, and an
    unrelated channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    demand = np.sin(t / 150) + 0.3 * np.sin(t / 37)
    return pd.DataFrame({
        "flow": demand + rng.normal(0, 0.15, n),
        "current": 2.0 * demand + rng.normal(0, 0.02, n),
        "pressure": 1.0 - 0.5 * demand + rng.normal(0, 0.03, n),
        "other": np.cos(t / 90) + rng.normal(0, 0.1, n),
    })


def test_blame_names_the_drifting_sensor_of_a_broken_relation():
    X = _pump_like_series()
    det = AutoencoderDetector(window=16, stride=2, latent_dim=3, epochs=30, random_state=0).fit(X.iloc[:3000])
    faulty = X.copy()
    faulty.loc[3400:3599, "flow"] += np.linspace(0.05, 1.0, 200)  # the flow meter drifts
    _, parts = det.score_parts(faulty)
    plain = parts[3400:3600].sum(axis=0) / parts[3400:3600].sum()
    shares = det.blame(faulty, 3400, 3599)
    assert shares.sum() == pytest.approx(1.0) and (shares >= 0).all()
    # the drift raises every related channel's error; replacing the flow meter removes it
    assert plain[0] < 0.45, plain
    assert shares.argmax() == 0 and shares[0] > 0.6, shares
    assert shares[3] < 0.1  # the unrelated channel takes no blame


def test_blame_names_a_stuck_sensor(series_detector, series):
    stuck = series.copy()
    stuck.loc[2000:2199, "c"] = stuck.loc[1999, "c"]
    shares = series_detector.blame(stuck, 2000, 2199)
    assert list(series.columns)[int(np.argmax(shares))] == "c"
    assert shares.sum() == pytest.approx(1.0)


def test_blame_of_a_long_event_judges_the_rows_around_its_peak(series_detector, faulty_series):
    scores = series_detector.anomaly_score(faulty_series)
    peak = 1000 + int(np.argmax(scores[1000:3000]))
    assert 2000 <= peak <= 2009  # the spike on 'b'
    shares = series_detector.blame(faulty_series, 1000, 2999, max_rows=200)
    np.testing.assert_allclose(shares, series_detector.blame(faulty_series, peak - 100, peak + 99))
    assert list(faulty_series.columns)[int(np.argmax(shares))] == "b"


def test_blame_refuses_what_it_cannot_judge(series_detector, series):
    with pytest.raises(ValueError, match="start <= end"):
        series_detector.blame(series, 50, 10)
    with pytest.raises(ValueError, match="end < 3000"):
        series_detector.blame(series, 10, 3000)
    with pytest.raises(ValueError, match="max_rows"):
        series_detector.blame(series, 10, 20, max_rows=0)
    table = AutoencoderDetector(epochs=1, latent_dim=2, random_state=0).fit(series.iloc[:500])
    with pytest.raises(ValueError, match="series"):
        table.blame(series, 0, 10)


def test_decode_maps_latent_points_back_to_items_in_the_data_units(digits):
    X, _ = digits
    det = AutoencoderDetector(latent_dim=2, epochs=3, neighbor_weight=0.0, batch_size=64, random_state=0).fit(X[:400])
    Z = det.transform(X[:5])
    decoded = det.decode(Z)
    assert decoded.shape == (5, 64)
    np.testing.assert_allclose(decoded, det.reconstruct(X[:5]), rtol=1e-4, atol=1e-3)
    assert decoded.mean() > 2  # pixels 0-16, not the scaled values around 0
    with pytest.raises(ValueError, match=r"Z must have shape \(n, 2\)"):
        det.decode(np.zeros((3, 5)))


@pytest.mark.parametrize("model", ["ae", "conv-ae", "vae"])
def test_a_seeded_fit_is_repeatable_without_reseeding_the_process(series, model):
    import keras

    fits = []
    for global_seed in (1, 2):  # whatever else the process did to its generators
        keras.utils.set_random_seed(global_seed)
        np.random.seed(123)
        det = AutoencoderDetector(model=model, window=8, stride=4, latent_dim=3, epochs=2,
                                  random_state=5).fit(series.iloc[:600])
        assert np.random.rand() == np.random.RandomState(123).rand()  # numpy's global state untouched
        fits.append(det.reconstruction_error(series.iloc[:200]))
    np.testing.assert_array_equal(fits[0], fits[1])


def test_auto_latent_is_sized_by_the_data_for_detection(tmp_path):
    """``latent_dim="auto"``: a table's code holds 90% of its scaled variance (here 3 directions
    carry it all), a series gets 16, the size is saved with the model, and an explicit size wins."""
    from aeviz_core import load_detector, save_detector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 12)) + 0.01 * rng.normal(size=(600, 12))
    det = AutoencoderDetector(epochs=2, random_state=0).fit(X)
    assert det.latent_dim_ == 3 and det.transform(X[:4]).shape == (4, 3)
    assert det.training_plan().neighbor_weight == 0  # a detection latent: no neighbour term
    wide = rng.normal(size=(600, 40))  # no structure: capped at 32
    assert AutoencoderDetector(epochs=1, random_state=0).fit(wide).latent_dim_ == 32
    series = AutoencoderDetector(window=8, epochs=1, random_state=0).fit(rng.normal(size=(400, 3)))
    assert series.latent_dim_ == 16
    assert AutoencoderDetector(latent_dim=5, epochs=1, random_state=0).fit(X).latent_dim_ == 5
    save_detector(det, tmp_path / "m")
    loaded = load_detector(tmp_path / "m")
    assert loaded.get_params()["latent_dim"] == "auto" and loaded.latent_dim_ == 3
    np.testing.assert_allclose(loaded.transform(X[:4]), det.transform(X[:4]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        AutoencoderDetector(latent_dim="big").fit(X)
