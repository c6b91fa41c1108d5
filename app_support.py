"""Streamlit glue the pages share: cached loaders and computations, session set-up,
model pickers. ``aeviz_core`` imports no Streamlit, so its cache wrappers live here.

Caching rules
-------------
* ``st.cache_resource`` for models (shared by every session: never mutated;
  pages call ``detector.with_threshold``), ``st.cache_data`` for frames and
  arrays (each caller gets a copy).
* Streamlit hashes a large frame or array from a sample, so every function
  that takes one takes it as an unhashed ``_argument`` together with an
  explicit version key (a model's ``model_id_``, a data set's ``key``): the
  key, not the array, decides what is cached, and a new model or new data can
  never be answered from a stale entry.
"""

from __future__ import annotations

import contextvars
import io
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_core import appstate as A
from aeviz_core.access import AccessDenied, Identity, Roles, may, require, role_of
from aeviz_core.appstate import Dataset, ModelEntry
from aeviz_core.events import event_key, order_events
from aeviz_core.review_views import event_channel_errors

ROOT = Path(__file__).resolve().parent
SAMPLE_DIR = ROOT / "sample_data"

#: sample id -> label in the Data page's picker
SAMPLES = {
    "pump": "Pump station (7 sensors, 43,200 rows at 1 Hz)",
    "digits": "UCI digits (1,797 images, 8x8)",
    "mnist": "MNIST (10,000 images, 28x28)",
}
TRAIN_PAGE = "pages/2_train.py"


# --------------------------------------------------------------------------- who may write


def roles() -> Roles:
    """The roles of the app's secrets, read at each call: sign-in is on when they hold ``[auth]``.
    A malformed ``[aeviz]`` role list raises ``ValueError`` (every write is then refused)."""
    return Roles.from_secrets(st.secrets)


def signed_in() -> Identity | None:
    """Who ``st.user`` says is signed in now (None: nobody), read at each call, never from the
    session state."""
    return Identity.from_user(st.user.to_dict())


def writer(action: str, typed: str = "") -> Identity:
    """The identity that does ``action`` (a key of :data:`aeviz_core.access.ACTIONS`) now: with
    sign-in on, the signed-in user of ``st.user`` with a role that allows it, whatever name was
    typed; without, the name ``typed`` (unverified, maybe empty).

    Every write of the pages calls this at the moment it writes, so that a session whose widgets
    were drawn for someone else, or a crafted session state, writes nothing.

    Raises
    ------
    AccessDenied
        When the signed-in user (or nobody) may not; a malformed role list refuses every write.
    """
    try:
        rules = roles()
    except ValueError as exc:
        raise AccessDenied(action, "viewer", None, reason=str(exc)) from exc
    if not rules.sign_in:
        return Identity.typed(typed)
    who = signed_in()
    require(who, rules, action)
    return who


def allowed(action: str) -> bool:
    """Whether this session may do ``action`` now (for drawing its widgets; the write itself
    asks :func:`writer`)."""
    try:
        return may(signed_in(), roles(), action)
    except ValueError:
        return False


def sign_in_on() -> bool:
    """Whether the secrets configure sign-in (``[auth]``)."""
    try:
        return roles().sign_in
    except ValueError:
        return True  # a malformed role list: sign-in is meant, and nobody may write


def providers() -> list[str]:
    """The named providers of ``[auth]`` (``[auth.google]``...), or ``[None]`` for the one
    configured in ``[auth]`` itself."""
    try:
        auth = st.secrets.get("auth") or {}
    except FileNotFoundError:
        return [None]
    named = [name for name, value in auth.items() if hasattr(value, "keys")]
    return named or [None]


def sign_in_buttons(box=st, *, key: str) -> None:
    """A sign-in button per provider (``st.login``)."""
    for provider in providers():
        box.button("Sign in" + (f" with {provider.capitalize()}" if provider else ""), key=f"{key}.{provider}",
                   on_click=st.login, args=() if provider is None else (provider,), icon=":material/login:")


