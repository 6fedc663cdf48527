"""core.files: outputs appear whole, all of them or none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.files import move_into_place


def _folder(tmp_path, **files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_moves_replace_old_files_and_leave_nothing_set_aside(tmp_path):
    out = _folder(tmp_path, **{"a.tif": "old a", "summary.json": "old s"})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"a.tif": "new a", "b.tif": "new b", "summary.json": "new s"})
    move_into_place([(stage / n, out / n) for n in ("a.tif", "b.tif", "summary.json")], stage)
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {
        "a.tif": "new a", "b.tif": "new b", "summary.json": "new s"}
    assert list(stage.iterdir()) == []  # the old files were deleted, not left in the staging folder


def test_moves_that_must_not_replace_keep_what_another_run_wrote_meanwhile(tmp_path):
    """Two predictions into one folder without --overwrite both passed the check at their start; the
    later replaced the earlier's outputs. Without ``replace`` nothing is moved when a final path is taken."""
    from core.errors import OutputExistsError

    out = _folder(tmp_path, **{"b.tif": "the other run's"})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"a.tif": "new a", "b.tif": "new b"})
    with pytest.raises(OutputExistsError, match="b.tif was written meanwhile.*--overwrite"):
        move_into_place([(stage / n, out / n) for n in ("a.tif", "b.tif")], stage, replace=False)
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {"b.tif": "the other run's"}
    move_into_place([(stage / "a.tif", out / "a.tif")], stage, replace=False)  # (a free path: moved)
    assert (out / "a.tif").read_text() == "new a"


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_move_puts_every_old_file_back(tmp_path, monkeypatch, failure):
    """The third move fails (or Ctrl-C comes): the first two are undone, so the folder never holds a
    new probability beside an old mask and summary."""
    out = _folder(tmp_path, **{"a.tif": "old a", "summary.json": "old s"})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"a.tif": "new a", "b.tif": "new b", "summary.json": "new s"})
    real_replace = os.replace

    def failing(src, dst):
        if src == stage / "summary.json":  # the new summary's move
            raise failure
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(type(failure)):
        move_into_place([(stage / n, out / n) for n in ("a.tif", "b.tif", "summary.json")], stage)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {"a.tif": "old a", "summary.json": "old s"}


def test_a_move_without_a_file_removes_what_stands_there_only_on_success(tmp_path):
    out = _folder(tmp_path, **{"stale-00001.tfrecord.gz": "old part", "mixer.json": "old"})
    (out / "holdout").mkdir()
    (out / "holdout" / "image.tif").write_text("old block")
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"mixer.json": "new"})
    with pytest.raises(OSError):  # the staged mixer is missing: nothing may change
        move_into_place([(None, out / "stale-00001.tfrecord.gz"), (None, out / "holdout"),
                         (stage / "gone.json", out / "mixer.json")], stage)
    assert (out / "stale-00001.tfrecord.gz").read_text() == "old part" and (out / "mixer.json").read_text() == "old"
    assert (out / "holdout" / "image.tif").read_text() == "old block"
    move_into_place([(None, out / "stale-00001.tfrecord.gz"), (None, out / "holdout"),
                     (stage / "mixer.json", out / "mixer.json")], stage)
    assert sorted(p.name for p in out.iterdir()) == [".stage", "mixer.json"]
    assert (out / "mixer.json").read_text() == "new" and list(stage.iterdir()) == []


def test_a_file_being_replaced_never_goes_missing(tmp_path, monkeypatch):
    """A page polling a training run's best.keras (or its card) must always find one, old or new:
    the old file stays in place until the new one replaces it in one step."""
    out = _folder(tmp_path, **{"best.json": "old card", "best.keras": "old model"})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"best.json": "new card", "best.keras": "new model"})
    real_replace, seen = os.replace, []

    def watching(src, dst):
        seen.append(all((out / n).is_file() for n in ("best.json", "best.keras")))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching)
    move_into_place([(stage / "best.json", out / "best.json"), (stage / "best.keras", out / "best.keras")], stage)
    monkeypatch.setattr(os, "replace", real_replace)
    assert seen and all(seen)
    assert (out / "best.json").read_text() == "new card" and (out / "best.keras").read_text() == "new model"
    assert list(stage.iterdir()) == []


