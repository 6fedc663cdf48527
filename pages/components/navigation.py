"""The dashboard's pages, and the guard that keeps every page inside app.py's navigation.

Streamlit still knows its older multipage mode, chosen when a ``pages/`` folder sits beside the main
script: until the first run that calls ``st.navigation``, a request for a page's URL (a bookmark, or
a browser reload after the server restarted) runs that page's file by itself, without app.py's page
config, session-state defaults and sidebar. :func:`require_app` notices this and sends the browser
to the same page through the real navigation.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parent.parent.parent / "app.py"


def pages() -> list:
    """The steps, in order (``st.Page`` objects for ``st.navigation``), numbered and without icons:
    a page's icon becomes the favicon, and a material icon's is fetched from fonts.gstatic.com (which
    an offline browser cannot reach), an emoji's needs an emoji font (boxes on many Linux systems)."""
    return [
        st.Page("pages/region.py", title="1. Region", default=True, url_path="region"),
        st.Page("pages/data.py", title="2. Data", url_path="data"),
        st.Page("pages/model.py", title="3. Model", url_path="model"),
        st.Page("pages/predict.py", title="4. Predict", url_path="predict"),
        st.Page("pages/quality.py", title="5. Quality", url_path="quality"),
        st.Page("pages/earthengine.py", title="6. Earth Engine", url_path="earthengine"),
    ]


def inside_app() -> bool:
    """Whether this run started in app.py (which is then a caller of the running page)."""
    frame = inspect.currentframe()
    while frame is not None:  # a plain walk up the calling frames (inspect.stack reads every source file)
        name = frame.f_code.co_filename
        if name.endswith(APP.name) and Path(name).resolve() == APP:
            return True
        frame = frame.f_back
    return False


def require_app(page_file: str) -> None:
    """Call first in every page: when the page runs by itself (see the module docstring), register
    the navigation and switch to the same page through it; otherwise do nothing."""
    if inside_app():
        return
    from pages.components import state

    state.keep_url_session()  # a reload of the page's link (?session=...) comes back to its session
    st.navigation(pages(), position="hidden")  # leaves the old multipage mode for this server
    st.switch_page("pages/" + Path(page_file).name)