def read_only(why: str, *, action: str, key: str) -> None:
    """The one line a page shows where its buttons would be, for a session that may not do
    ``action``: why they are absent and, signed out, a sign-in button."""
    from aeviz_core.access import ACTIONS
    from aeviz_core.review_views import as_text

    needed = ACTIONS[action]
    try:
        roles()
    except ValueError as exc:
        st.error(f"Read-only: {why} is refused to everyone while the role lists in the app's secrets are "
                 f"malformed ({as_text(str(exc))}).", icon=":material/lock:")
        return
    who = signed_in()
    if who is None:
        st.info(f"Read-only: {why} needs a signed-in {needed}. You can look at everything here.",
                icon=":material/lock:")
        sign_in_buttons(key=key)
    else:
        st.info(f"Read-only: {why} needs the {needed} role, which {as_text(who.email)} does not have here "
                f"(an admin adds it to `[aeviz] {needed}s` in the app's secrets). You can look at everything here.",
                icon=":material/lock:")


def account(box) -> None:
    """The sidebar's sign-in line (with sign-in on only): who is signed in, their role and a
    sign-out button, or a sign-in button."""
    from aeviz_core.review_views import as_text

    if not sign_in_on():
        return
    who = signed_in()
    with box:
        if who is None:
            st.caption("Not signed in: the pages are read-only.")
            sign_in_buttons(key="app.sign_in")
            return
        try:
            role = role_of(who, roles())
        except ValueError as exc:
            st.error(f"The role lists in the secrets are malformed: {exc}", icon=":material/error:")
            role = "viewer"
        st.caption(f"Signed in as **{as_text(who.email)}** ({role}"
                   + ("" if who.verified else ", email unverified by the provider") + ")")
        st.button("Sign out", key="app.sign_out", on_click=st.logout, icon=":material/logout:")


# --------------------------------------------------------------------------- data


class PageStop(Exception):
    """Raised by :func:`stop`: the page ends here and the router still draws the shared sidebar."""


#: True while the router (``streamlit_app.py``) runs a page: it catches :class:`PageStop`
ROUTED = contextvars.ContextVar("aeviz_routed", default=False)


def stop():
    """End the page here, like ``st.stop()``, but, under the router, leave the rest of the run to
    it: it draws the shared sidebar after every page, which ``st.stop()`` would drop. A page run
    on its own (``AppTest.switch_page``) stops with ``st.stop()``."""
    if ROUTED.get():
        raise PageStop
    st.stop()


@st.cache_data(show_spinner="Loading the sample...", max_entries=4)
def load_sample(sample: str) -> Dataset:
    """A bundled sample as a :class:`Dataset` (``pump``, ``digits``, ``mnist``)."""
    from aeviz_core import load_mnist, load_sensor_table, load_uci_digits

    if sample == "pump":
        data = load_sensor_table(SAMPLE_DIR / "pump_station.csv")
        ds = Dataset.from_sensor(data, "pump_station.csv")
    elif sample == "digits":
        X, y = load_uci_digits()
        ds = Dataset.from_images(X.reshape(-1, 8, 8), y, "UCI digits")
    elif sample == "mnist":
        X, y = load_mnist(10000)
        ds = Dataset.from_images(X, y, "MNIST (10,000)")
    else:
        raise ValueError(f"sample must be one of {sorted(SAMPLES)}, got {sample!r}")
    ds.source = f"sample:{sample}"
    return ds


@st.cache_data(show_spinner="Reading the file...", max_entries=4)
def load_upload(content: bytes, name: str, sep: str | None = None, time_col: str | None = None,
                drop: tuple = (), label_cols: tuple | None = None) -> Dataset:
    """An uploaded CSV/Parquet table as a :class:`Dataset`; raises ``DataError``."""
    from aeviz_core import load_sensor_table

    buffer = io.BytesIO(content)
    buffer.name = name
    data = load_sensor_table(buffer, sep=sep, time_col=time_col or None, drop=list(drop),
                             label_cols=None if label_cols is None else list(label_cols))
    ds = Dataset.from_sensor(data, name)
    ds.source = f"upload:{name}:{ds.key}"
    return ds


def column_list(text: str) -> tuple:
    """``"a, b"`` -> ``("a", "b")`` (names typed in a text box)."""
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


