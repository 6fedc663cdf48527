"""The Earth Engine page without Earth Engine, and Earth Engine exports (local or gs://) as the source.

Driven with AppTest; the helpers are in apptest.py.
"""

from __future__ import annotations

from pathlib import Path

from apptest import new_app, OWN_IMAGE, by_label


def test_earth_engine_page_without_earth_engine_says_why(fake_map, monkeypatch):
    from core.ee import auth

    monkeypatch.setattr(auth, "status", lambda *a, **k: auth.EEStatus(False, None, "none", "no credentials found; set X"))
    at = new_app()
    at.switch_page("pages/earthengine.py")
    at.run()
    assert not at.exception
    assert any("Earth Engine is not available: no credentials found" in i.value for i in at.info)
    assert not at.tabs  # nothing else is drawn


def test_earth_engine_image_export_as_the_source(fake_map, tmp_path):
    """An image export (TFRecord patches + mixer) given by path becomes a georeferenced source."""
    from core.patches import write_image_export
    from core.raster import ImageReader

    with ImageReader(OWN_IMAGE, {"R": 1, "G": 2, "B": 3, "NIR": 4}) as reader:
        mixer = write_image_export(tmp_path / "exp" / "austria", reader, patch=128, kernel=32)
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value(str(tmp_path / "missing-mixer.json"))
    [b for b in at.button if b.label == "Use this export"][0].click()
    at.run()
    assert any("Mixer file not found" in e.value for e in at.error)
    assert at.session_state["source"] == {"kind": "sample"}  # unchanged
    at.text_input(key="upload_mixer").set_value(str(mixer))
    [b for b in at.button if b.label == "Use this export"][0].click()
    at.run()
    assert not at.exception and not at.error
    src = at.session_state["source"]
    assert src["kind"] == "local" and src["title"] == "austria-mixer.json (Earth Engine image export)"
    assert "L.CRS.Simple" not in fake_map.maps[-1][0].get_root().render()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Area"].endswith(" ha")
    # the assembled export, a session's source, is marked used on its pages (core.workdir.prune_exports)
    import os
    import time

    assembled = Path(src["image"]).parent
    os.utime(assembled, (time.time() - 40 * 86400,) * 2)
    at.run()
    assert time.time() - assembled.stat().st_mtime < 3600
    # its 10 m pixels for the shipped 30 m model: made again at 30 m, as an export is (it was told to upload
    # the image with an averaging option the export has not)
    from core.card import DEFAULT_MODEL_PATH

    at.session_state["model_path"] = str(DEFAULT_MODEL_PATH)
    at.switch_page("pages/model.py").run()
    [warning] = [w.value for w in at.warning if w.value.startswith("On the image in use")]
    assert "export the image again at a scale of 30 m" in warning and "Average to" not in warning


def _cloud_storage_unreachable(monkeypatch):
    """Cloud Storage out of reach (offline, no credentials for TensorFlow's GCS filesystem, no access):
    tf.io.gfile raises tf.errors.* (not a CropMapError). This sandbox has no network and the real calls
    fail exactly like this (FailedPreconditionError, 'Could not resolve host'); the patch only makes
    the test independent of the network."""
    import tensorflow as tf

    def unreachable(path, *a, **k):
        raise tf.errors.FailedPreconditionError(
            None, None, "Error executing an HTTP request: libcurl code 6 meaning 'Could not resolve hostname'"
                        f"\n\t when reading metadata of {path}")

    monkeypatch.setattr(tf.io.gfile, "exists", unreachable)
    monkeypatch.setattr(tf.io.gfile, "glob", unreachable)
    monkeypatch.setattr(tf.io.gfile, "isdir", unreachable)


def test_gs_mixer_out_of_reach_is_an_error_message_not_a_crash(fake_map, monkeypatch):
    """Region page > 'Use an Earth Engine image export' with a gs:// mixer while Cloud Storage is out
    of reach: one st.error naming the path and what to check (it was a raw TensorFlow exception)."""
    _cloud_storage_unreachable(monkeypatch)
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value("gs://my-bucket/exports/camana-mixer.json")
    by_label(at.button, "Use this export").click().run()
    assert not at.exception, at.exception[0].stack_trace[-1] if at.exception[0].stack_trace else at.exception[0].value
    assert any("gs://my-bucket" in e.value and "check the network" in e.value for e in at.error)
    assert not at.get("progress")


def test_gs_patches_out_of_reach_is_an_error_message_not_a_crash(fake_map, monkeypatch):
    """Model page > Train > 'TFRecord patches' with gs:// paths (what the Earth Engine page's
    'Train on the exported patches' fills in) while Cloud Storage is out of reach: an error message."""
    from core import training_jobs

    started = []
    monkeypatch.setattr(training_jobs, "start_training", lambda *a, **k: started.append(a) or "job")
    _cloud_storage_unreachable(monkeypatch)
    at = new_app()
    at.switch_page("pages/model.py").run()
    by_label(at.radio, "Train on").set_value("patches")
    at.run()
    by_label(at.text_input, "Training patches").set_value("gs://my-bucket/crops/train_*.tfrecord.gz")
    by_label(at.text_input, "Validation patches").set_value("gs://my-bucket/crops/test_*.tfrecord.gz")
    by_label(at.button, "Start training").click().run()
    assert not at.exception, at.exception[0].value
    assert any("gs://my-bucket/crops/" in e.value and "check the network" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert started == []  # no job started on patches that cannot be read


def test_failed_export_leaves_no_progress_bar(fake_map, tmp_path):
    """Region page > 'Use this export' with a mixer that is not there: the error, and no
    'Assembling the export...' bar left above it as if the assembly were still going on."""
    at = new_app()
    at.run()
    at.text_input(key="upload_mixer").set_value(str(tmp_path / "missing-mixer.json"))
    by_label(at.button, "Use this export").click().run()
    assert any("Mixer file not found" in e.value for e in at.error)
    assert not at.get("progress"), [p.proto.text for p in at.get("progress")]
