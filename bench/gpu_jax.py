"""The engine on a GPU through Keras's JAX backend, where TensorFlow is absent (issue: the engine).

A GPU machine often has JAX and no TensorFlow; ``KERAS_BACKEND=jax`` must run
the same models there. This benchmark shows two things, each in a child
process that pins JAX to one platform:

1. **Same results on the GPU.** The shipped pump sample through ``aeviz train``
   and ``aeviz score`` with default options (ROC-AUC of the row scores,
   ``top_channel`` right for single-channel faults), and the UCI digits' default
   2-D latent (5-NN accuracy, trustworthiness), next to the TensorFlow-CPU
   figures that ``tests/test_quality.py`` and ``bench/latent_quality.py`` hold.
2. **Speed against this machine's own CPUs, timed in the same run.** The
   Conv1D AE on 64x8 windows (the workload of ``bench/train_speed.py``):
   training and scoring windows/s on the GPU, and on the CPUs with
   ``JAX_PLATFORMS=cpu``. The figure is their ratio.

Run: ``KERAS_BACKEND=jax python bench/gpu_jax.py`` (writes
bench/results/gpu_jax.json). Without a GPU it reports that and measures the
CPU alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["KERAS_BACKEND"] = "jax"

PUMP = str(ROOT / "sample_data" / "pump_station.csv")
MARK = "RESULT "


def pump_quality() -> dict:
    """``aeviz train`` + ``aeviz score`` on the pump sample, default options."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from aeviz_core import load_sensor_table, normal_mask
    from aeviz_core.cli import main
    from aeviz_core.synthetic import fault_events
    from bench.common import timed

    with tempfile.TemporaryDirectory() as tmp, timed() as seconds:
        assert main(["train", PUMP, "--out", f"{tmp}/model"]) == 0
        train_s = seconds()
        assert main(["score", PUMP, "--model", f"{tmp}/model", "--out", f"{tmp}/scores.csv"]) == 0
        scores = pd.read_csv(f"{tmp}/scores.csv")
    labels = load_sensor_table(PUMP).labels
    truth = (~normal_mask(labels["anomaly"])).astype(int)
    hits = [scores["top_channel"].iloc[e.start:e.stop].value_counts().idxmax() == e.fault_channel
            for e in fault_events(labels).itertuples() if e.fault_type != "relation"]
    return {"roc_auc": round(float(roc_auc_score(truth, scores["score"])), 4),
            "top_channel_share": round(float(np.mean(hits)), 4), "events": len(hits),
            "train_s": round(train_s, 1)}


def digits_quality() -> dict:
    """The default dense AE's 2-D latent on the UCI digits, per-column and one pixel scale."""
    from aeviz_core import AutoencoderDetector, load_uci_digits
    from bench.common import digits_quality as measure
    from bench.common import timed

    X, y = load_uci_digits()
    out = {}
    for scaling in ("channel", "global"):
        with timed() as seconds:
            det = AutoencoderDetector(latent_dim=2, scaling=scaling, random_state=0).fit(X)
        out[scaling] = {**measure(X, det.transform(X), y), "epochs": len(det.history_["loss"]),
                        "seconds": round(seconds(), 1)}
    return out


def throughput() -> dict:
    from bench.train_speed import conv1d_throughput

    return conv1d_throughput()


def child(part: str) -> None:
    """Run one part in this process and print its result as one marked JSON line."""
    import jax

    devices = jax.devices()
    result = {"platform": devices[0].platform, "device": devices[0].device_kind,
              **{"quality_pump": pump_quality, "quality_digits": digits_quality,
                 "throughput": throughput}[part]()}
    print(MARK + json.dumps(result), flush=True)


def run_part(part: str, platform: str) -> dict | None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": platform, "PYTHONUNBUFFERED": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, __file__, "--child", part], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        print(f"{part} on {platform} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    result = json.loads(lines[-1][len(MARK):])
    print(f"{part} on {platform}: {result}", flush=True)
    return result


def has_gpu() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import jax; print(jax.devices()[0].platform)"],
                           capture_output=True, text=True,
                           env={**os.environ, "JAX_PLATFORMS": "cuda"})
    return probe.returncode == 0 and probe.stdout.strip() == "gpu"


def tensorflow_cpu_reference() -> dict:
    """What the TensorFlow CPU build measured on the same defaults (results kept in the repo)."""
    ref = {"pump_roc_auc": 0.930, "pump_top_channel_share": 0.786}  # tests/test_quality.py, README
    path = ROOT / "bench" / "results" / "latent_quality.json"
    if path.exists():
        rows = {r["method"]: r for r in json.loads(path.read_text())["digits"]}
        for name, key in (("aeviz AE 2-D, default settings, per-column scaling", "channel"),
                          ("aeviz AE 2-D, default settings, pixels on one scale", "global")):
            if name in rows:
                ref[f"digits_{key}"] = {k: rows[name][k] for k in ("knn5", "trustworthiness")}
    return ref


def main() -> None:
    from bench.common import write_results

    gpu = has_gpu()
    print(f"GPU through JAX: {'yes' if gpu else 'no'}", flush=True)
    platform = "cuda" if gpu else "cpu"
    payload = {"gpu": gpu,
               "quality": {"pump": run_part("quality_pump", platform),
                           "digits": run_part("quality_digits", platform),
                           "tensorflow_cpu_reference": tensorflow_cpu_reference()},
               "conv1d_64x8": {"cpu": run_part("throughput", "cpu")}}
    if gpu:
        on_gpu = payload["conv1d_64x8"]["gpu"] = run_part("throughput", "cuda")
        on_cpu = payload["conv1d_64x8"]["cpu"]
        if on_gpu and on_cpu:
            payload["conv1d_64x8"]["gpu_over_cpu"] = {
                key: round(on_gpu[key] / on_cpu[key], 2)
                for key in ("train_windows_per_s", "train_windows_per_s_second_epoch", "score_windows_per_s",
                            "plain_predict_windows_per_s")}
            print(f"GPU / CPU: {payload['conv1d_64x8']['gpu_over_cpu']}")
    write_results("gpu_jax", payload)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