@pytest.mark.parametrize("at_call", [1, 2, 3])
def test_an_interrupt_just_after_a_move_is_undone_too(tmp_path, monkeypatch, at_call):
    """Ctrl-C lands just after a rename returns, before the step is noted: the step must still be
    undone (the new holdout/ beside the old train file, or the old holdout/ lost)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "holdout").mkdir()
    (out / "holdout" / "labels.tif").write_text("old block")
    (out / "train.tfrecord.gz").write_text("old train")
    stage = out / ".stage"
    stage.mkdir()
    (stage / "holdout").mkdir()
    (stage / "holdout" / "labels.tif").write_text("new block")
    (stage / "train.tfrecord.gz").write_text("new train")
    real_replace, calls = os.replace, []

    def then_interrupted(src, dst):
        real_replace(src, dst)
        calls.append(dst)
        if len(calls) == at_call:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        move_into_place([(stage / "holdout", out / "holdout"), (stage / "train.tfrecord.gz", out / "train.tfrecord.gz")],
                        stage)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (out / "holdout" / "labels.tif").read_text() == "old block"
    assert (out / "train.tfrecord.gz").read_text() == "old train"
    assert sorted(p.name for p in out.iterdir()) == [".stage", "holdout", "train.tfrecord.gz"]
    assert not [p for p in stage.iterdir() if p.name.startswith(".old-")]


def test_a_copy_that_fails_half_way_never_replaces_the_original(tmp_path, monkeypatch):
    """Where hard links are not supported the old file is kept aside as a copy; a copy cut short (a
    full disk) must not be put back over the intact original."""
    import shutil

    out = _folder(tmp_path, **{"best.keras": "x" * 10_000})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"best.keras": "new"})

    def no_link(src, dst):
        raise OSError("links not supported here")

    def partial_copy(src, dst, **kw):
        with open(dst, "w") as f:
            f.write("x" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", partial_copy)
    with pytest.raises(OSError, match="No space"):
        move_into_place([(stage / "best.keras", out / "best.keras")], stage)
    assert (out / "best.keras").read_text() == "x" * 10_000
    assert sorted(p.name for p in stage.iterdir()) == ["best.keras"]  # no partial copy left aside


def test_temporary_names_are_unique_per_writer(tmp_path):
    """Two writers of the same file at once (two sessions: threads of one process) never share a
    temporary file, so neither finds its file taken away before its rename."""
    import threading

    from core.files import replacing, temp_name, write_bytes_whole

    assert temp_name(tmp_path / "a.tif") != temp_name(tmp_path / "a.tif")
    errors, start = [], threading.Barrier(4)

    def write(i):
        try:
            start.wait()
            for _ in range(20):
                with replacing(tmp_path / "image.tif") as tmp:
                    tmp.write_bytes(bytes([i]) * 50_000)
                write_bytes_whole(tmp_path / "upload.bin", bytes([i]) * 50_000)
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for name in ("image.tif", "upload.bin"):
        data = (tmp_path / name).read_bytes()
        assert len(data) == 50_000 and len(set(data)) == 1  # one writer's file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tif", "upload.bin"]


def test_replacing_refuses_a_folder_and_leaves_no_folder_it_made(tmp_path):
    """The library path (no CLI pre-check): core.files.replacing."""
    from core.errors import ConfigError
    from core.files import replacing

    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        with replacing(tmp_path / "d"):
            pass
    with pytest.raises(RuntimeError):
        with replacing(tmp_path / "new" / "deeper" / "x.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("write failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    with replacing(tmp_path / "new" / "x.bin") as tmp:
        tmp.write_bytes(b"whole")
    assert (tmp_path / "new" / "x.bin").read_bytes() == b"whole" and len(list((tmp_path / "new").iterdir())) == 1


def test_a_failed_replacing_write_keeps_the_old_file_whole(tmp_path):
    """Written straight to the final path, a write that fails half-way destroys the old file (a
    model card, an uploaded image) and readers meanwhile find half a file: the block writes
    elsewhere, and the old bytes stay in place until the new file is complete."""
    from core.files import replacing

    target = tmp_path / "best.json"
    target.write_bytes(b"old card")
    with pytest.raises(RuntimeError, match="write failed"):
        with replacing(target) as tmp:
            tmp.write_bytes(b"half")
            assert target.read_bytes() == b"old card"  # readers during the write find the old file
            raise RuntimeError("write failed")
    assert target.read_bytes() == b"old card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json"]  # no temporary file left
    with replacing(target) as tmp:
        tmp.write_bytes(b"new card")
        assert target.read_bytes() == b"old card"
    assert target.read_bytes() == b"new card"


def test_done_is_told_once_every_file_is_in_place_and_an_interrupt_before_it_undoes_all(tmp_path):
    """A command line notes from ``done`` on that an interrupt leaves the new outputs (it said "no output
    was written or replaced" of outputs already in place)."""
    out = _folder(tmp_path, **{"a.tif": "old a"})
    stage = out / ".stage"
    stage.mkdir()
    _folder(stage, **{"a.tif": "new a", "b.tif": "new b"})
    seen = []

    def interrupted():
        seen.append({p.name: p.read_text() for p in out.iterdir() if p.is_file()})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        move_into_place([(stage / n, out / n) for n in ("a.tif", "b.tif")], stage, done=interrupted)
    assert seen == [{"a.tif": "new a", "b.tif": "new b"}]  # told with every file in place
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {"a.tif": "old a"}  # then undone
    _folder(stage, **{"a.tif": "new a", "b.tif": "new b"})
    move_into_place([(stage / n, out / n) for n in ("a.tif", "b.tif")], stage, done=lambda: seen.append("done"))
    assert seen[-1] == "done" and (out / "b.tif").read_text() == "new b"


def test_the_upload_limit_is_the_servers():
    """core.files' limit on uploads and the Streamlit server's (.streamlit/config.toml, in MB of 2**20 bytes) are
    one figure: a file between the two was taken by the upload box and refused by the app, or the other way."""
    import tomllib
    from pathlib import Path

    from core.files import MAX_UPLOAD_BYTES

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == MAX_UPLOAD_BYTES


def test_files_are_on_the_disk_before_they_are_renamed_into_place(tmp_path, monkeypatch):
    """A file renamed before its bytes reached the disk can come back empty under its final name after a
    crash of the machine (a stored prediction did, and failed its pages): each is synced first."""
    from core import files

    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), (tmp_path / "a.bin").exists()))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    with files.replacing(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"probability")
    assert [(Path(p).name.endswith(".tmp"), placed) for p, placed in synced] == [(True, False)]  # before the rename
    staged = tmp_path / "staged"
    (staged / "run").mkdir(parents=True)
    (staged / "run" / "x.tif").write_bytes(b"1")
    (staged / "run" / "y.json").write_bytes(b"2")
    synced.clear()
    move_into_place([(staged / "run", tmp_path / "run")], tmp_path)
    assert sorted(Path(p).name for p, _ in synced) == ["x.tif", "y.json"]
    assert (tmp_path / "run" / "x.tif").read_bytes() == b"1"


