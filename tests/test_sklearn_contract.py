"""scikit-learn's estimator contract, checked by scikit-learn's own estimator checks.

``parametrize_with_checks`` runs ``sklearn.utils.estimator_checks`` on the detector in its
three configurations: items of a table, a series (``window`` set: 2-D input is
``(rows, channels)``, NaN rows are gaps) and images (``model="conv-ae"``). The checks feed
2-D tables; the detector's tags say what it accepts, and a convolutional model without a
window accepts no 2-D table (``two_d_array=False``), so scikit-learn runs only its clone
check on it: ``test_the_image_configuration_keeps_the_contract`` checks the same promises on
4-D images. A check listed in ``SERIES_CANNOT`` fails for a reason of the series itself,
and is run in strict mode: should it start to pass, the list is wrong and the run fails.

The models are tiny (one epoch of one batch, 8 hidden units, a 2-D code without the
neighbour term; the table's threshold is fitted on its training items, with no held-out
share: a series keeps its held-out blocks, since its threshold, widened by the series
margin above training rows, would flag none of them, and ``check_outliers_train`` asks that
some training items are flagged), and TensorFlow runs them eagerly here: tracing a graph
for each of the ~150 fits would cost more than the one epoch it speeds up.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, cross_validate
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeviz_core import AutoencoderDetector

# tf.data's own functions are traced even when run_functions_eagerly is on (below), and say so
pytestmark = pytest.mark.filterwarnings("ignore:Even though the `tf.config.experimental_run_functions_eagerly`")

SMALL = dict(epochs=1, hidden=(8,), latent_dim=2, neighbor_weight=0.0, batch_size=512, random_state=0)

TABLE = AutoencoderDetector(validation_fraction=0.0, **SMALL)
SERIES = AutoencoderDetector(window=3, **SMALL)
IMAGES = AutoencoderDetector(model="conv-ae", **{**SMALL, "hidden": (4,)})

#: checks a series cannot pass, with the reason
SERIES_CANNOT = {
    "check_transformer_general": (
        "a series' latent is one point per window (n_rows - window + 1 at stride 1, from the rows "
        "latent_starts gives), not one per row"),
    "check_transformer_data_not_an_array": (
        "a series' latent is one point per window (n_rows - window + 1 at stride 1, from the rows "
        "latent_starts gives), not one per row"),
    "check_methods_sample_order_invariance": (
        "the rows of a series are in time order and a row is scored with its neighbours (its "
        "windows, the running references): shuffled rows are another series"),
    "check_methods_subset_invariance": (
        "a row of a series is scored with its neighbours: a subset of the rows is another series, "
        "and one shorter than a window cannot be scored"),
}
#: the checks that want some training items flagged: a series' threshold (score version 5) sits above
#: every training row by design (the 99.95th percentile of the higher of two estimates, its distance
#: above their median widened 1.5 times, so a later normal period is not flagged), so predicting on
#: the rows it trained on flags none
for _check in ("check_outliers_train", "check_outliers_fit_predict"):
    SERIES_CANNOT[_check] = ("a series model's threshold sits above all its training rows by design (the "
                             "lasting score's percentile and margin): fit then predict on them flags none, "
                             "where the check wants both labels")


def expected_failed_checks(estimator):
    return SERIES_CANNOT if estimator.window is not None else {}


@pytest.fixture(scope="module", autouse=True)
def eager_tensorflow():
    """TensorFlow functions run eagerly, and Keras keeps its full tracebacks, for this module."""
    import keras
    import tensorflow as tf

    eager, filtering = tf.config.functions_run_eagerly(), keras.config.is_traceback_filtering_enabled()
    tf.config.run_functions_eagerly(True)
    keras.config.disable_traceback_filtering()
    yield
    tf.config.run_functions_eagerly(eager)
    if filtering:
        keras.config.enable_traceback_filtering()


@parametrize_with_checks([TABLE, SERIES, IMAGES], expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_the_tags_say_what_each_configuration_accepts():
    table, series, images = (get_tags(est) for est in (TABLE, SERIES, IMAGES))
    assert table.estimator_type == series.estimator_type == "outlier_detector"
    assert not table.input_tags.sparse and not series.input_tags.sparse
    assert not table.input_tags.allow_nan and series.input_tags.allow_nan  # a series' gaps
    assert table.input_tags.two_d_array and series.input_tags.two_d_array
    assert not images.input_tags.two_d_array and images.input_tags.three_d_array
    assert table.transformer_tags.preserves_dtype == ["float32"]
    assert get_tags(AutoencoderDetector(model="conv-ae", window=8)).input_tags.two_d_array


def test_the_image_configuration_keeps_the_contract():
    """What scikit-learn's checks ask of the table configuration, asked of 4-D images."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(60, 8, 8, 2))
    images[:3] += 3.0  # three bright images stand out
    with pytest.raises(NotFittedError):
        clone(IMAGES).predict(images)
    det = clone(IMAGES)
    assert det.fit(images, rng.integers(0, 2, 60)) is det  # y is not used
    assert det.n_features_in_ == 2 and det.item_shape_ == (8, 8, 2) and det.input_kind_ == "images"

    predicted, decision, normality = det.predict(images), det.decision_function(images), det.score_samples(images)
    assert predicted.dtype.kind == "i" and set(np.unique(predicted)) == {-1, 1}
    assert (predicted[:3] == -1).all()
    assert decision.dtype == normality.dtype == np.float64 and decision.shape == (60,)
    assert_allclose(decision, normality - det.offset_)
    assert_array_equal(np.where(decision >= 0, 1, -1), predicted)
    assert det.score(images, np.ones(60)) == pytest.approx(normality.mean())
    assert det.transform(images).dtype == np.float32 and det.transform(images).shape == (60, 2)
    # items are scored alone: a subset or another order scores the same
    order = rng.permutation(60)
    assert_allclose(det.score_samples(images[order]), normality[order], rtol=1e-6)
    assert_allclose(det.score_samples(images[:5]), normality[:5], rtol=1e-6)
    # the same fit again, without y this time (fit_transform), gives the same model: y was not used
    assert_array_equal(clone(IMAGES).fit_transform(images), det.transform(images))

    with pytest.raises(ValueError, match="X has 1 features, but AutoencoderDetector is expecting 2 features"):
        det.predict(images[..., :1])
    with pytest.raises(ValueError, match="items have shape"):
        det.decision_function(images[:, :4])
    with pytest.raises(ValueError, match="Complex data not supported"):
        det.score_samples(images + 1j)
    with pytest.raises(ValueError, match="2-D, 3-D .* or 4-D"):
        det.transform(images[..., None])
    with pytest.raises(ValueError, match="needs windows or images"):
        clone(IMAGES).fit(images.reshape(60, -1))


