"""Scene, trainings list, sidebar and kept sessions of the pages' components."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from rasterio.windows import Window

from apptest import new_app, texts
from testdata import SAMPLE_IMAGE, cut


def _own_image_app(image: Path):
    at = new_app()
    at.session_state["source"] = {"kind": "local", "image": str(image), "labels": None, "label_map": None,
                                  "title": image.name}
    return at


def test_the_scene_follows_its_image_written_anew_and_is_cut_again_when_its_folder_went(fake_map, tmp_path):
    """The Data page's scene: cut from the image as it is on disk (a file written anew at the same path is cut
    again, not the old one's scene shown), cut again when its folder was removed (the work folder cleaned), and
    its progress bar gone once it is ready; an image with data everywhere has no note of pixels without data."""
    image = cut(SAMPLE_IMAGE, tmp_path / "own.tif", Window(300, 80, 200, 160))
    at = _own_image_app(image)
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error, texts(at)
    assert not at.get("progress")  # (the bar stands from the start on this page: gone once the scene is cut)
    assert "no image data" not in texts(at)
    first = Path(at.session_state["scene"]["image_path"])
    time.sleep(0.01)
    cut(SAMPLE_IMAGE, image, Window(500, 80, 200, 160))  # another image at the same path
    at.run()
    assert not at.exception and not at.error, texts(at)
    second = Path(at.session_state["scene"]["image_path"])
    assert second.parent != first.parent and second.exists()
    shutil.rmtree(second.parent)  # the scene's folder removed under the session
    at.run()
    assert not at.exception and not at.error, texts(at)
    assert Path(at.session_state["scene"]["image_path"]).exists()


def test_the_sidebar_calls_a_local_images_region_the_whole_image_until_one_is_drawn(fake_map):
    at = new_app()
    at.switch_page("pages/region.py").run()
    assert not at.exception
    assert "Region: whole image" in [c.value for c in at.sidebar.caption]


def _jobs(root: Path, model_path: Path, best: tuple[bool, ...]) -> list[Path]:
    from test_jobs import _finished_status

    made = []
    for i, with_best in enumerate(best):
        job = root / f"job-2026120{i + 1}-080000-aaaaa{i}"
        (job / "train").mkdir(parents=True)
        (job / "job.json").write_text(json.dumps({"kind": "train", "params": {}}))
        (job / "status.json").write_text(json.dumps(_finished_status(started=100.0 + i)))
        if with_best:
            shutil.copy(model_path, job / "train" / "best.keras")
            shutil.copy(model_path.with_suffix(".json"), job / "train" / "best.json")
        made.append(job)
    return made


def test_the_earlier_trainings_list_its_newest_count_the_others_and_say_a_notice_once(fake_map, tiny_model_path,
                                                                                       monkeypatch):
    from pages.components import trainings

    monkeypatch.setattr(trainings, "SHOWN", 2)
    root = Path(os.environ["CROPMAP_WORKDIR"]) / "jobs"
    jobs = _jobs(root, tiny_model_path, (True, True, False))
    at = new_app()
    at.switch_page("pages/model.py").run()
    (listing,) = [e for e in at.expander if e.label.startswith("Earlier trainings (3, ")]
    lines = [m.value for m in listing.markdown if m.value.startswith("Training of")]
    assert len(lines) == 2 and lines[0].endswith(" (no checkpoint kept)")  # the newest, without best.keras
    assert not lines[1].endswith(" (no checkpoint kept)")
    assert "And 1 older ones, not listed." in [c.value for c in listing.caption]
    at.button(key=f"delete_training_{jobs[2].name}").click().run()
    assert not at.exception and not jobs[2].exists()
    assert [s.value for s in at.success if s.value.startswith("Deleted the ")]
    (listing,) = [e for e in at.expander if e.label.startswith("Earlier trainings (2, ")]
    assert not [c.value for c in listing.caption if c.value.startswith("And ")]  # all listed: nothing counted
    at.run()
    assert not [s.value for s in at.success if s.value.startswith("Deleted the ")]  # said once


def test_the_models_used_elsewhere_are_those_of_the_other_recent_sessions():
    """Not this session's own (its model is the one in use, refused as such), not those of sessions idle for
    longer than the limit, and a damaged or misshapen session file is passed over (it broke every Delete)."""
    import streamlit as st

    from pages.components import state

    folder = state.sessions_dir()
    own, other, idle = "a" * 32, "b" * 32, "c" * 32
    for sid, model in ((own, "/m/own.keras"), (other, "/m/other.keras"), (idle, "/m/idle.keras")):
        (folder / f"{sid}.json").write_text(json.dumps({state.MODEL_PATH: model}))
    old = time.time() - 2 * 86400
    os.utime(folder / f"{idle}.json", (old, old))
    (folder / ("d" * 32 + ".json")).write_text("[1, 2]")  # not an object
    (folder / ("e" * 32 + ".json")).write_text("{damaged")
    (folder / ("f" * 32 + ".json")).write_text(json.dumps({state.MODEL_PATH: None}))
    st.session_state[state.SESSION_ID] = own
    try:
        assert state.models_used_elsewhere() == ["/m/other.keras"]
    finally:
        del st.session_state[state.SESSION_ID]