def test_a_file_system_that_cannot_sync_a_file_still_gets_it(tmp_path, monkeypatch):
    """fsync refused (EINVAL: a file system without it; EBADF: a system that syncs only files opened to
    write): the file is written as before, not lost to an error."""
    import errno

    from core import files

    def refuse(fd):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(files.os, "fsync", refuse)
    files.write_bytes_whole(tmp_path / "a.bin", b"kept")
    assert (tmp_path / "a.bin").read_bytes() == b"kept"


def test_upload_sizes_read_as_the_upload_box_gives_its_limit():
    from core.files import limit_text

    assert limit_text(200 * 2**20) == "200 MB"  # (Streamlit's "200MB": 2**20 bytes each; 1e6 read "210 MB")
    assert limit_text(int(50.3 * 2**20)) == "50.3 MB"  # over a 50 MB limit: not "50 MB"
    assert limit_text(300 * 1024) == "0.3 MB"


def test_free_space_is_that_of_the_folder_written_into_and_a_safe_name_is_a_files_own(tmp_path, monkeypatch):
    """An output folder's own disk (a mounted one) was not checked, but its parent's; names from a
    Windows path, of dots, or of any length come out as a file's own short name."""
    import shutil
    from collections import namedtuple

    from core.errors import ConfigError
    from core.files import check_free_space, safe_stem, size_text

    out = tmp_path / "mounted"
    out.mkdir()
    usage = namedtuple("usage", "total used free")
    asked = []
    monkeypatch.setattr(shutil, "disk_usage", lambda p: asked.append(Path(p)) or usage(100_000, 90_000, 10_000))
    with pytest.raises(ConfigError, match=f"at least 20.0 kB and {out} has 10.0 kB free; free some space"):
        check_free_space(out, 20_000, "the prediction", "free some space")
    check_free_space(out / "probability.tif", 5_000, "a file", "")  # a file to write: its folder's disk
    assert asked == [out, out]
    assert safe_stem(r"C:\Users\me\field.geojson", "x") == "field" and safe_stem("..a.", "d") == "a"
    assert len(safe_stem("a" * 150 + ".tif", "d")) == 100 and size_text(500_000) == "0.5 MB"


