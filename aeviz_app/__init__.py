"""The Streamlit app's code, by feature; each page (``pages/``) is layout over these modules.

==================  ==========================================================================
module              feature
==================  ==========================================================================
``session``         the session's keys, its data set and models, loaders, pickers, page stops
``sign_in``         who may write: the signed-in user and roles, read at each write
``training``        the Train form's settings, background training and refit jobs, Compare's pairs
``computed``        cached scores, latent points, reconstructions, projections, curves
``latent``          the Latent explorer's frames: what each point encodes, how it is coloured
``event_view``      one event wherever it is shown: blame, kind, trust notes, the event's detail
``threshold_view``  the Anomalies page's threshold controls and detection figures
``review_views``    the Review desk's pure helpers: queue tables, labels, advice, people's text
``review_desk``     the Review desk's flows: decisions, comments, similar events, teaching
==================  ==========================================================================

``aeviz_core`` is the library under it (the CLI and Dask workers use it without this package);
nothing here is imported by it.
"""
