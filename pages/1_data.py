"""Data: choose a sample or upload a table, preview it, see the channels and labelled anomalies.

With sign-in on, uploading a table (it replaces the session's data) needs a reviewer: the check is
made where the upload replaces the data, with ``st.user`` as it is then.
"""

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_app import session as S
from aeviz_app import sign_in as auth
from aeviz_app.review_views import as_text
from aeviz_core import DataError, DatasetUnavailableError, charts, mnist_cached
from aeviz_core.access import AccessDenied

st.title("Data")

ds = S.dataset()
mnist_ok = mnist_cached()
choices = ["pump", "digits", "mnist", "upload"]
labels = {**S.SAMPLES, "upload": "Upload a CSV or Parquet file"}
if not mnist_ok:
    labels["mnist"] += " (not cached: needs a network the first time)"
if "data.source" not in st.session_state:
    current = ds.source.split(":")[1] if ds.source.startswith("sample:") else "upload"
    st.session_state["data.source"] = current
source = st.radio("Data", choices, format_func=labels.get, key="data.source", horizontal=True)

limit_mb = int(st.get_option("server.maxUploadSize"))
if source == "upload" and not auth.allowed("upload_data"):
    auth.read_only("uploading data", action="upload_data", key="data.sign_in")
    st.caption("Until then the app keeps the current data; the bundled samples stay open to everyone.")
elif source == "upload":
    up = st.file_uploader("Sensor table (CSV, TSV or Parquet): one column per channel, optional time "
                          "and label columns (anomaly, fault_type...)",
                          type=["csv", "tsv", "txt", "parquet", "pq"], key="data.upload")
    st.caption(f"Files up to **{limit_mb} MB** (`server.maxUploadSize` in `.streamlit/config.toml`): a CSV takes "
               "several times its size in memory once read. Larger archives are scored with `aeviz score` "
               "(docs/cli.md).")
    with st.expander("Reading options"):
        sep_name = st.selectbox("Separator", ["detect", "comma", "semicolon", "tab"], key="data.sep")
        time_col = st.text_input("Time column (empty: detect)", key="data.time_col").strip()
        drop = S.column_list(st.text_input("Columns to ignore (comma-separated)", key="data.drop"))
        label_text = st.text_input("Label columns (comma-separated; empty: detect anomaly, label, "
                                   "fault_type...)", key="data.labels")
    if up is not None:  # kept: the uploader empties when the page is left, the reading options stay
        st.session_state["data.last_upload"] = (up.name, up.getvalue())
    last = st.session_state.get("data.last_upload")
    if up is None and last is not None and ds.source.startswith(f"upload:{last[0]}:"):
        st.caption(f"Reading options apply to **{last[0]}**, the file uploaded last; upload another to replace it.")
    else:
        last = None if up is None else last
    if last is not None:
        name, content = last
        sep = {"detect": None, "comma": ",", "semicolon": ";", "tab": "\t"}[sep_name]
        label_cols = S.column_list(label_text) or None
        try:
            loaded = S.load_upload(content, name, sep, time_col or None, drop, label_cols)
        except DataError as exc:
            st.error(f"**{name}** could not be used: {exc}", icon=":material/error:")
            st.caption(f"Fix the file, or use *Reading options* to ignore a column or read it as a label. "
                       f"The app keeps the current data ({ds.name}).")
        else:
            if loaded.source != ds.source:
                try:  # asked where the data is replaced, with st.user as it is now
                    auth.writer("upload_data")
                except AccessDenied as exc:
                    st.warning(f"The data was not replaced: {as_text(str(exc))}.", icon=":material/lock:")
                else:
                    S.set_dataset(loaded)
                    ds = loaded
    elif not ds.source.startswith("upload:"):
        st.info("Choose a file to upload; until then the app keeps the current data.")
elif ds.source != f"sample:{source}":
    try:
        ds = S.load_sample(source)
        S.set_dataset(ds)
    except DatasetUnavailableError as exc:
        st.error(str(exc), icon=":material/cloud_off:")

ds = S.dataset()
st.subheader(ds.name)

if ds.is_images:
    c1, c2, c3 = st.columns(3)
    c1.metric("Images", f"{ds.n_items:,}")
    c2.metric("Size", "x".join(str(s) for s in ds.image_shape))
    c3.metric("Classes", len(np.unique(ds.classes)))
    st.caption("The first 60 images (darker = higher intensity), their digit below each row's caption.")
    show = ds.X[:60]
    st.image(charts.tile_images(show, ncols=20), clamp=True, width=min(900, 45 * 20))
    st.caption("Digits: " + " ".join(str(c) for c in ds.classes[:60]))
    counts = pd.Series(ds.classes).astype(str).value_counts()
    counts = counts.reindex(sorted(counts.index, key=lambda c: (len(c), c)))
    st.markdown("**Images per class**")
    st.dataframe(pd.DataFrame([counts.to_numpy()], columns=list(counts.index)), hide_index=True)
else:
    data = ds.sensor
    report = data.report
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows", f"{ds.n_items:,}")
    c2.metric("Channels", len(ds.channel_names))
    c3.metric("Labelled anomalous rows", "—" if ds.anomaly is None else f"{int(ds.anomaly.sum()):,}")
    c4.metric("Interpolated cells", f"{sum(report.interpolated.values()):,}")
    read_as = [f"time: **{data.time.name}**" if data.time is not None and data.time.name else "time: none (rows)",
               "labels: " + (", ".join(f"**{c}**" for c in data.labels.columns) if len(data.labels.columns)
                             else "none"),
               f"{len(ds.channel_names)} channel(s): " + ", ".join(ds.channel_names[:12])
               + (" …" if len(ds.channel_names) > 12 else "")]
    st.caption("Read as " + " · ".join(read_as) + ".")
    if report.warnings:
        st.warning("\n".join(f"- {line}" for line in report.warnings), icon=":material/report:")

    st.markdown("**Channels over time**" + (" (labelled anomalies shaded)" if ds.anomaly is not None else ""))
    x = data.time.to_numpy() if data.time is not None else np.arange(ds.n_items)
    x_name = "time" if data.time is not None else "row"
    per_channel = st.select_slider("Points per channel", [500, 1000, 2000, 4000], value=1000,
                                   key="data.points",
                                   help="Long series are thinned per bucket to their minimum and maximum, "
                                        "so spikes stay visible.")
    long = charts.long_series(x, data.channels, per_channel, x_name=x_name)
    spans = charts.label_spans(ds.anomaly, x) if ds.anomaly is not None else None
    st.altair_chart(charts.channels_chart(long, spans, x=x_name), key="data.channels")

    st.markdown("**Preview** (first 500 rows)")
    preview = data.channels.head(500).copy()
    if data.time is not None:
        preview.insert(0, "time", data.time.head(500))
    for column in data.labels.columns:
        preview[column] = data.labels[column].head(500)
    st.dataframe(preview, height=260)
