"""Train: a form for the model and its settings; training runs in the background with a
live loss curve and a Stop button; trained models are listed, saved, loaded and downloaded.

Training and loading a saved model change this session only. With sign-in on, what reaches
other sessions or the server's disk needs an admin: saving into the model directory, choosing
another directory, and uploading a model zip (loaded with ``safe_mode``); each is checked where it
writes, with ``st.user`` as it is then.
"""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from aeviz_app import session as S
from aeviz_app import sign_in as auth
from aeviz_app import training as T
from aeviz_app.review_views import as_text
from aeviz_core import charts
from aeviz_core.access import AccessDenied
from aeviz_core.settings import MODEL_KINDS, SERIES_SCORES

st.title("Train")

ds = S.dataset()
state = st.session_state
defaults = T.default_settings(ds)
KINDS = MODEL_KINDS
job = state[S.TRAIN_JOB]

st.caption(f"Training on **{ds.name}**. Training starts only when you press *Train*; "
           "it runs in the background, so you can stop it or look at other pages meanwhile.")

# outside the form, so that choosing the kind shows only that kind's fields
kind = st.selectbox("Model kind", list(KINDS), format_func=KINDS.get, key="train.model")
vae = kind.endswith("vae")
with st.form("train.form"):
    c1, c2, c3 = st.columns(3)
    c1.markdown(f"**{KINDS[kind]}**")
    latent_dim = c2.number_input("Latent size", 1, 256, defaults.latent_dim, key="train.latent")
    hidden_text = c3.text_input("Layers (units, or conv filters)", ", ".join(map(str, defaults.hidden)),
                                key="train.hidden",
                                help="Dense units per layer for AE/VAE (e.g. 256, 128); filters per "
                                     "stride-2 block for the conv models (e.g. 32, 64).")
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs (at most)", 1, 500, defaults.epochs, key="train.epochs")
    batch = c2.number_input("Batch size", 8, 4096, defaults.batch_size, key="train.batch")
    seed = c3.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="train.seed")
    lr = c4.number_input("Learning rate", 1e-5, 1.0, defaults.learning_rate, format="%.4f", key="train.lr")
    c1, c2, c3 = st.columns(3)
    early = c1.checkbox("Early stopping", defaults.early_stopping, key="train.early",
                        help="Stop when the validation loss has not improved for *patience* epochs "
                             "and keep the best weights. Off by default for images: a 2-D latent "
                             "trained with the neighbour term keeps improving its layout after the "
                             "loss levels off.")
    patience = c2.number_input("Patience", 1, 100, defaults.patience, key="train.patience")
    beta, weighting = defaults.beta, defaults.vae_weighting
    if vae:
        c1, c2 = st.columns(2)
        beta = c1.number_input("Beta (KL weight)", 0.0, 100.0, 1.0, step=0.1, key="train.beta")
        weighting = c2.selectbox("Loss weighting", ["elbo", "demo"], key="train.weighting",
                                 help="elbo sums the squared error over an item's features; demo averages "
                                      "it, which lets the KL term win and collapses the latent space.")
    if ds.is_images:
        classes = sorted({str(c) for c in ds.classes}, key=lambda c: (len(c), c))
        normal = st.multiselect("Normal classes (the others are held out as anomalies)", classes,
                                default=classes, key="train.normal")
        window = stride = None
        series_score, adapt_after = defaults.series_score, ""
        start, end = 0, ds.n_items
    else:
        c1, c2, c3 = st.columns(3)
        window = c1.number_input("Window (rows)", 2, 4096, defaults.window, key="train.window")
        stride = c2.number_input("Stride (rows between training windows)", 1, 4096, defaults.stride,
                                 key="train.stride")
        series_score = c3.selectbox(
            "Score", SERIES_SCORES, index=SERIES_SCORES.index(defaults.series_score), key="train.score",
            help="lasting (default): steady channels judged on their level, wandering ones on their movement "
                 "and relations; a change that lasts stays flagged until you decide it is the new normal. "
                 "smooth and regime: the scores of models saved before it (regime adopts a lasting change "
                 "after a few hundred rows).")
        adapt_after = st.text_input(
            "New normal after", defaults.adapt_after, key="train.adapt", placeholder="never",
            help="A change that lasts this long becomes the new normal: a duration such as 6h or 1d (the "
                 "file needs a time column) or a number of rows. Empty: never; a lasting change stays "
                 "flagged, as a shift, until an operator decides it on the Review page.")
        start, end = st.slider("Training period (rows; only rows labelled normal train)", 0, ds.n_items,
                               (defaults.train_start, defaults.train_end), key="train.period")
        normal = None
    submitted = st.form_submit_button("Train", type="primary", disabled=job is not None)