def pump_dataset() -> Dataset:
    return load_sample("pump")


# --------------------------------------------------------------------------- session


def setup() -> None:
    """Set the documented session keys once and collect a finished training."""
    A.init_session(st.session_state, pump_dataset)
    collect_training()


#: the page a session asked for by its own address before the router ever ran (a bookmark)
DEEP_LINK = "app.deep_link"


def dataset() -> Dataset:
    """The session's data set. A page opened by its own address (a bookmark, a shared link)
    before the router ran in the session runs without it, and has none yet: the router runs
    first and then opens that page (:data:`DEEP_LINK`)."""
    if A.DATASET not in st.session_state:
        page = Path(sys._getframe(1).f_globals.get("__file__") or "")
        st.session_state[DEEP_LINK] = f"pages/{page.name}" if page.parent.name == "pages" else None
        st.switch_page("streamlit_app.py")
    return st.session_state[A.DATASET]


def set_dataset(ds: Dataset) -> None:
    """Make ``ds`` the session's data set (models stay; pages show those that fit)."""
    st.session_state[A.DATASET] = ds


def collect_training() -> ModelEntry | None:
    """Move a finished background training into ``models``; returns the new entry."""
    job = st.session_state.get(A.TRAIN_JOB)
    if job is None or not job.done:
        return None
    st.session_state[A.TRAIN_JOB] = None
    if job.error:
        st.session_state["train.last_error"] = job.error
        return None
    entry = job.entry()
    add_model(entry)
    st.session_state["train.last_done"] = entry.name
    return entry


def add_model(entry: ModelEntry) -> None:
    models = st.session_state[A.MODELS]
    entry.name = A.unique_name(entry.name, [n for n, e in models.items() if e is not entry])
    models[entry.name] = entry
    st.session_state[A.ACTIVE_MODEL] = entry.name


def compatible_models(ds: Dataset) -> dict[str, ModelEntry]:
    """Models of the session that can score ``ds`` (same channels, item shape)."""
    out = {}
    for name, entry in st.session_state[A.MODELS].items():
        if model_problem(entry, ds) is None:
            out[name] = entry
    return out


def model_problem(entry: ModelEntry, ds: Dataset) -> str | None:
    """Why ``entry`` cannot score ``ds`` (one line), or None when it can."""
    det = entry.detector
    if ds.is_images:
        if det.input_kind_ == "images":
            ok = tuple(det.item_shape_[:2]) == ds.image_shape
        else:
            ok = det.input_kind_ == "table" and det.n_features_in_ == int(np.prod(ds.image_shape))
        return None if ok else f"{entry.name} was trained on other items than {ds.name}'s images"
    if det.input_kind_ not in ("series", "table"):
        return f"{entry.name} scores {det.input_kind_}, not a sensor table"
    problem = det.mismatch((ds.n_items, len(ds.channel_names)), ds.channel_names)
    return None if problem is None else f"{entry.name} cannot score {ds.name}: {problem}"


def need_model(ds: Dataset, *, what: str) -> None:
    """The message a page shows when no model fits the current data set."""
    st.info(f"No model fits **{ds.name}** yet: train one (or load a saved one) to see {what}.",
            icon=":material/model_training:")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/arrow_forward:")


def models_or_stop(ds: Dataset, *, what: str) -> dict[str, ModelEntry]:
    """The models that fit ``ds``; with none, the :func:`need_model` message and :func:`stop`."""
    models = compatible_models(ds)
    if not models:
        need_model(ds, what=what)
        stop()
    return models


def pick_model(models: dict[str, ModelEntry], *, key: str) -> ModelEntry:
    """A model selectbox that follows and sets ``active_model``."""
    names = list(models)
    active = st.session_state.get(A.ACTIVE_MODEL)
    index = names.index(active) if active in names else len(names) - 1
    name = st.selectbox("Model", names, index=index, key=key,
                        format_func=lambda n: f"{n}  ({models[n].detector.model}, latent {models[n].detector.latent_dim_})")
    st.session_state[A.ACTIVE_MODEL] = name
    return models[name]


