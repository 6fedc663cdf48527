"""core.errors: the words a user reads for a failure."""

from core.errors import final_name
from core.files import temp_name


def test_temporary_names_are_said_as_the_outputs_names_however_deeply_nested():
    """resample writes its GeoTIFF under a temporary name of its own temporary name: an unwritable
    folder was said as '/data/out/..r.tif.8501-3eacb75f.tmp.8501-9a0b1c2d.tmp'."""
    once = temp_name("/data/out/r.tif")
    twice = temp_name(once)
    text = f"Attempt to create new tiff file '{twice}' failed: Permission denied"
    assert final_name(text) == "Attempt to create new tiff file '/data/out/r.tif' failed: Permission denied"
    assert final_name(f"cannot write {once}") == "cannot write /data/out/r.tif"
    assert final_name("a plain .hidden.tif stays") == "a plain .hidden.tif stays"