def test_cross_validation_reads_no_labels_through_y():
    """``cross_validate`` passes y to ``fit``: its models and scores are those of models that never
    saw it. Leaving the anomalies out of training is asked for by name (``anomalous``)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    X[:, 2] = X[:, 0] + 0.1 * X[:, 2]
    y = np.zeros(150, dtype=int)
    y[::5] = 1
    X[y == 1] *= 1.5  # wider than the normal items, among them
    det = AutoencoderDetector(**SMALL)
    cv = KFold(3, shuffle=True, random_state=0)
    folds = list(cv.split(X))

    with_y = cross_validate(det, X, y, cv=cv, scoring="roc_auc", return_estimator=True)
    unlabelled = [clone(det).fit(X[train]).decision_function(X[test]) for train, test in folds]
    for est, (_, test), scores in zip(with_y["estimator"], folds, unlabelled):
        assert_array_equal(est.decision_function(X[test]), scores)  # the model that never saw y
    aucs = [roc_auc_score(y[test], scores) for (_, test), scores in zip(folds, unlabelled)]
    assert_allclose(with_y["test_score"], aucs, rtol=1e-12)

    by_name = cross_validate(det, X, y, cv=cv, scoring="roc_auc", params={"anomalous": y}, return_estimator=True)
    labelled = [est.decision_function(X[test]) for est, (_, test) in zip(by_name["estimator"], folds)]
    for told, untold in zip(labelled, unlabelled):  # the labels change the models
        assert not np.allclose(told, untold)
    aucs = [roc_auc_score(y[test], scores) for (_, test), scores in zip(folds, labelled)]
    assert_allclose(by_name["test_score"], aucs, rtol=1e-12)
