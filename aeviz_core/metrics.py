"""How good is a latent space, and how good is a detector.

Two groups of pure functions over numpy arrays and pandas frames (events and their
metrics live in :mod:`aeviz_core.events`):

* **latent quality** -- :func:`knn_accuracy`, :func:`trustworthiness_score`,
  :func:`silhouette_by_class`, :func:`latent_spread`, bundled by
  :func:`latent_quality`;
* **detection** -- :func:`detection_metrics`, :func:`best_f1_threshold`,
  :func:`roc_pr_curves`. Scores follow one direction throughout: higher = more
  anomalous (a reconstruction error), and a row is flagged when its score is
  *strictly greater* than the threshold, as in :mod:`aeviz_core.thresholds`.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

__all__ = [
    "best_f1_threshold",
    "detection_metrics",
    "knn_accuracy",
    "latent_quality",
    "latent_spread",
    "roc_pr_curves",
    "silhouette_by_class",
    "trustworthiness_score",
]


# --------------------------------------------------------------------------- helpers

def check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _as_matrix(name: str, X, *, flatten: bool = False) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if flatten and X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    n_bad = int(np.count_nonzero(~np.isfinite(X)))
    if n_bad:
        raise ValueError(f"{name} must be finite, got {n_bad} NaN or infinite values")
    return X


def as_vector(name: str, x, n: int | None = None, dtype=None) -> np.ndarray:
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name} must have {n} entries (one per row), got {x.shape[0]}")
    return x


def as_binary(name: str, y, n: int | None = None) -> np.ndarray:
    """0/1 or boolean labels as a boolean array."""
    y = as_vector(name, y, n)
    if y.dtype == bool:
        return y
    if not (np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all()):
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5] if np.issubdtype(y.dtype, np.number) else y[:5]
        raise ValueError(f"{name} must contain only 0/1 or booleans, got values such as {bad.tolist()}")
    return y.astype(bool)


def as_scores(scores, n: int | None = None) -> np.ndarray:
    s = as_vector("scores", scores, n, dtype=np.float64)
    n_bad = int(np.count_nonzero(~np.isfinite(s)))
    if n_bad:
        raise ValueError(
            f"scores must be finite, got {n_bad} NaN or infinite values; drop unscored rows first"
        )
    return s


def _subsample(n: int, max_samples: int, random_state) -> np.ndarray:
    """Sorted row indices: all rows, or a seeded sample of ``max_samples`` of them."""
    if n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=max_samples, replace=False))


def _class_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be 1-D with {n} entries (one per row), got shape {labels.shape}")
    return labels


# --------------------------------------------------------------------------- latent quality

def knn_accuracy(coords, labels, k=5, cv=5, random_state=0) -> float:
    """Cross-validated k-nearest-neighbour accuracy of the labels in a latent layout.

    High when points of one class sit together, whatever their shape.

    Parameters
    ----------
    coords : array-like of shape (n_samples, n_dims)
        Projected (or raw) latent coordinates, finite.
    labels : array-like of shape (n_samples,)
        Class labels, at least two classes.
    k : int, default 5
        Neighbours voting, ``k >= 1``; lowered to the size of the smallest
        training fold when that is smaller.
    cv : int, default 5
        Folds of stratified k-fold cross-validation, ``cv >= 2``; lowered to the
        size of the smallest class (which must be >= 2).
    random_state : int or None, default 0
        Seed for shuffling the folds.

    Returns
    -------
    accuracy : float
        Mean held-out accuracy in [0, 1]; higher = classes better separated.
        Chance level is the share of the largest class.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> knn_accuracy(rng.normal(size=(100, 2)) + 10 * y[:, None], y)
    1.0
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X = _as_matrix("coords", coords)
    y = _class_labels(labels, X.shape[0])
    k = check_int("k", k, 1)
    cv = check_int("cv", cv, 2)
    _, counts = np.unique(y, return_counts=True)
    if counts.size < 2:
        raise ValueError(f"labels must contain >= 2 classes, got {counts.size}")
    if counts.min() < 2:
        raise ValueError(f"every class in labels needs >= 2 members, got a class with {counts.min()}")
    n_splits = min(cv, int(counts.min()))
    smallest_train = X.shape[0] - int(np.ceil(X.shape[0] / n_splits))
    model = KNeighborsClassifier(n_neighbors=min(k, smallest_train))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return float(cross_val_score(model, X, y, cv=folds).mean())


