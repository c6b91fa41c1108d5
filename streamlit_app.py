"""aeviz: explore anomalies in multichannel sensor data (and digit images) with autoencoders.

Run with ``streamlit run streamlit_app.py``: the app opens on the bundled pump
station sample. This file is the router: page config, the shared sidebar and
``st.navigation`` over the page files in ``pages/`` (a new page is one more
``st.Page`` line in ``PAGES``). The session keys the pages share are
documented in ``aeviz_app/session.py``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st


def pages() -> list:
    """The app's pages, in menu order."""
    return [
        st.Page("pages/1_data.py", title="Data", icon=":material/table_chart:", default=True),
        st.Page("pages/2_train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/3_latent_explorer.py", title="Latent explorer", icon=":material/scatter_plot:"),
        st.Page("pages/4_anomalies.py", title="Anomalies", icon=":material/warning:"),
        st.Page("pages/5_review.py", title="Review", icon=":material/fact_check:"),
        st.Page("pages/6_compare.py", title="Compare AE vs VAE", icon=":material/compare:"),
    ]


def sidebar(box) -> None:
    """Who is signed in (with sign-in on) and what the session holds (data, models, a running
    training), drawn into ``box``."""
    from aeviz_app import session as S
    from aeviz_app import sign_in as auth

    auth.account(box)
    ds = st.session_state[S.DATASET]
    with box:
        st.caption("Current data")
        what = f"{ds.n_items:,} images" if ds.is_images else f"{ds.n_items:,} rows x {len(ds.channel_names)} channels"
        st.markdown(f"**{ds.name}**  \n{what}")
        models = st.session_state[S.MODELS]
        fitting = S.compatible_models(ds)
        st.caption("Models")
        st.markdown(f"{len(models)} in this session, {len(fitting)} fit this data"
                    + (f"  \nactive: **{st.session_state[S.ACTIVE_MODEL]}**" if st.session_state[S.ACTIVE_MODEL] else ""))
        if st.session_state[S.TRAIN_JOB] is not None:
            st.fragment(training_progress, run_every=1.0)()


def training_progress() -> None:
    """The running training's progress, redrawn every second on every page; when it ends, the model
    joins the session, a notice says so and the page reruns to show it."""
    from aeviz_app import session as S

    job = st.session_state[S.TRAIN_JOB]
    if job is None:
        return
    if job.done:
        S.collect_training()  # says how it ended (S.TRAINED_NOTICE), shown by the rerun
        st.rerun()
    done = len(job.history)
    st.progress(min(done / max(job.epochs, 1), 1.0), text=f"training {job.name}: epoch {done}/{job.epochs}")


def run() -> None:
    st.set_page_config(page_title="aeviz", page_icon=":material/sensors:", layout="wide")
    from aeviz_app import session as S

    S.setup()
    notice = st.session_state.pop(S.TRAINED_NOTICE, None)
    if notice:
        st.toast(notice, icon=":material/model_training:")
    page = st.navigation(pages())
    asked = st.session_state.pop(S.DEEP_LINK, None)
    if asked:  # the page this session first asked for by its address, now that the router runs
        st.switch_page(asked)
    box = st.sidebar.container()
    routed = S.ROUTED.set(True)
    try:
        page.run()
    except S.PageStop:  # a page that ends early (S.stop) keeps the sidebar; st.stop() would drop it
        pass
    finally:  # after the page, so a data set or model chosen in this run shows at once
        S.ROUTED.reset(routed)
        sidebar(box)


if __name__ == "__main__":
    run()
