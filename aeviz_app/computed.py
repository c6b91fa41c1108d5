"""The pages' cached computations over a model and a data set: scores, latent points,
reconstructions, projections, layout quality, ROC/PR curves. Each takes its arrays unhashed
(``_argument``) with the explicit keys that decide what is cached (see :mod:`aeviz_app.session`)."""

from __future__ import annotations

import numpy as np
import streamlit as st


@st.cache_data(show_spinner="Scoring...", max_entries=16)
def scores(_det, model_id: str, data_key: str, _X) -> tuple[np.ndarray, np.ndarray]:
    """``(errors, channel_errors)`` of the data (per row for a series), keyed by model and data."""
    errors, channel = _det.score_parts(_X)
    return errors.astype(np.float64), channel.astype(np.float32)


@st.cache_data(show_spinner="Encoding...", max_entries=16)
def latent(_det, model_id: str, data_key: str, _X) -> np.ndarray:
    """The latent points (a series: one per window at the model's stride)."""
    return _det.transform(_X)


@st.cache_data(show_spinner="Reconstructing...", max_entries=8)
def reconstruction(_det, model_id: str, data_key: str, _X) -> np.ndarray:
    """Reconstructions in the data's units and shape."""
    return np.asarray(_det.reconstruct(_X), dtype=np.float32)


@st.cache_data(show_spinner="Projecting the latent space...", max_entries=32)
def projection(_Z, z_key: str, method: str, n_components: int) -> np.ndarray:
    """2-D/3-D coordinates of the latent points ``_Z`` identified by ``z_key``."""
    from aeviz_core import project_latent

    kwargs = {}
    if method == "tsne":
        kwargs["max_iter"] = 500
    return project_latent(_Z, method, n_components=n_components, random_state=0, **kwargs)


@st.cache_data(show_spinner="Measuring the layout...", max_entries=32)
def quality(_X_high, _coords, _labels, key: str, _Z=None) -> dict:
    """k-NN accuracy, trustworthiness, silhouette and spread of a layout (subsampled)."""
    from aeviz_core import latent_quality

    return latent_quality(_X_high, _coords, _labels, Z=_Z, max_samples=1500)


@st.cache_data(show_spinner=False, max_entries=16)
def curves(_scores, _labels, key: str):
    """ROC and PR curves (threshold-free: computed once per model and data)."""
    from aeviz_core import roc_pr_curves

    return roc_pr_curves(_scores, _labels)


@st.cache_data(show_spinner=False, max_entries=16)
def aucs(_scores, _labels, key: str) -> dict:
    """ROC AUC and PR AUC (threshold-free: once per model and data)."""
    from aeviz_core import detection_metrics

    m = detection_metrics(_scores, _labels, float(np.max(_scores)))
    return {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"]}


@st.cache_data(show_spinner=False, max_entries=16)
def best_f1(_scores, _labels, key: str):
    from aeviz_core import best_f1_threshold

    return best_f1_threshold(_scores, _labels)
