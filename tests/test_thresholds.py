import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeviz_core import THRESHOLD_RULES, ThresholdRule, fit_threshold

ERRORS = np.random.default_rng(0).gamma(2.0, 1.0, 10_000)


def test_percentile_and_contamination():
    assert fit_threshold(np.arange(101.0), "percentile", 90) == pytest.approx(90.0)
    t = fit_threshold(ERRORS, "contamination", 0.02)
    assert np.mean(ERRORS > t) == pytest.approx(0.02, abs=0.002)


def test_mad_is_robust_to_outliers():
    clean = np.random.default_rng(1).normal(1.0, 0.1, 1000)
    dirty = np.concatenate([clean, np.full(50, 100.0)])
    assert fit_threshold(dirty, "mad", 5) == pytest.approx(fit_threshold(clean, "mad", 5), rel=0.1)
    assert fit_threshold(dirty, "mad", 5) < 2.0


def test_far_keeps_the_false_alarm_rate_on_new_normal_data():
    rng = np.random.default_rng(2)
    rates = []
    for _ in range(200):
        fit, new = rng.gamma(2.0, 1.0, 200), rng.gamma(2.0, 1.0, 2000)
        rates.append(np.mean(new > fit_threshold(fit, "far", 0.05)))
    assert np.mean(rates) <= 0.05 + 0.005


def test_manual_returns_the_value():
    assert fit_threshold(ERRORS, "manual", 3.25) == 3.25


@pytest.mark.parametrize("rule, param, message", [
    ("nope", None, "threshold rule must be one of"),
    ("percentile", 100, r"must be in \(0.0, 100.0\), got 100"),
    ("contamination", 0.7, r"must be in \(0.0, 0.5\], got 0.7"),
    ("mad", -1, "got -1"),
    ("manual", None, "needs a value"),
    ("far", "x", "must be a number"),
])
def test_bad_rules_name_the_problem(rule, param, message):
    with pytest.raises(ValueError, match=message):
        fit_threshold(ERRORS, rule, param)


def test_non_finite_errors_are_refused():
    with pytest.raises(ValueError, match="item 1 is nan"):
        fit_threshold([1.0, np.nan], "percentile")


def test_every_rule_has_a_usable_default():
    for rule in THRESHOLD_RULES:
        if rule != "manual":
            assert np.isfinite(ThresholdRule(rule).fit(ERRORS))


@settings(max_examples=80, deadline=None)
@given(errors=arrays(np.float64, st.integers(1, 200), elements=st.floats(0, 1e6)),
       rule=st.sampled_from(["percentile", "mad", "contamination", "far"]))
def test_thresholds_are_finite_and_within_the_data(errors, rule):
    t = fit_threshold(errors, rule)
    assert np.isfinite(t)
    if rule != "mad":
        assert errors.min() <= t <= errors.max()


def test_widen_stretches_the_distance_above_the_median_and_gives_it_back():
    from aeviz_core.thresholds import widen

    errors = np.arange(101.0)  # median 50
    assert widen(90.0, errors, 1.2) == pytest.approx(98.0)
    assert widen(98.0, errors, 1.2, inverse=True) == pytest.approx(90.0)
    assert widen(40.0, errors, 1.2) == 40.0  # at or below the median: as it is
    assert widen(90.0, errors, 1.0) == 90.0


def test_a_rule_describes_itself_with_a_series_margin():
    assert ThresholdRule("percentile", 99.5).describe() == "percentile 99.5"
    assert ThresholdRule("percentile", 99.5).describe(1.2) == "percentile 99.5, widened x1.2"
    assert ThresholdRule("manual", 2.5).describe(1.2) == "manual 2.5"  # a manual value is never moved