if submitted:
    try:
        settings = T.TrainSettings(
            model=kind, latent_dim=int(latent_dim), hidden=T.parse_hidden(hidden_text),
            window=None if window is None else int(window), stride=1 if stride is None else int(stride),
            epochs=int(epochs), batch_size=int(batch), learning_rate=float(lr), beta=float(beta),
            vae_weighting=weighting, early_stopping=bool(early), patience=int(patience), seed=int(seed),
            train_start=int(start), train_end=int(end), series_score=series_score, adapt_after=adapt_after,
            normal_classes=tuple(normal) if normal is not None and len(normal) < len(set(ds.classes)) else None,
        )
        if ds.is_images and normal is not None and not normal:
            raise ValueError("choose at least one normal class")
        from aeviz_core import AutoencoderDetector

        settings.check(ds)
        detector = AutoencoderDetector(**settings.detector_params(ds))
        X, y = T.training_data(ds, settings)
        name = S.unique_name(f"{kind}-{len(state[S.MODELS]) + 1}", state[S.MODELS])
        job = T.TrainingJob(detector, X, y, name=name, dataset=ds, settings=settings).start()
        state[S.TRAIN_JOB] = job
        state.pop("train.last_error", None)
    except ValueError as exc:
        st.error(f"Cannot train with these settings: {exc}", icon=":material/error:")

if job is not None:
    live = st.empty()  # the live view goes away when training ends; the summary replaces it
    panel = live.container()
    panel.subheader(f"Training {job.name}")
    panel.button("Stop training", on_click=job.stop.set, key="train.stop", icon=":material/stop_circle:",
                 help="Stops after the current batch; the model keeps the weights reached so far.")
    bar = panel.progress(0.0)
    curve = panel.empty()

    def show():
        done = len(job.history)
        last = job.history[-1] if job.history else None
        text = f"epoch {done}/{job.epochs}" + (f", loss {last['loss']:.4g}" if last else "")
        text += "  (stopping...)" if job.stop.is_set() else ""
        bar.progress(min(done / job.epochs, 1.0), text=text)
        if job.history:
            curve.altair_chart(charts.loss_chart(job.history))

    while not job.done:
        show()
        time.sleep(0.3)
    live.empty()
    S.collect_training()
    job = None

if state.get("train.last_error"):
    st.error(f"Training failed: {state['train.last_error']}", icon=":material/error:")

done_name = state.pop("train.last_done", None)
if done_name and done_name in state[S.MODELS]:
    entry = state[S.MODELS][done_name]
    det = entry.detector
    hist = det.history_
    st.success(f"**{entry.name}** trained: {len(hist['loss'])} epochs"
               + (" (stopped by you)" if det.interrupted_ else "")
               + f", final loss {hist['loss'][-1]:.4g}"
               + (f", validation loss {hist['val_loss'][-1]:.4g}" if hist.get("val_loss") else
                  ", no validation rows")
               + f", threshold {det.threshold_:.4g} "
                 f"({det.threshold_rule_.describe(getattr(det, 'threshold_margin_', 1.0))}).",
               icon=":material/check_circle:")
    origin = S.threshold_line(entry, ds)
    if origin:
        st.caption(origin[0].upper() + origin[1:] + ".")
    for note in T.training_notices(det):
        st.warning(note, icon=":material/warning:")
    if S.stopped_early(det):
        st.caption(f"Early stopping ended the fit at epoch {len(hist['loss'])} of {det.training_plan().epochs} (the "
                   "validation loss had stopped improving); the best epoch's weights are kept.")
    st.altair_chart(charts.loss_chart(hist), key="train.final_loss")