def test_an_output_file_is_checked_for_its_kind_in_any_case_and_never_replaced_unasked(tmp_path):
    from core.errors import ConfigError, OutputExistsError
    from core.files import check_output_file
    from core.files import GEOTIFF_SUFFIXES

    with pytest.raises(ConfigError, match="written as a GeoTIFF; give a name ending in"):
        check_output_file(tmp_path / "x.png", kind=("a GeoTIFF", GEOTIFF_SUFFIXES))
    assert check_output_file(tmp_path / "X.TIF", kind=("a GeoTIFF", GEOTIFF_SUFFIXES)) == tmp_path / "X.TIF"
    (tmp_path / "old.tif").write_bytes(b"kept")
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        check_output_file(tmp_path / "old.tif")
    assert check_output_file(tmp_path / "old.tif", overwrite=True) == tmp_path / "old.tif"
    assert (tmp_path / "old.tif").read_bytes() == b"kept"  # (checked, not touched)


def test_patch_sources_are_told_from_images_by_name_and_folder(tmp_path):
    from core.patchset import is_patch_source

    assert is_patch_source("gs://b/exports/") and is_patch_source("X.TFRECORD.GZ")
    assert not is_patch_source("data/*_rgbn.tif") and is_patch_source("data/train_*.tfrecord.gz")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a_rgbn.tif").write_bytes(b"")
    (mixed / "b.tfrecord.gz").write_bytes(b"")
    assert not is_patch_source(mixed)  # images beside records: the images
    (mixed / "a_rgbn.tif").unlink()
    assert is_patch_source(mixed)