def thresholded(entry: ModelEntry):
    """The entry's detector with the threshold chosen on the Anomalies page (a copy)."""
    choice = st.session_state[A.THRESHOLDS].get(entry.name)
    if choice is None:
        return entry.detector
    try:
        return entry.detector.with_threshold(*choice)
    except ValueError:
        return entry.detector


def threshold_source(entry: ModelEntry, ds: Dataset) -> str:
    """Where the threshold in use comes from, for a caption: the model's own, or set on the
    Anomalies page (and on which data, when it was another)."""
    if entry.name not in st.session_state[A.THRESHOLDS]:
        return "the model's own"
    where = st.session_state.setdefault(A.THRESHOLD_DATA, {}).get(entry.name)
    return "set on the Anomalies page" + (f" for {where}" if where and where != ds.name else "")


def merge_gap(entry: ModelEntry) -> int:
    """The events' merge gap of this model in this session: what the Anomalies or Review page set,
    else the model's own (``event_gap``, saved with it; what ``aeviz score --events`` uses)."""
    return int(st.session_state[A.MERGE_GAPS].get(entry.name, entry.detector.event_gap_rows()))


def merge_gap_input(box, entry: ModelEntry, *, key: str) -> int:
    """One merge-gap setting per model, shown on the Anomalies and Review pages alike, so both
    list the same events."""
    def keep():
        st.session_state[A.MERGE_GAPS][entry.name] = int(st.session_state[key])

    st.session_state[key] = merge_gap(entry)
    return int(box.number_input("Merge flagged runs at most this many rows apart", 0, 10_000, key=key,
                                on_change=keep,
                                help="Runs of flagged rows closer than this are one event, on the Anomalies "
                                     "and Review pages alike (default: the model's event_gap, as the CLI)."))


# --------------------------------------------------------------------------- cached computations


@st.cache_data(show_spinner="Scoring...", max_entries=16)
def scores(_det, model_id: str, data_key: str, _X) -> tuple[np.ndarray, np.ndarray]:
    """``(errors, channel_errors)`` of the data (per row for a series), keyed by model and data."""
    errors, channel = _det.score_parts(_X)
    return errors.astype(np.float64), channel.astype(np.float32)


@st.cache_data(show_spinner="Encoding...", max_entries=16)
def latent(_det, model_id: str, data_key: str, _X) -> np.ndarray:
    """The latent points (a series: one per window at the model's stride)."""
    return _det.transform(_X)


@st.cache_data(show_spinner=False, max_entries=8)
def latent_inputs(_ds: Dataset, _det, model_id: str, data_key: str) -> np.ndarray:
    """What each latent point encodes (:func:`aeviz_core.appstate.latent_inputs`), per model and data."""
    return A.latent_inputs(_ds, _det)


#: events the review queue blames at most (highest first); the rest are blamed when opened
MAX_BLAMED = 50
#: events the Anomalies page's table blames at each threshold (it redraws at every move: the
#: threshold rerun stays well under a second at 100,000 rows); the others when selected
TABLE_BLAMED = 5


@st.cache_resource(show_spinner="Preparing the series for blame...", max_entries=2)
def _blame_context(_det, model_id: str, data_key: str, _X) -> dict:
    """:func:`aeviz_core.explain.prepared` per model and data (read only, shared), so a new
    threshold pays only for the events it has not blamed yet."""
    from aeviz_core.explain import prepared

    return prepared(_det, _X)


@st.cache_data(show_spinner="Finding the sensor to blame...", max_entries=4096)
def _span_blame(_det, model_id: str, data_key: str, _X, start: int, end: int) -> np.ndarray:
    """One event's blame, one cached entry per span (the tables' and the selected event's alike):
    moving the threshold re-blames only the events whose span changed."""
    from aeviz_core.explain import blame_events

    return blame_events(_det, _X, [(start, end)], prepared=_blame_context(_det, model_id, data_key, _X))[0]


