"""Threshold rules fitted on reconstruction errors of normal data.

A threshold is never a magic number in code: it is a named rule with one
parameter, fitted on errors (higher = worse) of data the model should accept.
Items whose error is strictly greater than the threshold are flagged.

==================  =========  =============================================
rule                parameter  threshold
==================  =========  =============================================
``percentile``      q in (0, 100)     the q-th percentile of the errors
``mad``             k > 0      median + k * 1.4826 * MAD (robust k-sigma)
``contamination``   c in (0, 0.5]     the (1 - c) quantile: a fraction c of
                                      the fitting data is assumed anomalous
``far``             a in (0, 1)       target false-alarm rate: the conformal
                                      (1 - a) quantile, so that on new normal
                                      data P(flag) <= a
``manual``          any float  the value itself
==================  =========  =============================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["THRESHOLD_RULES", "ThresholdRule", "check_margin", "fit_threshold", "widen"]

# rule -> (default parameter, (low, high), whether the bounds are inclusive, description)
THRESHOLD_RULES: dict[str, dict] = {
    "percentile": {"default": 99.5, "range": (0.0, 100.0), "closed": (False, False),
                   "label": "percentile of normal errors"},
    "mad": {"default": 6.0, "range": (0.0, math.inf), "closed": (False, False),
            "label": "median + k x MAD"},
    "contamination": {"default": 0.01, "range": (0.0, 0.5), "closed": (False, True),
                      "label": "expected fraction of anomalies"},
    "far": {"default": 0.005, "range": (0.0, 1.0), "closed": (False, False),
            "label": "target false-alarm rate"},
    "manual": {"default": None, "range": (-math.inf, math.inf), "closed": (False, False),
               "label": "fixed value"},
}


@dataclass(frozen=True)
class ThresholdRule:
    """A named threshold rule and its parameter.

    Parameters
    ----------
    rule : str
        One of ``THRESHOLD_RULES``.
    param : float, optional
        The rule's parameter; ``None`` takes the rule's default.

    Examples
    --------
    >>> ThresholdRule("mad", 4).fit(np.array([1.0, 1.1, 0.9, 1.0, 5.0]))  # doctest: +ELLIPSIS
    1.59...
    """

    rule: str = "percentile"
    param: float | None = None

    def resolved(self) -> ThresholdRule:
        """Validate and fill in the default parameter."""
        if self.rule not in THRESHOLD_RULES:
            raise ValueError(
                f"threshold rule must be one of {sorted(THRESHOLD_RULES)}, got {self.rule!r}"
            )
        spec = THRESHOLD_RULES[self.rule]
        param = spec["default"] if self.param is None else self.param
        if param is None:
            raise ValueError(f"threshold rule {self.rule!r} needs a value, got None")
        try:
            param = float(param)
        except (TypeError, ValueError):
            raise ValueError(
                f"threshold parameter for {self.rule!r} must be a number, got {self.param!r}"
            ) from None
        low, high = spec["range"]
        low_ok = param >= low if spec["closed"][0] else param > low
        high_ok = param <= high if spec["closed"][1] else param < high
        if not (math.isfinite(param) and low_ok and high_ok):
            lo_b = "[" if spec["closed"][0] else "("
            hi_b = "]" if spec["closed"][1] else ")"
            raise ValueError(
                f"threshold parameter for {self.rule!r} must be in {lo_b}{low}, {high}{hi_b}, "
                f"got {param!r}"
            )
        return ThresholdRule(self.rule, param)

    def fit(self, errors) -> float:
        """Return the threshold this rule gives on ``errors`` (higher = worse)."""
        return fit_threshold(errors, self.rule, self.param)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "param": self.param}

    def describe(self, margin: float = 1.0) -> str:
        """The rule in words, with a series model's margin: ``"percentile 99.5, widened x1.2"``."""
        text_ = f"{self.rule} {self.param:g}" if self.param is not None else self.rule
        return text_ if margin == 1.0 or self.rule == "manual" else f"{text_}, widened x{margin:g}"


def fit_threshold(errors, rule: str = "percentile", param: float | None = None) -> float:
    """Fit a threshold on reconstruction errors of normal data.

    Parameters
    ----------
    errors : array-like, shape (n,)
        Errors, higher = worse. Non-finite values are refused.
    rule : str
        See the module table.
    param : float, optional
        The rule's parameter (default per rule).

    Returns
    -------
    threshold : float
        Flag an item when its error is strictly greater than this.

    Examples
    --------
    >>> fit_threshold(np.arange(101.0), "percentile", 90)
    90.0
    """
    spec = ThresholdRule(rule, param).resolved()
    if spec.rule == "manual":
        return float(spec.param)
    e = np.asarray(errors, dtype=np.float64).ravel()
    if e.size == 0:
        raise ValueError("errors must hold at least one value to fit a threshold, got 0")
    if not np.all(np.isfinite(e)):
        bad = int(np.flatnonzero(~np.isfinite(e))[0])
        raise ValueError(f"errors must be finite to fit a threshold; item {bad} is {e[bad]}")
    p = spec.param
    if spec.rule == "percentile":
        return float(np.percentile(e, p))
    if spec.rule == "contamination":
        return float(np.quantile(e, 1.0 - p))
    if spec.rule == "mad":
        med = np.median(e)
        mad = 1.4826 * np.median(np.abs(e - med))
        if mad == 0.0:  # more than half the errors identical: fall back to the std
            mad = e.std()
        return float(med + p * mad)
    # far: split-conformal quantile, rank ceil((n + 1)(1 - a)) of n
    n = e.size
    rank = math.ceil((n + 1) * (1.0 - p))
    if rank > n:
        return float(e.max())  # too few errors to promise rate a; the max is the best bound
    return float(np.sort(e)[rank - 1])


def check_margin(margin) -> float:
    """``margin`` as a float, or a ValueError unless it is a number >= 1."""
    if isinstance(margin, bool) or not (isinstance(margin, (int, float, np.number)) and 1.0 <= margin < math.inf):
        raise ValueError(f"margin must be a number >= 1, got {margin!r}")
    return float(margin)


def widen(value: float, errors, margin: float, inverse: bool = False) -> float:
    """A fitted threshold's distance above the median of ``errors``, times ``margin``
    (``inverse``: divided, giving back the rule's own value). A value at or below the median
    is returned as it is.

    Examples
    --------
    >>> widen(3.0, [0.0, 1.0, 2.0], 1.2)
    3.4
    """
    median = float(np.median(errors))
    if value <= median or margin == 1.0:
        return float(value)
    return median + (value - median) * (1.0 / margin if inverse else margin)