def test_an_output_under_a_file_or_a_folder_named_as_a_file_is_refused(tmp_path):
    """predict --out crop.tif made a folder crop.tif/; an output under a file failed with an OS error."""
    from core.errors import ConfigError
    from core.files import check_output_dir, check_output_file

    (tmp_path / "a.tif").write_bytes(b"kept")
    with pytest.raises(ConfigError, match=r"a\.tif is a file, so .* cannot be written under it"):
        check_output_file(tmp_path / "a.tif" / "deeper" / "x.tif")
    with pytest.raises(ConfigError, match=r"a\.tif is a file, so the folder .* cannot be made"):
        check_output_dir(tmp_path / "a.tif" / "out")
    with pytest.raises(ConfigError, match=r"a\.tif is a file; give a folder for the outputs"):
        check_output_dir(tmp_path / "a.tif")
    with pytest.raises(ConfigError, match=r"crop\.tif is named as a \.tif file, but the outputs go in a folder .* e\.g\. "
                                          r".*crop$"):
        check_output_dir(tmp_path / "crop.tif")
    with pytest.raises(ConfigError, match=r"e\.g\. .*/out$"):
        check_output_dir(tmp_path / "out.tfrecord.gz")
    assert check_output_dir(tmp_path / "run.2024") == tmp_path / "run.2024"  # (a dot in a folder's name is fine)
    assert (tmp_path / "a.tif").read_bytes() == b"kept" and sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


def test_an_output_folder_that_is_a_link_to_nothing_is_refused(tmp_path):
    """predict --out LINK, a link to a folder that is gone (a disk not mounted), failed with "File exists (LINK);
    check that the folder exists and can be written, and that the disk has space": there was no such file."""
    from core.errors import ConfigError
    from core.files import check_output_dir, made_dir, replacing

    (tmp_path / "link").symlink_to(tmp_path / "gone" / "runs")
    said = rf"link is a link to {tmp_path / 'gone' / 'runs'}, which does not exist; make that folder"
    for path in (tmp_path / "link", tmp_path / "link" / "pred"):
        with pytest.raises(ConfigError, match=said):
            check_output_dir(path)
    with pytest.raises(ConfigError, match=said), made_dir(tmp_path / "link" / "pred"):
        pass
    with pytest.raises(ConfigError, match=said), replacing(tmp_path / "link" / "metrics.json"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"] and not (tmp_path / "gone").exists()
    (tmp_path / "gone" / "runs").mkdir(parents=True)  # the link's folder there: written through the link
    with made_dir(tmp_path / "link" / "pred") as made:
        (made / "x").write_text("x")
    assert (tmp_path / "gone" / "runs" / "pred" / "x").read_text() == "x"


def test_files_replaced_together_are_replaced_all_or_none(tmp_path, monkeypatch):
    """An image and its labels (resample): a failed block or a failed second move leaves both old files
    and no temporary file; success replaces both."""
    from core.files import replacing_all

    image, labels = _folder(tmp_path, **{"image.tif": "old image", "labels.tif": "old labels"}) / "image.tif", \
        tmp_path / "labels.tif"
    with pytest.raises(RuntimeError):
        with replacing_all([image, labels]) as (t_image, t_labels):
            t_image.write_text("new image")
            t_labels.write_text("half")
            raise RuntimeError("write failed")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"image.tif": "old image", "labels.tif": "old labels"}
    real_replace = os.replace

    def second_fails(src, dst):
        if Path(dst) == labels:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="disk full"):
        with replacing_all([image, labels]) as (t_image, t_labels):
            t_image.write_text("new image")
            t_labels.write_text("new labels")
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"image.tif": "old image", "labels.tif": "old labels"}
    with replacing_all([image, labels]) as (t_image, t_labels):
        t_image.write_text("new image")
        t_labels.write_text("new labels")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"image.tif": "new image", "labels.tif": "new labels"}


@pytest.mark.parametrize("fails", [False, True])
def test_a_staging_folder_is_removed_whatever_happens(tmp_path, fails):
    """Its hidden folder is gone after the block, done or failed; on failure, so are the folders made for it."""
    from core.files import staging_dir

    out = tmp_path / "new" / "out"
    try:
        with staging_dir(out) as stage:
            assert stage.parent == out and stage.name.startswith(".predict-")
            (stage / "crop_mask.tif").write_bytes(b"half" if fails else b"whole")
            if fails:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert [p.name for p in tmp_path.iterdir()] == ([] if fails else ["new"])
    if not fails:
        assert list(out.iterdir()) == []