def blamed_events(det, data_key: str, X, events: pd.DataFrame, names, limit: int = MAX_BLAMED) -> pd.DataFrame:
    """``events`` with ``blamed_channel`` and ``blame_share`` (:func:`aeviz_core.events.with_blame`):
    the detector's blame, the one answer to "which sensor" wherever an event is listed, for the
    ``limit`` highest events (the others stay empty until opened); each span's blame is computed
    once per model and data. ``kind`` and ``shift`` (:func:`aeviz_core.events.lasting_change`) say
    which events are lasting changes, on every event."""
    from aeviz_core.events import lasting_change, order_events, with_blame

    shares = np.full((len(events), len(names)), np.nan)
    if getattr(det, "input_kind_", None) == "series" and len(events):
        chosen = order_events(events).head(int(limit))
        where = {span: i for i, span in enumerate(zip(events["start"].astype(int), events["end"].astype(int)))}
        for a, b in zip(chosen["start"].astype(int), chosen["end"].astype(int), strict=True):
            shares[where[(a, b)]] = _span_blame(det, det.model_id_, data_key, X, a, b)
    out = with_blame(events, shares, names)
    values = np.asarray(X, dtype=np.float64) if getattr(det, "input_kind_", None) == "series" else None
    changes = [lasting_change(det, values, int(a), int(b), [str(c) for c in names]) if values is not None
               else ("transient", "") for a, b in zip(events["start"], events["end"], strict=True)]
    out["kind"] = [kind for kind, _ in changes]
    out["shift"] = [shift for _, shift in changes]
    return out


def event_blame(det, data_key: str, X, start: int, end: int, channel_errors) -> np.ndarray:
    """What each channel contributed to the event at rows ``start..end`` (inclusive): the
    detector's reconstruction-based blame (shares) for a series model, the summed channel
    errors otherwise."""
    if getattr(det, "input_kind_", None) == "series":
        return _span_blame(det, det.model_id_, data_key, X, int(start), int(end))
    return event_channel_errors(channel_errors, start, end)


@st.cache_data(show_spinner="Comparing the events...", max_entries=16)
def event_signatures(_det, model_id: str, data_key: str, _X, spans: tuple) -> pd.DataFrame:
    """:func:`aeviz_core.explain.event_signatures` of the events at ``spans`` (a tuple of
    (start, end)), once per model, data and event list."""
    from aeviz_core.explain import event_signatures as signatures

    return signatures(_det, _X, spans)


@st.cache_data(show_spinner=False, max_entries=32)
def _trust_notes(_det, model_id: str, data_key: str, threshold: float, _channels, _errors, _times) -> list[str]:
    from aeviz_core.trust import trust_notes

    return trust_notes(_det, _channels, _errors, times=_times)


def show_trust_notes(det, ds: Dataset, X, errors, *, headline: str | None = None) -> list[str]:
    """Say, above a page's figures, when its flags cannot be trusted (see :mod:`aeviz_core.trust`):
    far more flagged than the threshold promises, channels beyond their training range (which,
    from when, what to do), one event over most of the file. ``det`` carries the threshold in use.

    One box, the notes as a list; with ``headline`` (the page's "N of M rows flagged"), the verdict
    joins the headline (a count of flags, read alone, would say all clear), else the headline is
    shown as it is."""
    # sensor rows are checked channel by channel; images by the share flagged and the longest run only
    channels = np.empty((len(errors), 0)) if ds.is_images else X
    times = None if ds.is_images else ds.time
    notes = _trust_notes(det, det.model_id_, ds.key, float(det.threshold_), channels, errors, times)
    if not notes:
        if headline:
            st.markdown(headline)
        return notes
    listed = "\n".join(f"- {note[0].upper() + note[1:]}." for note in notes)
    lead = (f"{headline} **But these flags cannot be trusted here:**" if headline
            else "**Can these flags be trusted?** Not quite:")
    st.warning(f"{lead}\n{listed}", icon="⚠️")
    return notes


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


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def load_saved_model(path: str, mtime: float):
    """A model directory, loaded once per (path, modification time) and shared."""
    from aeviz_core import load_detector

    return load_detector(path)


@st.cache_resource(show_spinner=False)
def _pairs() -> dict:
    """The Compare page's trained pairs, by settings, shared by every session (at most
    ``PAIRS_KEPT``, the oldest dropped). Trained outside a cached function, so that the page can
    draw their progress, then kept here and never changed."""
    return {}


