"""Two sessions (two tabs, or two people on one server) on the same Earth Engine recipe and region share
one scene folder (pages.components.scene.scene_dir): what one session fetches must not take away what the
other one shows and predicted."""

from __future__ import annotations

import os

from apptest import new_app
from tests.ee.test_ee_pages import ee_configured, other_errors  # noqa: F401  (the fixture)


def test_a_second_session_on_the_same_region_keeps_the_first_sessions_prediction(ee_configured, tiny_model_path):
    """Two people on the Camana preset: the second one's first visit to the Predict page downloaded the region
    again into the same folder and renamed the new files over the first one's, so the first session's scene
    changed its modification time, which is part of every prediction key (cached.prediction_key): the first
    session's map vanished ("Press Predict to map crops in this region", the model run again for minutes)
    though neither its region nor its model had changed."""
    _, calls = ee_configured

    def tab():
        at = new_app()
        at.session_state["model_path"] = str(tiny_model_path)
        at.session_state["source"] = {"kind": "earthengine", "preset": "camana"}
        at.switch_page("pages/predict.py").run()
        assert not at.exception and not other_errors(at)
        return at

    first = tab()
    [b for b in first.button if b.label == "Predict"][0].click().run()
    assert not first.exception and not other_errors(first) and first.session_state["prediction"] is not None
    image = first.session_state["scene"]["image_path"]
    stamp, requests = os.stat(image).st_mtime_ns, len(calls["pixels"])
    second = tab()  # another person opens the preset's region: its folder holds the complete scene already
    assert second.session_state["scene"]["image_path"] == image
    first.run()  # the first tab, run again (a click on its map), still shows its map
    assert not first.exception and not other_errors(first)
    assert not [i.value for i in first.info if i.value.startswith("Press Predict")], [i.value for i in first.info]
    assert os.stat(image).st_mtime_ns == stamp  # its scene's files are those it predicted on
    assert len(calls["pixels"]) == requests  # (and the same region was not downloaded again)
