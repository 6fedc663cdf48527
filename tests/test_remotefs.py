"""gs:// paths through TensorFlow's file system: its failures become one clear project error."""

from __future__ import annotations

import pytest

from core import remotefs
from core.errors import InputNotFoundError


@pytest.fixture
def unreachable(monkeypatch):
    """Cloud Storage out of reach, as tf.io.gfile reports it offline (no network, no credentials)."""
    import tensorflow as tf

    def fail(path, *a, **k):
        raise tf.errors.FailedPreconditionError(
            None, None, f"Error executing an HTTP request: libcurl code 6 meaning 'Could not resolve hostname'\n\t when reading {path}")

    for name in ("exists", "glob", "isdir"):
        monkeypatch.setattr(tf.io.gfile, name, fail)


def test_unreachable_storage_is_one_clear_input_error(unreachable):
    from core.patches import list_records, read_mixer
    from core.tfrecord import open_records

    for call in (lambda: list_records("gs://b/exports/train_*.tfrecord.gz"),
                 lambda: read_mixer("gs://b/exports/img-mixer.json"),
                 lambda: open_records("gs://b/exports/img-00000.tfrecord.gz").__enter__(),
                 lambda: remotefs.exists("gs://b/x")):
        with pytest.raises(InputNotFoundError) as info:
            call()
        text = str(info.value)
        assert "gs://b/" in text and "Could not resolve hostname" in text and "credentials" in text
        assert "\n" not in text  # one line


def test_a_missing_remote_file_is_not_found(monkeypatch):
    import tensorflow as tf

    def missing(path, *a, **k):
        raise tf.errors.NotFoundError(None, None, f"{path} does not exist")

    monkeypatch.setattr(tf.io.gfile, "exists", missing)
    with pytest.raises(InputNotFoundError, match="gs://b/x.json not found; check the bucket"):
        remotefs.exists("gs://b/x.json")
    monkeypatch.setattr(tf.io.gfile, "exists", lambda p: False)
    with pytest.raises(InputNotFoundError, match="not found"):
        remotefs.open_binary("gs://b/y.tfrecord.gz")


def test_is_remote():
    assert remotefs.is_remote("gs://b/x") and not remotefs.is_remote("/data/x.tif")


def test_a_files_version_is_its_size_and_time_local_or_remote(tmp_path):
    """What tells an export written again from the one assembled before (core.patches.assembled_export):
    TensorFlow's in-memory file system stands for Cloud Storage (the same gfile.stat)."""
    import os

    import tensorflow as tf

    local = tmp_path / "a-mixer.json"
    local.write_text("{}")
    assert remotefs.version(str(local)) == (2, os.stat(local).st_mtime_ns)
    with tf.io.gfile.GFile("ram://bucket/a-mixer.json", "wb") as f:
        f.write(b"{\"x\": 1}")
    size, mtime = remotefs.version("ram://bucket/a-mixer.json")  # (the in-memory file system keeps no time: 0)
    assert size == 8 and isinstance(mtime, int) and mtime >= 0
    with pytest.raises(InputNotFoundError, match="not found"):
        remotefs.version(str(tmp_path / "gone.json"))
    with pytest.raises(InputNotFoundError, match="ram://bucket/gone.json"):
        remotefs.version("ram://bucket/gone.json")


def test_remote_listings_and_reads_go_through_the_file_system_and_fail_as_one_line(unreachable):
    """isdir, glob and read_bytes on a remote path: what the file system says, and its failures as
    InputNotFoundError (TensorFlow's in-memory ram:// stands for Cloud Storage)."""
    for call in (lambda: remotefs.isdir("gs://b/exports"), lambda: remotefs.glob("gs://b/exports/*.tfrecord.gz")):
        with pytest.raises(InputNotFoundError, match="cannot read gs://b/exports.*credentials"):
            call()


def test_remote_files_are_read_and_listed():
    import tensorflow as tf

    with tf.io.gfile.GFile("ram://listing/exports/a-00000.tfrecord.gz", "wb") as f:
        f.write(b"abc")
    assert remotefs.isdir("ram://listing/exports") and not remotefs.isdir("ram://listing/exports/a-00000.tfrecord.gz")
    assert remotefs.glob("ram://listing/exports/*.tfrecord.gz") == ["ram://listing/exports/a-00000.tfrecord.gz"]
    assert remotefs.read_bytes("ram://listing/exports/a-00000.tfrecord.gz") == b"abc"
    with pytest.raises(InputNotFoundError, match="ram://listing/exports/gone.json not found"):
        remotefs.read_bytes("ram://listing/exports/gone.json")
