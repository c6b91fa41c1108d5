"""Compare AE vs VAE: an AE and a VAE of the same architecture, on the current sensor data set
(its windows) or on the UCI digits: their latent spaces side by side, quality and detection
numbers, and (digits) reconstructions and VAE samples."""

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_app import computed as C
from aeviz_app import latent as L
from aeviz_app import session as S
from aeviz_app import training as T
from aeviz_core import charts, detection_metrics, latent_box, latent_grid, prior_samples

st.title("Compare AE vs VAE")
ds = S.dataset()
state = st.session_state
sources = {"digits": "UCI digits"}
if not ds.is_images:
    sources = {"current": f"{ds.name} (sensor windows)", **sources}
if state.get("compare.source") not in sources:
    state["compare.source"] = next(iter(sources))
source = st.segmented_control("Data", list(sources), format_func=sources.get, required=True, key="compare.source")
sensor = source == "current"
if sensor:
    st.markdown(
        f"Both models share the architecture of the Train page's default for a series (dense 256-128 on "
        f"windows of 32 rows, stride 4) and are trained on the same rows of **{ds.name}** (those labelled "
        "anomalous left out). **Why a VAE can collapse into a single blob:** with the *demo* weighting the "
        "squared error is averaged over every value of a window, which divides the data term by their "
        "number, so the KL term dominates and every window is pushed onto the prior; the *elbo* weighting "
        "sums it, and with a small beta the operating states stay apart."
    )
else:
    st.markdown(
        "Both models share the architecture (dense 256-128) and are trained on the same 1,797 UCI digits. "
        "**Why a VAE can collapse into a single blob:** with the *demo* weighting the squared error is "
        "averaged over the 64 pixels, which divides the data term by 64, so the KL term dominates and every "
        "digit is pushed onto the prior; the *elbo* weighting sums it over the pixels, and with beta 0.1 "
        "the classes separate."
    )

with st.form("compare.form"):
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    weighting = c1.radio("VAE loss weighting", ["demo", "elbo"], key="compare.weighting",
                         help="demo: error averaged over the values + KL summed. elbo: error summed + beta x KL.")
    beta = c2.select_slider("Beta (KL weight)", [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], value=1.0, key="compare.beta")
    epochs = c3.number_input("Epochs", 1, 200, 20 if sensor else 30, key=f"compare.epochs.{source}")
    latent_dim = c4.number_input("Latent size", 2, 32, 2, key="compare.latent")
    seed = c5.number_input("Seed", 0, 10_000, 0, key="compare.seed")
    held = "none"
    if not sensor:
        held = c6.selectbox("Anomalous digit", ["none"] + [str(d) for d in range(10)], key="compare.held_out",
                            help="Held out of training and treated as the anomaly, to compare detection.")
    if st.form_submit_button("Train the pair", type="primary"):
        state[f"compare.settings.{source}"] = (weighting, float(beta), int(epochs), int(latent_dim), int(seed),
                                               None if held == "none" else int(held))

settings = state.get(f"compare.settings.{source}")
if settings is None:
    st.info("Choose the VAE's weighting and beta, then press **Train the pair** (the pair is cached and "
            "shared). Try *demo* at beta 1 (a blob), then *elbo* at beta 0.1.", icon=":material/compare:")
    S.stop()

bar = st.empty()


def numbers_table(rows: list[dict]) -> None:
    """The pair's quality and detection numbers, and a warning when the VAE's latent collapsed."""
    three, four = st.column_config.NumberColumn(format="%.3f"), st.column_config.NumberColumn(format="%.4f")
    st.dataframe(pd.DataFrame(rows).set_index("model"), column_config={
        "5-NN accuracy": three, "trustworthiness": three, "silhouette": three,
        "latent mean std": four, "mean error": four, "threshold": four})
    if rows[1]["collapsed"]:
        st.warning("The VAE's latent space has collapsed into one blob: switch the weighting to **elbo** "
                   "and lower beta (e.g. 0.1).", icon=":material/blur_on:")


def progress(label: str, info) -> None:
    """Each epoch of the pair: the AE's first half of the bar, the VAE's second."""
    done = (info.epoch + (info.epochs if label == "VAE" else 0)) / (2 * info.epochs)
    bar.progress(min(done, 1.0), text=f"Training the {label}: epoch {info.epoch}/{info.epochs}, loss {info.loss:.4g}")