def trustworthiness_score(X_high, coords, k=10, max_samples=5000, random_state=0) -> float:
    """How well a low-dimensional layout keeps the neighbourhoods of the original data.

    Wraps :func:`sklearn.manifold.trustworthiness`, which penalises points that
    are near neighbours in ``coords`` but not in ``X_high``. It costs O(n^2)
    memory, so above ``max_samples`` rows a seeded subsample is scored.

    Parameters
    ----------
    X_high : array-like of shape (n_samples, n_features) or (n_samples, ...)
        The original data (or latent) the layout came from; images are
        flattened.
    coords : array-like of shape (n_samples, n_dims)
        The layout.
    k : int, default 10
        Neighbourhood size, ``k >= 1``; lowered to below half the number of
        scored rows, as scikit-learn requires.
    max_samples : int, default 5000
        Most rows scored, ``max_samples >= 3``.
    random_state : int or None, default 0
        Seed for the subsample, so the score repeats.

    Returns
    -------
    trustworthiness : float
        In [0, 1]; higher = neighbourhoods better kept (1 = perfectly).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> round(trustworthiness_score(X, X), 3)
    1.0
    """
    from sklearn.manifold import trustworthiness

    X = _as_matrix("X_high", X_high, flatten=True)
    C = _as_matrix("coords", coords)
    if X.shape[0] != C.shape[0]:
        raise ValueError(f"coords must have {X.shape[0]} rows like X_high, got {C.shape[0]}")
    k = check_int("k", k, 1)
    max_samples = check_int("max_samples", max_samples, 3)
    if X.shape[0] < 3:
        raise ValueError(f"X_high must have >= 3 rows, got {X.shape[0]}")
    rows = _subsample(X.shape[0], max_samples, random_state)
    k = min(k, (rows.size - 1) // 2)
    return float(trustworthiness(X[rows], C[rows], n_neighbors=k))


def silhouette_by_class(coords, labels, max_samples=5000, random_state=0) -> float:
    """Mean silhouette of the classes in a latent layout.

    Parameters
    ----------
    coords : array-like of shape (n_samples, n_dims)
        Projected (or raw) latent coordinates.
    labels : array-like of shape (n_samples,)
        Class labels; at least two classes among the scored rows.
    max_samples : int, default 5000
        Most rows scored (the silhouette costs O(n^2)); above it a seeded
        subsample is used. ``max_samples >= 3``.
    random_state : int or None, default 0
        Seed for the subsample.

    Returns
    -------
    silhouette : float
        In [-1, 1]; higher = tighter, better separated classes, about 0 =
        overlapping classes.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> silhouette_by_class(rng.normal(size=(100, 2)) + 10 * y[:, None], y) > 0.8
    True
    """
    from sklearn.metrics import silhouette_score

    X = _as_matrix("coords", coords)
    y = _class_labels(labels, X.shape[0])
    max_samples = check_int("max_samples", max_samples, 3)
    rows = _subsample(X.shape[0], max_samples, random_state)
    n_classes = np.unique(y[rows]).size
    if not 2 <= n_classes <= rows.size - 1:
        raise ValueError(
            f"labels must have between 2 and {rows.size - 1} classes among the scored rows, "
            f"got {n_classes}"
        )
    return float(silhouette_score(X[rows], y[rows]))


def latent_spread(Z, *, collapse_tol=0.05) -> dict:
    """Per-dimension spread of latent vectors, to spot a collapsed encoder.

    A VAE whose KL term wins maps every input to (nearly) the prior's mean, so
    its latent means barely move. Pass the raw latent means: standardising them
    first would hide exactly this.

    Parameters
    ----------
    Z : array-like of shape (n_samples, latent_dim)
        Raw latent vectors (a VAE's posterior means), not rescaled.
    collapse_tol : float, default 0.05
        Spread (standard deviation) below which the latent counts as collapsed,
        in the latent's own units (for a VAE, those of its N(0, 1) prior). > 0.

    Returns
    -------
    spread : dict
        ``std`` : ndarray of shape (latent_dim,), the standard deviation of each
        dimension; ``mean_std`` : float, their mean; ``n_collapsed_dims`` : int,
        dimensions with std < ``collapse_tol`` (inactive units);
        ``collapsed`` : bool, ``mean_std < collapse_tol``.

    Examples
    --------
    >>> Z = np.random.default_rng(0).normal(scale=1e-3, size=(500, 4))
    >>> latent_spread(Z)["collapsed"]
    True
    """
    Z = _as_matrix("Z", Z)
    if Z.shape[0] < 2:
        raise ValueError(f"Z must have >= 2 rows, got {Z.shape[0]}")
    if not (isinstance(collapse_tol, numbers.Real) and collapse_tol > 0):
        raise ValueError(f"collapse_tol must be > 0, got {collapse_tol!r}")
    std = Z.std(axis=0)
    mean_std = float(std.mean())
    return {
        "std": std,
        "mean_std": mean_std,
        "n_collapsed_dims": int(np.count_nonzero(std < collapse_tol)),
        "collapsed": bool(mean_std < collapse_tol),
    }


def latent_quality(X_high, coords, labels=None, *, k_nn=5, k_trust=10, cv=5, Z=None,
                   max_samples=5000, random_state=0) -> dict:
    """All latent-quality numbers for one layout, for a summary table.

    Parameters
    ----------
    X_high : array-like of shape (n_samples, n_features) or (n_samples, ...)
        The data the latent came from (images are flattened).
    coords : array-like of shape (n_samples, n_dims)
        The layout to judge (a projection, or the latent itself).
    labels : array-like of shape (n_samples,), optional
        Class labels. Without them (or with fewer than two classes) the
        label-based scores are NaN.
    k_nn : int, default 5
        Neighbours for :func:`knn_accuracy`.
    k_trust : int, default 10
        Neighbourhood for :func:`trustworthiness_score`.
    cv : int, default 5
        Folds for :func:`knn_accuracy`.
    Z : array-like of shape (n_samples, latent_dim), optional
        Raw latent means for :func:`latent_spread`.
    max_samples : int, default 5000
        Row cap for trustworthiness and silhouette.
    random_state : int or None, default 0
        Seed for folds and subsamples.

    Returns
    -------
    quality : dict
        ``trustworthiness`` : float in [0, 1], higher = better;
        ``knn_accuracy`` : float in [0, 1] or NaN, higher = better;
        ``silhouette`` : float in [-1, 1] or NaN, higher = better;
        ``spread`` : the :func:`latent_spread` dict, or None without ``Z``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 5))
    >>> sorted(latent_quality(X, X[:, :2]))
    ['knn_accuracy', 'silhouette', 'spread', 'trustworthiness']
    """
    C = _as_matrix("coords", coords)
    quality = {
        "trustworthiness": trustworthiness_score(
            X_high, C, k=k_trust, max_samples=max_samples, random_state=random_state),
        "knn_accuracy": float("nan"),
        "silhouette": float("nan"),
        "spread": None,
    }
    if labels is not None:
        y = _class_labels(labels, C.shape[0])
        if np.unique(y).size >= 2:
            quality["knn_accuracy"] = knn_accuracy(C, y, k=k_nn, cv=cv, random_state=random_state)
            quality["silhouette"] = silhouette_by_class(
                C, y, max_samples=max_samples, random_state=random_state)
    if Z is not None:
        Z = _as_matrix("Z", Z)
        if Z.shape[0] != C.shape[0]:
            raise ValueError(f"Z must have {C.shape[0]} rows like coords, got {Z.shape[0]}")
        quality["spread"] = latent_spread(Z)
    return quality


# --------------------------------------------------------------------------- detection

def detection_metrics(scores, labels, threshold) -> dict:
    """Confusion counts, rates and ranking scores of a thresholded detector.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Anomaly scores, higher = more anomalous (e.g. reconstruction error).
        Finite.
    labels : array-like of shape (n,)
        Truth, 1/True = anomalous, 0/False = normal.
    threshold : float
        A row is flagged when ``score > threshold`` (strictly greater).

    Returns
    -------
    metrics : dict
        ``threshold`` : float; ``tp``, ``fp``, ``tn``, ``fn`` : int;
        ``precision`` : tp / (tp + fp), NaN when nothing is flagged;
        ``recall`` : tp / (tp + fn), NaN without anomalies;
        ``f1`` : 2 tp / (2 tp + fp + fn), NaN when that is 0 / 0;
        ``false_alarm_rate`` : fp / negatives, NaN without normal rows;
        ``missed_alarm_rate`` : fn / positives, NaN without anomalies;
        ``roc_auc`` and ``pr_auc`` (average precision) : threshold-free, higher
        = better, NaN when the labels hold a single class.

    Examples
    --------
    >>> m = detection_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], threshold=0.3)
    >>> m["tp"], m["fp"], m["false_alarm_rate"], m["roc_auc"]
    (2, 1, 0.5, 0.75)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = as_scores(scores)
    y = as_binary("labels", labels, s.shape[0])
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number, got {threshold!r}") from None
    if np.isnan(threshold):
        raise ValueError("threshold must be a number, got nan")
    flagged = s > threshold
    tp = int(np.count_nonzero(flagged & y))
    fp = int(np.count_nonzero(flagged & ~y))
    fn = int(np.count_nonzero(~flagged & y))
    tn = int(y.size - tp - fp - fn)
    single_class = tp + fn == 0 or fp + tn == 0
    return {
        "threshold": threshold,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "false_alarm_rate": ratio(fp, fp + tn),
        "missed_alarm_rate": ratio(fn, tp + fn),
        "roc_auc": float("nan") if single_class else float(roc_auc_score(y, s)),
        "pr_auc": float("nan") if single_class else float(average_precision_score(y, s)),
    }


def ratio(num: int, den: int) -> float:
    return float(num / den) if den else float("nan")


def _operating_points(s: np.ndarray, y: np.ndarray):
    """Counts at every distinct cut, flagging the top scores first.

    Returns the distinct scores in decreasing order, and tp and fp when every
    score >= each of them is flagged.
    """
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last_of_value = np.flatnonzero(np.diff(s_sorted) != 0)
    last_of_value = np.append(last_of_value, s.size - 1)
    tp = np.cumsum(y_sorted)[last_of_value]
    fp = last_of_value + 1 - tp
    return s_sorted[last_of_value], tp, fp


def _strict_thresholds(values: np.ndarray) -> np.ndarray:
    """For distinct decreasing ``values``, thresholds t_i with (s > t_i) == (s >= values[i]).

    The midpoint to the next lower value, or the value just below the lowest.
    """
    lower = np.append(values[1:], np.nextafter(values[-1], -np.inf))
    mid = lower + (values - lower) / 2
    return np.where((mid > lower) & (mid < values), mid, lower)


def best_f1_threshold(scores, labels) -> tuple[float, float]:
    """The threshold that maximises F1 on labelled scores.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Anomaly scores, higher = more anomalous. Finite.
    labels : array-like of shape (n,)
        Truth, 1/True = anomalous.

    Returns
    -------
    threshold : float
        Flag ``score > threshold`` (strictly greater) to reach the best F1;
        halfway between two neighbouring distinct scores, so that
        :func:`detection_metrics` with it reproduces ``f1``. Without any
        anomaly it is the largest score (flag nothing).
    f1 : float
        The best F1 in [0, 1]; NaN when the labels hold no anomaly.

    Examples
    --------
    >>> best_f1_threshold([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1])
    (0.5, 1.0)
    """
    s = as_scores(scores)
    y = as_binary("labels", labels, s.shape[0])
    if s.size == 0:
        raise ValueError("scores must not be empty")
    n_pos = int(y.sum())
    if n_pos == 0:
        return float(s.max()), float("nan")
    values, tp, fp = _operating_points(s, y)
    f1 = 2 * tp / (tp + fp + n_pos)
    best = int(np.argmax(f1))
    return float(_strict_thresholds(values)[best]), float(f1[best])


def _downsample(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    if len(frame) <= max_points:
        return frame.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def roc_pr_curves(scores, labels, max_points=500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ROC and precision-recall curves as small frames for charts.

    Parameters
    ----------
    scores, labels : array-like of shape (n,)
        As for :func:`best_f1_threshold`.
    max_points : int, default 500
        Most rows per frame, ``max_points >= 2``; longer curves keep evenly
        spaced points, always including both ends.

    Returns
    -------
    roc : DataFrame
        Columns ``threshold``, ``fpr``, ``tpr``; from (0, 0) (nothing flagged,
        ``threshold`` = the largest score) to (1, 1). Empty when the labels hold
        a single class.
    pr : DataFrame
        Columns ``threshold``, ``recall``, ``precision``, one row per threshold
        that flags something, recall increasing. Empty without anomalies.

    Each ``threshold`` is finite and flags ``score > threshold`` (strictly
    greater), as everywhere in aeviz.

    Examples
    --------
    >>> roc, pr = roc_pr_curves([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> roc[["fpr", "tpr"]].values.tolist()
    [[0.0, 0.0], [0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [1.0, 1.0]]
    """
    s = as_scores(scores)
    y = as_binary("labels", labels, s.shape[0])
    max_points = check_int("max_points", max_points, 2)
    roc = pd.DataFrame({"threshold": [], "fpr": [], "tpr": []}, dtype=float)
    pr = pd.DataFrame({"threshold": [], "recall": [], "precision": []}, dtype=float)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0:
        return roc, pr
    values, tp, fp = _operating_points(s, y)
    thresholds = _strict_thresholds(values)
    pr = _downsample(pd.DataFrame({
        "threshold": thresholds, "recall": tp / n_pos, "precision": tp / (tp + fp),
    }), max_points)
    if n_neg:
        roc = _downsample(pd.DataFrame({
            "threshold": np.append(values[0], thresholds),
            "fpr": np.append(0.0, fp / n_neg),
            "tpr": np.append(0.0, tp / n_pos),
        }), max_points)
    return roc, pr


def rates_at(flags, labels) -> dict:
    """The threshold-dependent half of ``detection_metrics`` (counts, precision,
    recall, F1, false- and missed-alarm rates) for flags already computed.

    ``detection_metrics`` also ranks every score for the ROC and PR AUCs, which do
    not depend on the threshold; the Anomalies page computes those once per model
    (cached) and these on every threshold move. NaN where a ratio is 0 / 0.
    """
    f = np.asarray(flags, dtype=bool)
    y = np.asarray(labels).astype(bool)
    tp = int(np.count_nonzero(f & y))
    fp = int(np.count_nonzero(f & ~y))
    fn = int(np.count_nonzero(~f & y))
    tn = int(y.size - tp - fp - fn)

    def ratio(a, b):
        return float(a / b) if b else float("nan")

    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "false_alarm_rate": ratio(fp, fp + tn), "missed_alarm_rate": ratio(fn, tp + fn)}
