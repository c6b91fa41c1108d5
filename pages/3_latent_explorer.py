"""Latent explorer: the latent scatter coloured by class, error, time or flag; select points
to see them beside their reconstructions; the layout's quality numbers below."""

import hashlib

import numpy as np
import streamlit as st

from aeviz_app import computed as C
from aeviz_app import event_view as E
from aeviz_app import latent as L
from aeviz_app import session as S
from aeviz_core import charts

st.title("Latent explorer")

ds = S.dataset()
models = S.models_or_stop(ds, what="its latent space")

entry = S.pick_model(models, key="latent.model")
det = entry.detector  # computations use the shared model; the threshold comes from the session
current = S.thresholded(entry)
X = S.scoring_input(ds, det)
Z = C.latent(det, det.model_id_, ds.key, X)
scores, _ = C.scores(det, det.model_id_, ds.key, X)
series = not ds.is_images and det.window is not None
st.caption(f"{len(Z):,} latent points of size {Z.shape[1]}"
           + (f": one per window of {det.window} rows, every {det.stride} rows" if series else ": one per item")
           + f". Threshold {current.threshold_:.4g} "
             f"({current.threshold_rule_.describe(getattr(current, 'threshold_margin_', 1.0))}, "
           + f"{S.threshold_source(entry, ds)}).")
E.show_trust_notes(current, ds, X, scores)


