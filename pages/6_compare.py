"""Compare AE vs VAE: an AE and a VAE of the same architecture on the UCI digits, their
latent spaces side by side, quality and detection numbers, reconstructions, and VAE samples."""

import numpy as np
import pandas as pd
import streamlit as st

import app_support as S
from aeviz_core import appstate as A
from aeviz_core import charts, detection_metrics, latent_box, latent_grid, prior_samples

st.title("Compare AE vs VAE")
st.markdown(
    "Both models share the architecture (dense 256-128) and are trained on the same 1,797 UCI digits. "
    "**Why a VAE can collapse into a single blob:** with the *demo* weighting the squared error is "
    "averaged over the 64 pixels, which divides the data term by 64, so the KL term dominates and every "
    "digit is pushed onto the prior; the *elbo* weighting sums it over the pixels, and with beta 0.1 "
    "the classes separate."
)

state = st.session_state
with st.form("compare.form"):
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    weighting = c1.radio("VAE loss weighting", ["demo", "elbo"], key="compare.weighting",
                         help="demo: error averaged over pixels + KL summed. elbo: error summed + beta x KL.")
    beta = c2.select_slider("Beta (KL weight)", [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], value=1.0, key="compare.beta")
    epochs = c3.number_input("Epochs", 1, 200, 30, key="compare.epochs")
    latent_dim = c4.number_input("Latent size", 2, 32, 2, key="compare.latent")
    seed = c5.number_input("Seed", 0, 10_000, 0, key="compare.seed")
    held = c6.selectbox("Anomalous digit", ["none"] + [str(d) for d in range(10)], key="compare.held_out",
                        help="Held out of training and treated as the anomaly, to compare detection.")
    if st.form_submit_button("Train the pair", type="primary"):
        state["compare.settings"] = (weighting, float(beta), int(epochs), int(latent_dim), int(seed),
                                     None if held == "none" else int(held))

settings = state.get("compare.settings")
if settings is None:
    st.info("Choose the VAE's weighting and beta, then press **Train the pair** (a few seconds per 10 "
            "epochs; the pair is cached and shared).  Try *demo* at beta 1 (a blob), then *elbo* at beta 0.1.",
            icon=":material/compare:")
    st.stop()

try:
    with st.spinner("Training the AE and the VAE on the digits..."):
        ae, vae = S.compare_pair(*settings)
except (ValueError, RuntimeError) as exc:
    st.error(f"Training failed: {exc}")
    st.stop()

digits = S.load_sample("digits")
X = digits.X.reshape(digits.n_items, -1)
y = np.asarray(digits.classes)
weighting, beta, epochs, latent_dim, seed, held_out = settings
anomaly = None if held_out is None else (y == str(held_out)).astype(np.int8)
st.caption(f"Pair trained with VAE weighting **{weighting}**, beta **{beta:g}**, {epochs} epochs, "
           f"latent size {latent_dim}, seed {seed}"
           + (f"; digit {held_out} held out as the anomaly." if held_out is not None else "."))

colour = st.radio("Colour both by", ["class", "reconstruction error"], horizontal=True, key="compare.colour")
cols = st.columns(2)
rows = []
recons = {}
for col, (label, det) in zip(cols, [("AE", ae), ("VAE", vae)], strict=True):
    Z = S.latent(det, det.model_id_, digits.key, X)
    errors, _ = S.scores(det, det.model_id_, digits.key, X)
    method = "direct" if Z.shape[1] == 2 else "pca"
    coords = S.projection(Z, f"{det.model_id_}:{digits.key}", method, 2)
    frame = pd.DataFrame({"idx": np.arange(len(Z)), "x": coords[:, 0], "y": coords[:, 1],
                          "class": y.astype(str), "error": errors})
    frame["flag"] = np.where(errors > det.threshold_, "flagged", "normal")
    with col:
        title = f"{label} latent ({'direct' if method == 'direct' else 'PCA of ' + str(Z.shape[1]) + '-D'})"
        st.altair_chart(charts.latent_scatter(frame, "class" if colour == "class" else "error",
                                              selectable=False, height=360, title=title),
                        key=f"compare.scatter.{label}")
    q = S.quality(X, coords, y, f"{det.model_id_}:{digits.key}:{method}", _Z=Z)
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
    recons[label] = S.reconstruction(det, det.model_id_, digits.key, X)

st.markdown("**Quality and detection numbers** (errors in scaled units; the threshold is each model's "
            "99.5th percentile of held-out errors)")
st.dataframe(pd.DataFrame(rows).set_index("model"), column_config={
    "5-NN accuracy": st.column_config.NumberColumn(format="%.3f"),
    "trustworthiness": st.column_config.NumberColumn(format="%.3f"),
    "silhouette": st.column_config.NumberColumn(format="%.3f"),
    "latent mean std": st.column_config.NumberColumn(format="%.4f"),
    "mean error": st.column_config.NumberColumn(format="%.4f"),
    "threshold": st.column_config.NumberColumn(format="%.4f"),
})
if rows[1]["collapsed"]:
    st.warning("The VAE's latent space has collapsed into one blob: switch the weighting to **elbo** "
               "and lower beta (e.g. 0.1).", icon=":material/blur_on:")

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
Zv = S.latent(vae, vae.model_id_, digits.key, X)
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