PAIRS_KEPT = 4


def _kept_pair(key: tuple, train):
    pairs = _pairs()
    if key not in pairs:
        pair = train()
        pairs[key] = pair
        while len(pairs) > PAIRS_KEPT:
            pairs.pop(next(iter(pairs)))
    return pairs[key]


def compare_pair(weighting: str, beta: float, epochs: int, latent_dim: int, seed: int,
                 held_out: int | None = None, progress=None):
    """An AE and a VAE trained on the UCI digits with the same architecture, shared
    by all sessions (the Compare page's pair); ``held_out`` digit is left out of training.
    ``progress(model_label, EpochInfo)`` hears each epoch while they train."""
    def train():
        from aeviz_core import load_uci_digits

        X, digit = load_uci_digits()
        y = None if held_out is None else (digit == held_out).astype(np.int8)
        common = {"latent_dim": latent_dim, "hidden": (256, 128), "epochs": epochs, "batch_size": 64,
                  "scaling": "global", "random_state": seed, "patience": 8}
        return _train_pair(common, X, y, weighting, beta, progress)

    return _kept_pair(("digits", weighting, beta, epochs, latent_dim, seed, held_out), train)


def compare_pair_series(ds: Dataset, weighting: str, beta: float, epochs: int, latent_dim: int, seed: int,
                        progress=None):
    """An AE and a VAE of the same architecture on the windows of a sensor data set, with the
    Train page's defaults for a series (windows of 32 rows, stride 4, the rows labelled anomalous
    left out), shared by all sessions."""
    def train():
        settings = A.default_settings(ds)
        X, y = A.training_data(ds, settings)
        common = {**settings.detector_params(ds), "latent_dim": latent_dim, "epochs": epochs,
                  "random_state": seed}
        for own in ("model", "beta", "vae_weighting", "neighbor_weight"):  # the pair sets these itself
            common.pop(own, None)
        return _train_pair(common, X, y, weighting, beta, progress)

    return _kept_pair((ds.key, weighting, beta, epochs, latent_dim, seed), train)


def _train_pair(common: dict, X, y, weighting: str, beta: float, progress):
    from aeviz_core import AutoencoderDetector

    def hook(label):
        return None if progress is None else (lambda info: progress(label, info))

    # a plain AE: the pair differs only in the variational part and its KL term
    ae = AutoencoderDetector(model="ae", neighbor_weight=0.0, **common).fit(X, anomalous=y, progress=hook("AE"))
    vae = AutoencoderDetector(model="vae", beta=beta, vae_weighting=weighting, **common).fit(
        X, anomalous=y, progress=hook("VAE"))
    return ae, vae


# --------------------------------------------------------------------------- model directory


def saved_models(model_dir: str) -> list[Path]:
    """Model directories (holding ``aeviz.json``) directly under ``model_dir``."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / "aeviz.json").is_file())


def safe_dir_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip())
    return keep.strip("-.") or "model"


def upload_dir(model_dir: str) -> str:
    root = Path(model_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="upload-", dir=root)
    except OSError:
        return tempfile.mkdtemp(prefix="aeviz-upload-")


def fmt(value, digits: int = 3) -> str:
    """A number for a metric tile: NaN as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def events_for_display(events: pd.DataFrame) -> pd.DataFrame:
    """The events table in :func:`~aeviz_core.events.order_events` order, with readable columns.
    Each event is named by its identity, its span (:func:`~aeviz_core.events.event_key`, as in the
    CLI's events file and the review store), which a move of the threshold leaves alone unless
    it moves the event's first or last row."""
    cols = ["event_id", "kind", "peak_score", "start", "end", "n_rows", "start_time", "duration_s", "blamed_channel",
            "blame_share", "shift"]
    ordered = order_events(events)
    ordered = ordered.assign(event_id=[event_key(a, b) for a, b in zip(ordered["start"], ordered["end"], strict=True)])
    out = ordered[[c for c in cols if c in ordered.columns]].reset_index(drop=True)
    if "start_time" in out and out["start_time"].isna().all():
        out = out.drop(columns=["start_time", "duration_s"], errors="ignore")
    return out
