"""aeviz_core: autoencoder anomaly exploration for multichannel sensor data.

The package imports nothing heavy at import time: names are resolved lazily
(PEP 562), so ``import aeviz_core`` stays cheap for the CLI and for the
Streamlit pages that need only the data loaders or the review store.
TensorFlow/Keras is imported the first time a model-related name is used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    # data
    "DataError": "data",
    "DataReport": "data",
    "SensorData": "data",
    "DatasetUnavailableError": "data",
    "load_sensor_table": "data",
    "load_uci_digits": "data",
    "write_digits_csv": "data",
    "load_mnist": "data",
    "make_pump_station": "synthetic",
    # windows and scaling
    "ChannelScaler": "windows",
    "sliding_windows": "windows",
    "window_starts": "windows",
    "windows_to_rows": "windows",
    # thresholds
    "ThresholdRule": "thresholds",
    "fit_threshold": "thresholds",
    "THRESHOLD_RULES": "thresholds",
    # models and detector
    "build_model": "models",
    "VariationalAutoencoder": "models",
    "Autoencoder": "models",
    "AutoencoderDetector": "detector",
    "TrainingCallback": "training",
    "TrainingError": "training",
    "EpochInfo": "training",
    "ModelMismatchError": "detector",
    "iter_window_batches": "windows",
    "normal_mask": "scores",
    "SCORE_COLUMNS": "scores",
    "detector_to_zip": "registry",
    "load_detector_zip": "registry",
    "save_detector": "registry",
    "load_detector": "registry",
    "UnsafeModelError": "registry",
    "score_table": "scores",
    # latent projections and metrics
    "PROJECTION_METHODS": "projection",
    "project_latent": "projection",
    "latent_box": "projection",
    "latent_grid": "projection",
    "prior_samples": "projection",
    "EVENT_COLUMNS": "events",
    "knn_accuracy": "metrics",
    "trustworthiness_score": "metrics",
    "silhouette_by_class": "metrics",
    "latent_spread": "metrics",
    "latent_quality": "metrics",
    "detection_metrics": "metrics",
    "best_f1_threshold": "metrics",
    "roc_pr_curves": "metrics",
    "flags_to_events": "events",
    "event_metrics": "events",

    # operators' reviews
    "REVIEW_STATUSES": "reviews",
    "Review": "reviews",
    "ReviewConflictError": "reviews",
    "ReviewStore": "reviews",
    "resolve_db_url": "reviews",
    # who may write (sign-in roles)
    "AccessDenied": "access",
    "Identity": "access",
    "Roles": "access",
    "may": "access",
    "require": "access",
    "role_of": "access",
    "mnist_cached": "data",
    # scoring large archives
    "iter_sensor_chunks": "streaming",
    "score_stream": "streaming",
    "score_archive": "distributed",
    # chart builders (pure: arrays/frames in, alt.Chart out)
    "COLOR_BY": "charts",
    "FLAG_COLORS": "charts",
    "channels_chart": "charts",
    "color_legend": "charts",
    "contributions_chart": "charts",
    "display_sample": "charts",
    "error_histogram": "charts",
    "image_pairs": "charts",
    "label_spans": "charts",
    "latent_cloud": "charts",
    "latent_scatter": "charts",
    "long_series": "charts",
    "loss_chart": "charts",
    "minmax_downsample": "charts",
    "point_colors": "charts",
    "pr_chart": "charts",
    "roc_chart": "charts",
    "score_timeline": "charts",
    "selected_indices": "charts",
    "tile_images": "charts",
    "window_overlay": "charts",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'aeviz_core' has no attribute {name!r}")
    module = importlib.import_module(f".{module_name}", __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