# ------------------------------------------------------------------ models of the session
st.subheader("Models")
models = state[S.MODELS]
if not models:
    st.caption("No model yet in this session.")
else:
    table = pd.DataFrame([e.summary() for e in models.values()])
    st.dataframe(table, hide_index=True)
    name = st.selectbox("Model", list(models), index=len(models) - 1, key="train.pick")
    entry = models[name]
    c1, c2 = st.columns(2)
    with c1:
        if not auth.allowed("save_model"):
            st.caption("Saving into the shared model directory needs an admin; *Download as zip* keeps a copy.")
        elif st.button("Save to the model directory", key="train.save", icon=":material/save:"):
            from aeviz_core import save_detector

            target = Path(state[S.MODEL_DIR]) / S.safe_dir_name(entry.name)
            try:
                auth.writer("save_model")
                save_detector(entry.detector, target, extra=entry.save_extra())
                st.success(f"Saved to `{target}`")
            except AccessDenied as exc:
                st.warning(f"Not saved: {as_text(str(exc))}.", icon=":material/lock:")
            except OSError as exc:
                st.error(f"Could not save to {target}: {exc.strerror or exc}")
    with c2:
        from aeviz_core import detector_to_zip

        st.download_button("Download as zip", data=lambda: detector_to_zip(entry.detector),
                           file_name=f"{S.safe_dir_name(entry.name)}.zip", mime="application/zip",
                           key="train.download", icon=":material/download:")

# ------------------------------------------------------------------ load
st.subheader("Load a model")
admin = auth.allowed("upload_model")
typed_dir = st.text_input("Model directory", state[S.MODEL_DIR], key="train.model_dir", disabled=not admin,
                          help=None if admin else "Set by the app (choosing another needs an admin).")
if typed_dir != state[S.MODEL_DIR]:
    try:  # another folder of the server: asked with st.user as it is now
        auth.writer("model_dir")
        state[S.MODEL_DIR] = typed_dir
    except AccessDenied as exc:
        st.warning(f"The model directory stays `{state[S.MODEL_DIR]}`: {as_text(str(exc))}.", icon=":material/lock:")
saved = S.saved_models(state[S.MODEL_DIR])
c1, c2 = st.columns(2)
with c1:
    if saved:
        pick = st.selectbox("Saved models", saved, format_func=lambda p: p.name, key="train.saved")
        if st.button("Load", key="train.load", icon=":material/upload_file:"):
            from aeviz_core import UnsafeModelError

            try:
                det = S.load_saved_model(str(pick), (pick / "aeviz.json").stat().st_mtime)
            except (UnsafeModelError, OSError, ValueError) as exc:
                st.error(f"Could not load {pick.name}: {exc}")
            else:
                S.add_model(S.ModelEntry.from_saved(det, pick.name))
                st.rerun()
    else:
        st.caption("No saved model in this directory yet.")
with c2:
    if not admin:
        auth.read_only("uploading a model", action="upload_model", key="train.sign_in")
        up = None
    else:
        up = st.file_uploader("Or upload a model zip", type=["zip"], key="train.upload_zip",
                              help="Loaded in safe mode: a zip that holds code is refused.")
    if up is not None and st.button("Load the zip", key="train.load_zip"):
        from aeviz_core import UnsafeModelError, load_detector_zip

        try:
            auth.writer("upload_model")
            det = load_detector_zip(up.getvalue(), S.upload_dir(state[S.MODEL_DIR]))
        except AccessDenied as exc:
            st.warning(f"The model was not loaded: {as_text(str(exc))}.", icon=":material/lock:")
        except (UnsafeModelError, OSError, ValueError) as exc:
            st.error(f"Could not load {as_text(up.name)}: {as_text(str(exc))}")
        else:
            S.add_model(S.ModelEntry.from_saved(det, Path(up.name).stem))
            st.rerun()
