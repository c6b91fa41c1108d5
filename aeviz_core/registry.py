"""Save and load trained detectors as model directories (and zips of them).

A model directory holds exactly:

* ``model.keras``: the Keras model (architecture as config, weights), loaded
  with ``safe_mode=True``, so it can run no Python code from the file;
* ``aeviz.json``: everything else (parameters, scaler, channels, window,
  threshold rule and value, versions, fingerprints of the training data);
* ``fit_errors.npy``: the errors the threshold is fitted on (so it can move
  without retraining), read with ``allow_pickle=False``;
* ``isolation.npz``, only for a model whose score counts an IsolationForest
  (``isolation_``): its trees as plain arrays
  (:meth:`~aeviz_core.isolation.IsolationTrees.to_arrays`), read with
  ``allow_pickle=False`` and scored with numpy.

Models saved before ``trim`` and ``isolation`` load with ``trim_ = 0`` and the
isolation off, and score as they did.

Only directories with an ``aeviz.json`` of format ``aeviz-model`` load; a
model with a ``Lambda`` layer or any class aeviz did not register is refused.
Saving writes into a temporary sibling and renames it into place, so an
interrupted save never leaves a half-written model over a good one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .detector import ModelMismatchError

__all__ = [
    "ModelMismatchError",
    "UnsafeModelError",
    "detector_to_zip",
    "load_detector",
    "load_detector_zip",
    "save_detector",
]

FORMAT = "aeviz-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
META_FILE = "aeviz.json"
ERRORS_FILE = "fit_errors.npy"
ISOLATION_FILE = "isolation.npz"
MAX_ZIP_BYTES = 512 * 1024 * 1024


class UnsafeModelError(ValueError):
    """The file is not an aeviz model directory, or holds code or unknown classes."""


def save_detector(detector, path, *, extra: dict | None = None) -> Path:
    """Write a fitted detector to the model directory ``path`` (replaced atomically).

    Parameters
    ----------
    detector : AutoencoderDetector
        A fitted detector.
    path : str or Path
        The model directory to create or replace.
    extra : dict, optional
        JSON-serialisable facts to keep beside the model (e.g. the time and
        label columns of the training file).

    Returns
    -------
    path : Path
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(detector, "model_")
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aeviz_version": _aeviz_version(),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": _jsonable(detector.get_params()),
        "input_kind": detector.input_kind_,
        "item_shape": list(detector.item_shape_),
        "n_features_in": int(detector.n_features_in_),
        "feature_names": None if not hasattr(detector, "feature_names_in_")
        else [str(c) for c in detector.feature_names_in_],
        "scaler": None if detector.scaler_ is None else detector.scaler_.to_dict(),
        "channel_scale": None if getattr(detector, "channel_scale_", None) is None
        else [float(v) for v in detector.channel_scale_],
        "step_scale": None if getattr(detector, "step_scale_", None) is None
        else [float(v) for v in detector.step_scale_],
        "reference_scale": None if getattr(detector, "reference_scale_", None) is None
        else [float(v) for v in detector.reference_scale_],
        "level": None if getattr(detector, "level_", None) is None else [float(v) for v in detector.level_],
        "level_range": None if getattr(detector, "level_range_", None) is None
        else np.asarray(detector.level_range_, dtype=float).tolist(),
        "train_range": None if getattr(detector, "train_range_", None) is None
        else np.asarray(detector.train_range_, dtype=float).tolist(),
        "steady": None if getattr(detector, "steady_", None) is None else [bool(v) for v in detector.steady_],
        "level_rows": getattr(detector, "level_rows_", None),
        "channel_tail": None if getattr(detector, "channel_tail_", None) is None
        else [float(v) for v in detector.channel_tail_],
        "adapt_rows": getattr(detector, "adapt_rows_", None),
        "threshold_source": getattr(detector, "threshold_source_", None),
        "score_version": getattr(detector, "score_version_", None),
        "trim": float(getattr(detector, "trim_", 0.0)),
        "isolation": bool(getattr(detector, "isolation_", False)),
        "part_reference": None if getattr(detector, "part_reference_", None) is None
        else [[r.median, r.scale] for r in detector.part_reference_],
        "latent_dim": int(detector.latent_dim_),
        "threshold": {"rule": detector.threshold_rule_.rule, "param": detector.threshold_rule_.param,
                      "value": float(detector.threshold_),
                      "margin": float(getattr(detector, "threshold_margin_", 1.0))},
        "data_fingerprint": detector.fingerprint_,
        "model_id": detector.model_id_,
        "history": detector.history_,
        "interrupted": bool(detector.interrupted_),
        "extra": _jsonable(extra or {}),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        detector.model_.save(tmp / MODEL_FILE)
        np.save(tmp / ERRORS_FILE, np.asarray(detector.fit_errors_, dtype=np.float64), allow_pickle=False)
        if meta["isolation"]:
            np.savez(tmp / ISOLATION_FILE, **detector.forest_.to_arrays())
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_detector(path):
    """Load a model directory written by :func:`save_detector`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    detector : AutoencoderDetector
        Fitted, with the saved threshold; ``saved_meta_`` holds ``aeviz.json``.

    Raises
    ------
    UnsafeModelError
        Not an aeviz model directory, or a model that safe mode refuses
        (a ``Lambda`` layer, an unregistered class).
    """
    import keras

    from . import models  # noqa: F401  (registers aeviz's Keras classes)
    from .detector import AutoencoderDetector
    from .isolation import IsolationTrees, PartReference
    from .thresholds import ThresholdRule
    from .windows import ChannelScaler

    path = Path(path)
    meta = _read_meta(path)
    try:
        model = keras.saving.load_model(path / MODEL_FILE, safe_mode=True, compile=False)
    except Exception as exc:  # keras raises many types here; all mean "refused"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "lambda" in reason.lower() or "safe_mode" in reason.lower():
            reason = "it contains a Lambda layer or Python code, which safe mode refuses"
        raise UnsafeModelError(f"{path / MODEL_FILE}: the model could not be loaded safely: {reason}") from None
    if not isinstance(model, (models.Autoencoder, models.VariationalAutoencoder)):
        raise UnsafeModelError(
            f"{path / MODEL_FILE}: holds a {type(model).__name__}, not an aeviz autoencoder"
        )
    try:
        errors = np.load(path / ERRORS_FILE, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UnsafeModelError(f"{path / ERRORS_FILE}: unreadable ({exc})") from None

    params = dict(meta["params"])
    params.setdefault("level", "absolute")  # saved before the level option: scored as it was
    params.setdefault("series_score", "smooth")  # saved before the option: the score of its version
    params.setdefault("trim", 0.0)  # saved before the options: trained and scored without them
    params.setdefault("isolation", False)
    if params.get("hidden") is not None:
        params["hidden"] = tuple(params["hidden"])
    det = AutoencoderDetector(**params)
    det.model_ = model
    det.latent_dim_ = int(meta.get("latent_dim") or params["latent_dim"])  # saved before "auto": the param
    det.input_kind_ = meta["input_kind"]
    det.item_shape_ = tuple(meta["item_shape"])
    det.n_features_in_ = meta["n_features_in"]
    if meta.get("feature_names") is not None:
        det.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
    det.scaler_ = None if meta["scaler"] is None else ChannelScaler.from_dict(meta["scaler"])
    det.fit_errors_ = errors
    if meta.get("channel_scale") is not None:
        det.channel_scale_ = np.asarray(meta["channel_scale"], dtype=np.float64)
    if meta.get("step_scale") is not None:  # models saved before the stillness test have none
        det.step_scale_ = np.asarray(meta["step_scale"], dtype=np.float64)
    for key, attribute in (("level", "level_"), ("level_range", "level_range_"), ("train_range", "train_range_"),
                           ("reference_scale", "reference_scale_")):
        if meta.get(key) is not None:  # absent in models saved before they existed
            setattr(det, attribute, np.asarray(meta[key], dtype=np.float64))
    if det.input_kind_ == "series":  # saved before score versions: version 1
        det.score_version_ = int(meta.get("score_version") or 1)
        det.adapt_rows_ = int(meta.get("adapt_rows") or 0)
    if meta.get("steady") is not None:  # level="auto" (score version 5)
        det.steady_ = np.asarray(meta["steady"], dtype=bool)
        det.level_rows_ = int(meta["level_rows"])
    if meta.get("channel_tail") is not None:
        det.channel_tail_ = np.asarray(meta["channel_tail"], dtype=np.float64)
    if meta.get("threshold_source") is not None:
        det.threshold_source_ = meta["threshold_source"]
    det.trim_ = float(meta.get("trim") or 0.0)
    det.isolation_ = bool(meta.get("isolation", False))
    det.forest_, det.part_reference_ = None, None
    if det.isolation_:
        try:
            with np.load(path / ISOLATION_FILE, allow_pickle=False) as arrays:
                det.forest_ = IsolationTrees.from_arrays(arrays)
            det.part_reference_ = tuple(PartReference(float(m), float(s)) for m, s in meta["part_reference"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnsafeModelError(f"{path / ISOLATION_FILE}: the model's IsolationForest is unreadable "
                                   f"({exc})") from None
    det.fingerprint_ = meta["data_fingerprint"]
    det.model_id_ = meta["model_id"]
    det.history_ = meta["history"]
    det.interrupted_ = meta["interrupted"]
    rule = ThresholdRule(meta["threshold"]["rule"], meta["threshold"]["param"]).resolved()
    det.threshold_rule_ = rule
    det.threshold_ = float(meta["threshold"]["value"])
    det.threshold_margin_ = float(meta["threshold"].get("margin", 1.0))  # none before it existed
    det.offset_ = -det.threshold_
    det.saved_meta_ = meta
    return det


def _read_meta(path: Path) -> dict:
    if not path.is_dir():
        raise UnsafeModelError(f"{path}: not a model directory (aeviz saves a folder with {META_FILE})")
    meta_file = path / META_FILE
    if not meta_file.is_file() or not (path / MODEL_FILE).is_file():
        raise UnsafeModelError(f"{path}: not an aeviz model directory: {META_FILE} or {MODEL_FILE} is missing")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsafeModelError(f"{meta_file}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UnsafeModelError(f"{meta_file}: not written by aeviz (format is not {FORMAT!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise UnsafeModelError(
            f"{meta_file}: format version {meta.get('format_version')} is newer than this aeviz "
            f"reads ({FORMAT_VERSION}); upgrade aeviz"
        )
    return meta


def detector_to_zip(detector) -> bytes:
    """A zip of the model directory, for a download button."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_detector(detector, Path(tmp) / "model")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in (MODEL_FILE, META_FILE, ERRORS_FILE, ISOLATION_FILE):
                if (folder / name).is_file():  # isolation.npz: only when the score counts the forest
                    zf.write(folder / name, arcname=name)
        return buf.getvalue()


def load_detector_zip(data: bytes, target_dir) -> object:
    """Unpack an uploaded model zip into ``target_dir`` and load it.

    Only the files of a model directory are extracted (the three it always
    holds, and ``isolation.npz`` when present), by their bare names: a member
    named ``../x`` or ``/etc/x`` (zip-slip) is refused, so nothing is ever
    written outside ``target_dir``.
    """
    target = Path(target_dir)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnsafeModelError("the upload is not a zip file") from None
    with zf:
        names = [info.filename for info in zf.infolist() if not info.is_dir()]
        for name in names:
            if Path(name).is_absolute() or ".." in Path(name).parts or name.startswith(("/", "\\")):
                raise UnsafeModelError(f"the zip holds an unsafe path {name!r}; refused")
        wanted = {Path(n).name: n for n in names
                  if Path(n).name in (MODEL_FILE, META_FILE, ERRORS_FILE, ISOLATION_FILE)}
        if not {MODEL_FILE, META_FILE, ERRORS_FILE} <= set(wanted):
            raise UnsafeModelError(
                f"the zip is not an aeviz model: it needs {MODEL_FILE}, {META_FILE} and {ERRORS_FILE}"
            )
        if sum(zf.getinfo(n).file_size for n in wanted.values()) > MAX_ZIP_BYTES:
            raise UnsafeModelError("the zip unpacks to more than 512 MB; refused")
        target.mkdir(parents=True, exist_ok=True)
        for bare, member in wanted.items():
            (target / bare).write_bytes(zf.read(member))
    return load_detector(target)


def _aeviz_version() -> str:
    from . import __version__

    return __version__


def _jsonable(value):
    """Params and extras as plain JSON (tuples -> lists, numpy scalars -> Python)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else list(o)))
