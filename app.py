"""Crop-mapping dashboard: ``streamlit run app.py`` (offline, no account needed).

Page config, sidebar status (sample scene, Earth Engine, region, model) and navigation; each step
is a thin page in ``pages/``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("USE_FOLIUM", "1")  # geemap must use folium; set before its first import

import streamlit as st  # noqa: E402

from pages.components import sidebar, state  # noqa: E402

st.set_page_config(page_title="Crop mapping", page_icon=":seedling:", layout="wide")
state.init()

PAGES = [
    st.Page("pages/region.py", title="1. Region", icon=":material/map:", default=True, url_path="region"),
    st.Page("pages/data.py", title="2. Data", icon=":material/layers:", url_path="data"),
    st.Page("pages/model.py", title="3. Model", icon=":material/neurology:", url_path="model"),
    st.Page("pages/predict.py", title="4. Predict", icon=":material/grass:", url_path="predict"),
    st.Page("pages/quality.py", title="5. Quality", icon=":material/fact_check:", url_path="quality"),
    st.Page("pages/earthengine.py", title="6. Earth Engine", icon=":material/cloud_sync:", url_path="earthengine"),
]
nav = st.navigation(PAGES)
try:
    nav.run()
finally:
    sidebar.show()  # after the page, so that it shows what the page just changed (also after st.stop)
