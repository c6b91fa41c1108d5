"""The IsolationForest part of an item's anomaly score, and how the parts are combined.

On items (a table, images) fitted without labels, :class:`~aeviz_core.detector.AutoencoderDetector`
scores each item by two parts (``isolation="auto"``): its reconstruction error and how easily
an IsolationForest isolates it. Each part ``s`` becomes a robust z-score of its log against the
training items (:class:`PartReference`), and the anomaly score is their sum.

An autoencoder alone misses anomalies it can rebuild (items off the data's structure but
close to its span) and an IsolationForest misses those inside the data's range on broken
relations between features; the sum keeps what each sees.

:class:`IsolationTrees` holds a fitted scikit-learn ``IsolationForest`` as plain arrays and
scores with numpy, as scikit-learn does: a model directory then keeps the forest without
pickle (``isolation.npz``, read with ``allow_pickle=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IQR_TO_SD", "LOG_FLOOR", "IsolationTrees", "PartReference", "average_path_length"]

#: the interquartile range of a normal distribution in standard deviations: IQR * this = sigma
IQR_TO_SD = 0.7413
#: scores are clipped at this before their log (a reconstruction error can be 0)
LOG_FLOOR = 1e-12
#: the arrays of one tree, as scikit-learn's ``tree_`` names them
TREE_ARRAYS = ("children_left", "children_right", "feature", "threshold", "n_node_samples")


def average_path_length(n) -> np.ndarray:
    """``c(n)``: the average path length of an unsuccessful search in a binary search tree of
    ``n`` items (0 for ``n <= 1``, 1 for ``n = 2``), the length a leaf of ``n`` training items
    adds to an item's path (scikit-learn's ``_average_path_length``)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Edges from the root to each node of one tree (nodes are numbered parents first)."""
    depth = np.zeros(len(left), dtype=np.float64)
    for node in range(len(left)):
        if left[node] >= 0:
            depth[left[node]] = depth[right[node]] = depth[node] + 1.0
    return depth


@dataclass(frozen=True)
class IsolationTrees:
    """A fitted IsolationForest as plain arrays, scored with numpy.

    The trees' nodes are concatenated: tree ``t`` holds nodes ``offsets[t]`` to
    ``offsets[t + 1] - 1``, and its children are numbered within the tree (-1 at a leaf).
    ``feature`` numbers the columns of the data the forest was fitted on.
    """

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    n_node_samples: np.ndarray
    offsets: np.ndarray
    max_samples: int

    @classmethod
    def from_forest(cls, forest) -> IsolationTrees:
        """The arrays of a fitted ``sklearn.ensemble.IsolationForest``."""
        parts = {name: [] for name in TREE_ARRAYS}
        counts = []
        for tree, columns in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = tree.tree_
            feature = np.asarray(t.feature, dtype=np.int64)
            if len(columns) != forest.n_features_in_:  # the tree was fitted on a subset of the columns
                feature = np.where(feature >= 0, np.asarray(columns)[np.maximum(feature, 0)], feature)
            parts["children_left"].append(np.asarray(t.children_left, dtype=np.int64))
            parts["children_right"].append(np.asarray(t.children_right, dtype=np.int64))
            parts["feature"].append(feature)
            parts["threshold"].append(np.asarray(t.threshold, dtype=np.float64))
            parts["n_node_samples"].append(np.asarray(t.n_node_samples, dtype=np.int64))
            counts.append(t.node_count)
        return cls(**{k: np.concatenate(v) for k, v in parts.items()},
                   offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   max_samples=int(forest.max_samples_))

    @classmethod
    def fit(cls, X, random_state=None) -> IsolationTrees:
        """An ``IsolationForest(random_state=random_state)`` (scikit-learn's defaults) fitted on
        ``X`` (n_items, n_features), as arrays."""
        from sklearn.ensemble import IsolationForest

        return cls.from_forest(IsolationForest(random_state=random_state).fit(X))

    def to_arrays(self) -> dict:
        """The arrays to save (``np.savez``); :meth:`from_arrays` reads them back."""
        out = {name: getattr(self, name) for name in (*TREE_ARRAYS, "offsets")}
        out["max_samples"] = np.asarray(self.max_samples, dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> IsolationTrees:
        """The forest saved by :meth:`to_arrays` (any mapping of names to arrays, e.g. an
        ``np.load`` of the ``.npz``); a ValueError names what is missing or malformed."""
        missing = [k for k in (*TREE_ARRAYS, "offsets", "max_samples") if k not in arrays]
        if missing:
            raise ValueError(f"the isolation forest's arrays lack {missing}")
        values = {k: np.asarray(arrays[k]) for k in (*TREE_ARRAYS, "offsets")}
        n = len(values["children_left"])
        if any(len(values[k]) != n for k in TREE_ARRAYS) or values["offsets"][-1] != n:
            raise ValueError("the isolation forest's arrays disagree on the number of nodes")
        return cls(**values, max_samples=int(np.asarray(arrays["max_samples"])))

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    def path_lengths(self, X, chunk: int = 65_536) -> np.ndarray:
        """Each item's path length summed over the trees: the edges to its leaf plus
        ``c(items in the leaf)``, as scikit-learn counts it. ``X`` (n, n_features) is compared
        in float32, as scikit-learn's trees compare it."""
        X = np.asarray(X, dtype=np.float32)
        total = np.zeros(len(X), dtype=np.float64)
        for t in range(self.n_trees):
            a, b = self.offsets[t], self.offsets[t + 1]
            left, right = self.children_left[a:b], self.children_right[a:b]
            feature, threshold = self.feature[a:b], self.threshold[a:b]
            ends = _node_depths(left, right) + average_path_length(self.n_node_samples[a:b])
            for lo in range(0, len(X), chunk):
                part = X[lo : lo + chunk]
                node = np.zeros(len(part), dtype=np.int64)
                rows = np.arange(len(part))
                inner = left[node] >= 0
                while inner.any():
                    at, idx = node[inner], rows[inner]
                    goes_left = part[idx, feature[at]] <= threshold[at]
                    node[inner] = np.where(goes_left, left[at], right[at])
                    inner = left[node] >= 0
                total[lo : lo + chunk] += ends[node]
        return total

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's ``IsolationForest.score_samples`` (higher = more normal):
        ``-2 ** (-mean path length / c(max_samples))``, in (-1, 0)."""
        denominator = self.n_trees * float(average_path_length(self.max_samples))
        depths = self.path_lengths(X)
        if denominator == 0:  # one training item: every path is 0
            return -np.ones(len(depths))
        return -(2.0 ** (-depths / denominator))

    def anomaly_scores(self, X) -> np.ndarray:
        """``-score_samples``, in (0, 1): higher = isolated sooner = more anomalous."""
        return -self.score_samples(X)


@dataclass(frozen=True)
class PartReference:
    """Where one part of the anomaly score sits on the training items: the median and the
    robust spread (interquartile range times :data:`IQR_TO_SD`) of its log."""

    median: float
    scale: float

    @classmethod
    def fit(cls, values) -> PartReference:
        """The reference of a part's ``values`` on the training items (a spread of 0 becomes a
        tiny positive one, so the z-score stays finite)."""
        logs = np.log(np.maximum(np.asarray(values, dtype=np.float64), LOG_FLOOR))
        q25, q50, q75 = np.percentile(logs, [25, 50, 75])
        return cls(float(q50), float(max(IQR_TO_SD * (q75 - q25), LOG_FLOOR)))

    def z(self, values) -> np.ndarray:
        """``(log s - median) / scale``: 0 for a typical training item, 1 for one a robust
        standard deviation above (higher = more anomalous)."""
        return (np.log(np.maximum(np.asarray(values, dtype=np.float64), LOG_FLOOR)) - self.median) / self.scale
