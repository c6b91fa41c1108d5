"""aeviz's default estimator on tabular anomaly sets, against IsolationForest and PCA
reconstruction, in one run.

Protocol (ADBench's unsupervised setting, as the shared sets' README gives it): for each
``.npz`` set (arrays ``X``, ``y`` with 1 = anomaly), a stratified 70/30 split per seed (0, 1, 2);
each detector fits the train part with its anomalies in it and labels hidden and scores the
test part; ROC-AUC x 100, mean over seeds, then over sets. The detectors:

- ``AutoencoderDetector()`` with its defaults (what a user gets without choosing anything);
- ``AutoencoderDetector(latent_dim=2)``: the 2-D view model the app draws (neighbour term on);
- IsolationForest (scikit-learn defaults) and PCA reconstruction (90% of the variance of the
  standardised train part), the references of the sets' README.

Prints a table and writes ``bench/results/tabular.json``.

Run: python bench/tabular.py [FOLDER ...] [--seeds 0 1 2]
(default folder: ../shared/data/adbench-dev)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import timed, write_results  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "adbench-dev"


def iforest(train, test, seed):
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=seed).fit(train).score_samples(test)


def pca(train, test, seed):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    a, b = scaler.transform(train), scaler.transform(test)
    model = PCA(0.9, random_state=seed).fit(a)
    return ((b - model.inverse_transform(model.transform(b))) ** 2).sum(1)


def aeviz_defaults(train, test, seed):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(random_state=seed).fit(train).anomaly_score(test)


def aeviz_view(train, test, seed):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(latent_dim=2, random_state=seed).fit(train).anomaly_score(test)


DETECTORS = {"aeviz AutoencoderDetector()": aeviz_defaults, "aeviz latent_dim=2 (view model)": aeviz_view,
             "IsolationForest": iforest, "PCA reconstruction (90% variance)": pca}


def run(folders, seeds=(0, 1, 2), detectors=tuple(DETECTORS), seconds=None) -> dict:
    """``{detector: {set: ROC-AUC x 100}}`` over the ``.npz`` sets of ``folders`` (the protocol above);
    ``seconds`` (a dict), when given, collects each detector's time."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    paths = sorted(p for folder in folders for p in Path(folder).glob("*.npz"))
    table = {name: {} for name in detectors}
    for path in paths:
        data = np.load(path, allow_pickle=True)
        X, y = data["X"].astype("float32"), data["y"].astype(int)
        for detector in detectors:
            aucs = []
            for seed in seeds:
                train, test, _, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
                with timed() as t:
                    aucs.append(roc_auc_score(y_test, DETECTORS[detector](train, test, seed)))
                if seconds is not None:
                    seconds[detector] = seconds.get(detector, 0.0) + t()
            table[detector][path.stem] = round(100 * float(np.mean(aucs)), 1)
        print(f"{path.stem:16s} " + "  ".join(f"{table[d][path.stem]:5.1f}" for d in detectors), flush=True)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=[str(DEV)])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    paths = sorted(p for folder in args.folders for p in Path(folder).glob("*.npz"))
    if not paths:
        print(f"skipped: no .npz sets in {args.folders} (the shared sets live in ../shared/data/adbench-dev)")
        return 0
    seconds = {}
    table = run(args.folders, args.seeds, seconds=seconds)
    sets = [p.stem for p in paths]
    print(f"\n| detector | mean | {' | '.join(sets)} | seconds |")
    print("|---|---|" + "---|" * len(sets) + "---|")
    means = {}
    for detector, row in table.items():
        means[detector] = round(float(np.mean(list(row.values()))), 1)
        print(f"| {detector} | {means[detector]:.1f} | " + " | ".join(f"{row[s]:.1f}" for s in sets)
              + f" | {seconds[detector]:.0f} |")
    write_results("tabular", {"protocol": "ADBench unsupervised: stratified 70/30, fit on the contaminated "
                                          "train part, ROC-AUC x 100 on the test part",
                              "seeds": args.seeds, "folders": args.folders, "mean_roc_auc": means,
                              "roc_auc": table, "seconds": {k: round(v, 1) for k, v in seconds.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