try:
    if sensor:
        ae, vae = T.compare_pair_series(ds, *settings[:5], progress=progress)
    else:
        ae, vae = T.compare_pair(*settings, progress=progress)
except (ValueError, RuntimeError) as exc:
    bar.empty()
    st.error(f"Training failed: {exc}")
    S.stop()
bar.empty()
weighting, beta, epochs, latent_dim, seed, held_out = settings
if sensor:
    X = S.scoring_input(ds, ae)
    st.caption(f"Pair trained on **{ds.name}** with VAE weighting **{weighting}**, beta **{beta:g}**, at most "
               f"{epochs} epochs, latent size {latent_dim}, seed {seed}. One point per window of "
               f"{ae.window} rows.")
    labelled = ds.anomaly is not None
    colour = st.radio("Colour both by", ["class", "anomaly score"] if labelled else ["anomaly score"],
                      horizontal=True, key="compare.colour_series")
    cols = st.columns(2)
    rows = []
    for col, (label, det) in zip(cols, [("AE", ae), ("VAE", vae)], strict=True):
        Z = C.latent(det, det.model_id_, ds.key, X)
        scores, _ = C.scores(det, det.model_id_, ds.key, X)
        coded = np.isfinite(Z).all(axis=1)  # a window that touches a gap has no code
        method = "direct" if Z.shape[1] == 2 else "pca"
        coords = C.projection(Z[coded], f"{det.model_id_}:{ds.key}:coded", method, 2)
        frame = L.latent_frame(None, dataset=ds, detector=det, row_errors=np.nan_to_num(scores, nan=0.0),
                               threshold=det.threshold_)[coded].reset_index(drop=True)
        frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
        frame["idx"] = np.arange(len(frame))
        with col:
            title = f"{label} latent ({'direct' if method == 'direct' else 'PCA of ' + str(Z.shape[1]) + '-D'})"
            st.altair_chart(charts.latent_scatter(frame, "class" if colour == "class" else "error",
                                                  selectable=False, height=360, title=title),
                            key=f"compare.series_scatter.{label}")
        inputs = L.cached_inputs(ds, det, det.model_id_, ds.key)[coded]
        q = C.quality(inputs, coords, frame["class"].to_numpy() if "class" in frame else None,
                      f"{det.model_id_}:{ds.key}:{method}", _Z=Z[coded])
        spread = q["spread"] or {}
        scored = np.isfinite(scores)
        rows.append({"model": label, "5-NN accuracy": q["knn_accuracy"], "trustworthiness": q["trustworthiness"],
                     "silhouette": q["silhouette"], "latent mean std": spread.get("mean_std"),
                     "collapsed": bool(spread.get("collapsed")), "threshold": float(det.threshold_),
                     "flagged": f"{float((scores[scored] > det.threshold_).mean()):.1%}"})
        if labelled:
            m = detection_metrics(scores[scored], ds.anomaly[scored], det.threshold_)
            rows[-1].update({"ROC AUC": m["roc_auc"], "PR AUC": m["pr_auc"], "precision": m["precision"],
                             "recall": m["recall"], "F1": m["f1"], "false-alarm rate": m["false_alarm_rate"]})
    st.markdown("**Quality and detection numbers** (anomaly scores of rows; each model's own threshold, "
                f"{ae.threshold_rule_.describe(getattr(ae, 'threshold_margin_', 1.0))}, fitted on its own scores, "
                "never the active model's; the rows the pair trained on are scored too, so detection here "
                "flatters both alike)")
    numbers_table(rows)