@st.fragment
def explorer():
    latent_dim = Z.shape[1]
    methods = (["direct"] if latent_dim in (2, 3) else []) + ["pca", "tsne", "umap"]
    names = {"direct": "direct (the latent itself)", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    c1, c2, c3, c4 = st.columns([2, 1, 2, 2])
    method = c1.selectbox("Projection", methods, format_func=names.get, key="latent.method")
    dims_allowed = [2, 3] if latent_dim >= 3 else [2]
    if method == "direct":
        dims_allowed = [latent_dim]
    n_comp = c2.radio("Axes", dims_allowed, horizontal=True, key=f"latent.dims.{method}")
    base = L.latent_frame(None, dataset=ds, detector=det, row_errors=scores, threshold=current.threshold_)
    coded = np.isfinite(Z).all(axis=1) & np.isfinite(L.cached_inputs(ds, det, det.model_id_, ds.key)).all(axis=1)
    if not coded.all():
        base = base[coded[base["idx"].to_numpy()]].reset_index(drop=True)
        st.caption(f"{int((~coded).sum()):,} window(s) touching a gap in the data have no latent point.")
    if "time" not in base:
        base["time"] = base["row"]
    # a series' points carry the anomaly score (not its reconstruction error); for items the two are one unless
    # the score also counts an IsolationForest
    score_name = S.score_name(det)
    colour_options = (["class"] if "class" in base else []) + [score_name, "time", "flag"]
    colour = c3.selectbox("Colour by", colour_options, key="latent.colour")
    max_points = c4.select_slider("Points drawn at most", [2000, 5000, 10000, 20000, 50000], value=20000,
                                  key="latent.max_points",
                                  help="Above this, a random sample is drawn that always keeps every "
                                       "flagged point.")
    flagged = (base["flag"] == "flagged").to_numpy()
    if method in ("tsne", "umap") and len(base) > 3000:
        fit = charts.display_sample(base, 3000, keep_mask=flagged, seed=0)
        st.caption(f"{names[method]} runs on a sample of {len(fit):,} points (every flagged one kept).")
    else:
        fit = base
    rows = fit["idx"].to_numpy()
    rows_key = hashlib.sha1(rows.tobytes()).hexdigest()[:12]
    z_key = f"{det.model_id_}:{ds.key}:{rows_key}"
    try:
        coords = C.projection(Z[rows], z_key, method, int(n_comp))
    except (ValueError, ImportError) as exc:
        st.error(f"Cannot project the latent space with {names[method]}: {exc}")
        return
    frame = fit.copy()
    for j, axis in enumerate("xyz"[: coords.shape[1]]):
        frame[axis] = coords[:, j]
    shown = charts.display_sample(frame, int(max_points), keep_mask=(frame["flag"] == "flagged").to_numpy())
    if len(shown) < len(frame):
        st.caption(f"Drawing {len(shown):,} of {len(frame):,} points (all {int(flagged.sum()):,} flagged kept).")
    dims = ("x", "y", "z")[: coords.shape[1]]
    colour_key = {"class": "class", score_name: "error", "time": "time", "flag": "flag"}[colour]
    cloud = len(dims) == 3 and st.radio(
        "3-D view", ["axis pairs", "rotating cloud"], horizontal=True, key="latent.view3d",
        help="Axis pairs: three linked 2-D views (click or drag a box). Rotating cloud: the 3-D points "
             "in WebGL (drag to rotate, scroll to zoom, click a point to select it).") == "rotating cloud"
    if cloud:
        state = st.pydeck_chart(charts.latent_cloud(shown, colour_key), on_select="rerun",
                                selection_mode="single-object", key="latent.cloud", height=480)
        legend = charts.color_legend(shown[colour_key], colour_key)
        st.markdown(" ".join(f'<span style="color:{c}">&#9679;</span> {label}' for label, c in legend),
                    unsafe_allow_html=True)
        rows = (state.selection.get("indices", {}).get("latent", []) if state is not None else [])
        selection = {"pick": [{"idx": int(shown["idx"].iloc[r])} for r in rows if 0 <= r < len(shown)]}
    else:
        chart = charts.latent_scatter(shown, colour_key, dims=dims)
        event = st.altair_chart(chart, on_select="rerun", selection_mode=["pick", "box"], key="latent.chart")
        selection = event.selection if event else None
        st.caption("Click a point, or drag a box, to see those items; double-click to clear the click.")

    # ---------------------------------------------------------------- quality numbers
    labels = frame["class"].to_numpy() if "class" in frame else None
    q = C.quality(L.cached_inputs(ds, det, det.model_id_, ds.key)[rows], coords, labels, f"{z_key}:{method}:{n_comp}", _Z=Z[rows])
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("5-NN accuracy", S.fmt(q["knn_accuracy"]),
              help="How often a point's 5 nearest neighbours in this layout share its class (cross-validated).")
    c2.metric("Trustworthiness", S.fmt(q["trustworthiness"]),
              help="Whether neighbours in the layout were neighbours in the data (1 = always).")
    c3.metric("Silhouette", S.fmt(q["silhouette"]))
    spread = q.get("spread") or {}
    c4.metric("Latent spread (mean std)", S.fmt(spread.get("mean_std"), 4),
              help="Near 0 = every item sits on the same spot: a collapsed latent space.")
    if spread.get("collapsed"):
        st.warning(f"The latent space has collapsed ({spread.get('n_collapsed_dims')} dimension(s) with "
                   "almost no spread): every item is encoded alike.")

    # ---------------------------------------------------------------- selection
    picked = charts.selected_indices(selection, shown)
    if picked.size == 0:
        return
    st.markdown(f"**{picked.size:,} selected point(s)**")
    info = base.set_index("idx").loc[picked].reset_index()
    st.dataframe(info.drop(columns=[c for c in ("x", "y", "z") if c in info]).sort_values(
        "error", ascending=False).head(200), hide_index=True, height=180)
    recon = C.reconstruction(det, det.model_id_, ds.key, X)
    if ds.is_images:
        top = picked[:24]
        st.image(charts.image_pairs(ds.X[top], recon[top].reshape(ds.X[top].shape), ncols=12),
                 caption="Selected items (odd rows) above their reconstructions (even rows)",
                 clamp=True, width=min(900, 60 * min(12, len(top))))
    else:
        starts = info.sort_values("error", ascending=False)["row"].to_numpy()
        which = st.selectbox("Window", starts[:50], key="latent.window",
                             format_func=lambda r: f"rows {r}-{r + (det.window or 1) - 1}")
        w = det.window or 1
        lo, hi = max(0, int(which) - w), min(ds.n_items, int(which) + 2 * w)
        x = ds.time.to_numpy() if ds.time is not None else np.arange(ds.n_items)
        frame = E.event_overlay_frame(x, ds.sensor.channels, recon, np.arange(lo, hi),
                                x_name="time" if ds.time is not None else "row")
        st.caption(f"The window (rows {which}-{which + w - 1}) with {w} rows of context on each side: "
                   "actual (solid) and reconstruction (dashed) per channel.")
        st.altair_chart(charts.window_overlay(frame, x="time" if ds.time is not None else "row"),
                        key="latent.overlay")


explorer()
