"""One error hierarchy for the whole project.

Every error a user can cause is a :class:`CropMapError` subclass whose message says what went
wrong and what to do about it. The CLI prints ``str(err)`` as one line; the dashboard shows it in
``st.error``. Programming errors (bugs) are not wrapped and keep their tracebacks.
"""

from __future__ import annotations

import errno
import re


class CropMapError(Exception):
    """Base class of every error a user can act on."""


class InputNotFoundError(CropMapError):
    """A file or folder the user named does not exist."""


class BandError(CropMapError):
    """The image lacks the bands needed, or they cannot be identified."""


class GridMismatchError(CropMapError):
    """Two rasters that must share a grid (CRS, transform, shape) do not."""


class RegionError(CropMapError):
    """A region is outside the data, too small for one patch, too large, or malformed."""


class OutsideImageError(RegionError):
    """A region (or a zone of it) lies wholly outside an image."""


class NoDataError(CropMapError):
    """A region or image holds no valid pixels at all."""


class InvalidDataError(CropMapError):
    """Pixel values that cannot be reflectance (NaN, negative, out of range) or bad labels."""


#: how the message of a training stopped by a NaN or infinite loss starts (a job's status keeps only
#: the text, and such a run is not offered to resume: it would diverge again)
DIVERGED = "training diverged"
#: how the message of a training that could not go on from its checkpoint starts (a damaged one: a resume
#: of it, offered again, only copied it into another failed job)
CANNOT_RESUME = "cannot resume"


class CorruptFileError(CropMapError):
    """A TFRecord, model or raster file is truncated or unreadable."""


class ModelMismatchError(CropMapError):
    """A model's input bands or shape do not fit the image it is applied to."""


class CardMismatchError(ModelMismatchError):
    """A model card written for another model's weights (see core.card.card_mismatch)."""


class OutputExistsError(CropMapError):
    """An output already exists and ``overwrite`` was not requested."""


class ConfigError(CropMapError):
    """A configuration value is out of range or an invalid combination."""


class EarthEngineError(CropMapError):
    """Earth Engine is not configured, or a request to it failed (see subclasses in core.ee)."""


class JobError(CropMapError):
    """A background job could not be started, was cancelled or failed."""


class PredictionStoppedError(JobError):
    """A prediction running for the dashboard was stopped: nobody follows it any more (each session
    changed its region, source or model)."""


def unreadable_text(path: object) -> str:
    """What to say of an input the user may not read (a file without read permission, a folder that may not
    be entered or listed): GDAL's "Permission denied" was said as a file "truncated or damaged"."""
    return (f"{path} cannot be read: permission denied; check the permissions of it and of the folders above it "
            "(ls -l), or copy it where you may read it")


def environment_error(err: BaseException, memory_advice: str = "use a smaller region") -> str | None:
    """One line for a failure of the machine rather than of the user's inputs (a folder that cannot
    be written, a full disk, no memory, Cloud Storage out of reach); None for anything else (a bug,
    which keeps its traceback)."""
    if isinstance(err, MemoryError):
        return f"out of memory; {memory_advice}"
    module = type(err).__module__ or ""
    # (before OSError: rasterio's RasterioIOError is one, and is mostly a file that could not be read)
    if module.startswith(("tensorflow", "rasterio")):  # TensorFlow's OpError, GDAL's CPLE_* errors
        line = final_name(first_line(err))
        if "://" in str(err):
            return line + "; check the path, the network and your credentials"
        if _WRITE_FAILED.search(str(err)):  # (GDAL's words for a full disk: "TIFFAppendToStrip:Write error")
            return line + "; writing failed: check that the folder can be written and that the disk has space"
        return line
    if isinstance(err, OSError):
        where = f" ({final_name(str(err.filename))})" if getattr(err, "filename", None) else ""
        if err.errno == errno.EACCES:  # (an input not readable as well as a folder not writable: not the disk)
            return (f"{err.strerror or err}{where}; check the permissions of it and of the folders above it (ls -l): "
                    "an input must be readable, an output's folder writable")
        return (f"{err.strerror or err}{where}; check that the folder exists and can be written, and that the "
                "disk has space")
    return None


#: GDAL's and TensorFlow's words for a file that could not be written (a full disk, a read-only folder)
_WRITE_FAILED = re.compile(r"write error|write failed|no space left|disk full|permission denied|operation not permitted|"
                           r"read-only file system|"
                           r"TIFFRewriteDirectory|TIFFAppendToStrip|TIFFWrite", re.IGNORECASE)


#: a temporary name beside an output (core.files.temp_name: ".NAME.PID-HEX.tmp"), which means nothing to a user
_TEMP_NAME = re.compile(r"(?<![^/\\\s'\"(])\.([^/\\]+?)\.\d+-[0-9a-f]{8}\.tmp\b")


def cut_text(text: str, most: int = 400) -> str:
    """``text`` cut in its middle to ``most`` characters (" ... " at the cut), its start (what is wrong) and its
    end (what to do) kept: an error naming a damaged file's value (a list of a million bands) stays a line."""
    if len(text) <= most:
        return text
    head = (most - 5) // 2
    return text[:head] + " ... " + text[len(text) - (most - 5 - head):]


def final_name(text: str) -> str:
    """``text`` with the temporary names of outputs being written (core.files.temp_name) as the outputs'
    names, also where a writer wrote under a temporary name of another's (``..r.tif.1-ab.tmp.1-cd.tmp``)."""
    while (named := _TEMP_NAME.sub(r"\1", text)) != text:
        text = named
    return text


def first_line(err: BaseException) -> str:
    """The first line of an error's message (TensorFlow's ``message``), or its class name."""
    text = str(getattr(err, "message", "") or err).strip().splitlines()
    return text[0] if text else type(err).__name__