def digits_section() -> None:
    """The pair on the digits: latents, numbers, reconstructions and what the VAE generates."""
    digits = S.load_sample("digits")
    X = digits.X.reshape(digits.n_items, -1)
    y = np.asarray(digits.classes)
    weighting, beta, epochs, latent_dim, seed, held_out = settings
    anomaly = None if held_out is None else (y == str(held_out)).astype(np.int8)
    st.caption(f"Pair trained with VAE weighting **{weighting}**, beta **{beta:g}**, {epochs} epochs, "
               f"latent size {latent_dim}, seed {seed}"
               + (f"; digit {held_out} held out as the anomaly." if held_out is not None else "."))

    score_name = S.score_name(ae)  # the pair is fitted alike: one name for both
    colour = st.radio("Colour both by", ["class", score_name], horizontal=True, key="compare.colour",
                      help="The score each item is flagged by: its reconstruction error, and without a digit "
                           "held out (no labels) also how easily an IsolationForest isolates it.")
    cols = st.columns(2)
    rows = []
    recons = {}
    for col, (label, det) in zip(cols, [("AE", ae), ("VAE", vae)], strict=True):
        Z = C.latent(det, det.model_id_, digits.key, X)
        errors, _ = C.scores(det, det.model_id_, digits.key, X)
        method = "direct" if Z.shape[1] == 2 else "pca"
        coords = C.projection(Z, f"{det.model_id_}:{digits.key}", method, 2)
        frame = pd.DataFrame({"idx": np.arange(len(Z)), "x": coords[:, 0], "y": coords[:, 1],
                              "class": y.astype(str), "error": errors})
        frame["flag"] = np.where(errors > det.threshold_, "flagged", "normal")
        with col:
            title = f"{label} latent ({'direct' if method == 'direct' else 'PCA of ' + str(Z.shape[1]) + '-D'})"
            st.altair_chart(charts.latent_scatter(frame, "class" if colour == "class" else "error",
                                                  selectable=False, height=360, title=title),
                            key=f"compare.scatter.{label}")
        q = C.quality(X, coords, y, f"{det.model_id_}:{digits.key}:{method}", _Z=Z)
        spread = q["spread"] or {}
        rows.append({"model": label, "5-NN accuracy": q["knn_accuracy"], "trustworthiness": q["trustworthiness"],
                     "silhouette": q["silhouette"], "latent mean std": spread.get("mean_std"),
                     "collapsed": bool(spread.get("collapsed")), "mean error": float(errors.mean()),
                     "threshold": float(det.threshold_),
                     "flagged": f"{float((errors > det.threshold_).mean()):.1%}"})
        if anomaly is not None:
            m = detection_metrics(errors, anomaly, det.threshold_)
            rows[-1].update({"ROC AUC": m["roc_auc"], "PR AUC": m["pr_auc"], "precision": m["precision"],
                             "recall": m["recall"], "F1": m["f1"], "false-alarm rate": m["false_alarm_rate"]})
        recons[label] = C.reconstruction(det, det.model_id_, digits.key, X)

    st.markdown("**Quality and detection numbers** (errors in scaled units; each model's own threshold, "
                "its rule fitted on its own held-out errors, never the active model's)")
    numbers_table(rows)

    st.markdown("**Reconstructions**: originals (top), AE (middle), VAE (bottom)")
    pick = np.array([np.flatnonzero(y == str(c))[0] for c in sorted(set(y), key=int)] * 2)[:16]
    pick[10:] = np.arange(10, 10 + len(pick[10:]))
    images = np.concatenate([digits.X[pick], recons["AE"][pick].reshape(-1, 8, 8),
                             recons["VAE"][pick].reshape(-1, 8, 8)])
    st.image(charts.tile_images(np.clip(images, 0, None), ncols=len(pick)), clamp=True, width=min(900, 50 * len(pick)))

    st.markdown("**What the VAE generates**")
    mode = st.radio("Decode", ["latent grid", "prior samples"], horizontal=True, key="compare.decode",
                    help="A grid over the box that holds the VAE's latent means (2-D latents only), or "
                         "draws from its N(0, I) prior.")
    Zv = C.latent(vae, vae.model_id_, digits.key, X)
    if mode == "latent grid" and Zv.shape[1] == 2:
        lo, hi = latent_box(Zv)
        n = 12
        decoded = vae.decode(latent_grid(lo[:2], hi[:2], n=n))
        st.image(charts.tile_images(np.clip(decoded.reshape(-1, 8, 8), 0, None), ncols=n), clamp=True,
                 caption=f"Decoded {n}x{n} grid: latent axis 0 left to right, axis 1 bottom to top",
                 width=min(700, 40 * n))
    else:
        if mode == "latent grid":
            st.caption("A grid needs a 2-D latent; showing prior samples instead.")
        decoded = vae.decode(prior_samples(48, Zv.shape[1], random_state=seed))
        st.image(charts.tile_images(np.clip(decoded.reshape(-1, 8, 8), 0, None), ncols=16), clamp=True,
                 caption="48 samples decoded from the prior", width=min(800, 40 * 16))


if not sensor:  # (the sensor branch above draws its own; no st.stop, so the shared sidebar is drawn)
    digits_section()
