"""Crop-mapping dashboard: ``streamlit run app.py`` (offline, no account needed).

Page config, sidebar status (sample scene, Earth Engine, region, model) and navigation; each step
is a thin page in ``pages/``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("USE_FOLIUM", "1")  # geemap must use folium; set before its first import

import streamlit as st  # noqa: E402

from pages.components import cached, navigation, sidebar, state, ui  # noqa: E402

st.set_page_config(page_title="Crop mapping", page_icon=":seedling:", layout="wide")
st.html(Path(__file__).parent / "assets" / "style.css")  # laptop and projector widths (takes no space)
# icons hidden from screen readers, which read their names ("check_circle Region OK"; its element hidden by style.css)
st.html(f"<script>{(Path(__file__).parent / 'assets' / 'a11y.js').read_text()}</script>", unsafe_allow_javascript=True)
st.logo(Path(__file__).parent / "assets" / "logo.svg", size="large")  # the app's name above the steps
# the status block, drawn after the page (it shows what the page changed); on a first visit the page
# takes seconds, so it says what it is doing meanwhile (later runs keep the last status until redrawn)
slot = None
try:
    with ui.errors_shown(stop=True):  # every page keeps its files there: without it there is nothing to do
        state.work()
except ui.PageStopped:
    st.stop()
if state.init():  # the session's first run
    slot = st.sidebar.empty()
    with slot.container():  # (an empty holds one element)
        sidebar.waiting()

nav = st.navigation(navigation.pages())
state.on_page(nav.url_path)
try:
    nav.run()
except ui.PageStopped:
    pass  # the page has said why it cannot go on
finally:
    state.save()  # also when the page reruns or stops: a browser reload comes back to this
with (slot or st.sidebar).container():  # after the page, so that it shows what the page just changed
    sidebar.show()
cached.freeze_long_lived()  # once TensorFlow is loaded: reruns no longer sweep its objects
