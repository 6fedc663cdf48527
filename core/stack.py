"""The band files of a satellite download stacked into the one R, G, B, NIR GeoTIFF that core reads.

A Landsat Collection 2 Level-2 scene from USGS EarthExplorer comes as one GeoTIFF per band
(``..._SR_B4.TIF``), stored as integers that are reflectance only after x 0.0000275 - 0.2 (its MTL
file says so, the TIFFs do not), with clouds flagged in ``..._QA_PIXEL.TIF``; a Sentinel-2 L2A
product as one JPEG 2000 per band (``..._B04_10m.jp2``), reflectance x 10000 (+1000 from processing
baseline 04.00 on, which its SAFE folder's name gives: ``_N0400_``). :func:`stack_bands` writes the
four bands the model needs into one file with their names, the scale and offset that make them
reflectance, and the cloud mask applied (Landsat: QA_PIXEL bits 0-4, fill, dilated cloud, cirrus,
cloud and cloud shadow, and QA_RADSAT's saturated pixels, as the Earth Engine composites mask them;
Sentinel-2: the scene classification's (SCL, 20 m) no data, saturated or defective pixels, cloud
shadow, clouds and cirrus), streaming strips of rows, so a whole scene (7,700 x 7,800 px) needs
little memory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.bands import INPUT_BANDS, LANDSAT_SR_BANDS, NUMBERED_BANDS
from core.errors import (BandError, ConfigError, CorruptFileError, GridMismatchError, InputNotFoundError, NoDataError,
                         unreadable_text)
from core.reflectance import LANDSAT_C2_OFFSET, LANDSAT_C2_SCALE

#: Landsat Collection 2 Level-2 surface reflectance files: the sensor (the product id's first 4
#: letters) and the band's name (SR_B<n>, whose numbers core.bands.LANDSAT_SR_BANDS reads per sensor)
LANDSAT_FILE = re.compile(r"^(L[CTEO]0[4-9])_.*_(SR_B\d{1,2})\.TIF{1,2}$", re.IGNORECASE)
#: Sentinel-2 band files (L2A: T..._B04_10m.jp2; also single-band GeoTIFFs named by band), the band's
#: number as core.bands.NUMBERED_BANDS gives it (B4)
S2_FILE = re.compile(r"(?:^|_)B0([2348])(?:_10m)?\.(?:jp2|tiff?)$", re.IGNORECASE)
#: Sentinel-2 L2A's scene classification (T..._SCL_20m.jp2 in a SAFE's R20m folder; SCL.tif in some
#: archives' layouts), the 20 m one before the 60 m one
S2_SCL_FILE = re.compile(r"(?:^|_)SCL(?:_(20|60)m)?\.(?:jp2|tiff?)$", re.IGNORECASE)
#: SCL classes that are no data: 0 no data, 1 saturated or defective, 3 cloud shadow, 8 and 9 cloud of
#: medium and high probability, 10 thin cirrus (snow, 11, is kept, as Landsat's QA_PIXEL snow bit is)
S2_SCL_MASKED = (0, 1, 3, 8, 9, 10)
#: Collection 2 Level-2 reflectance = stored x scale + offset (stored 0 = fill)
LANDSAT_C2_SCALING = (LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET)
#: Sentinel-2 L2A reflectance = stored / 10000, less 0.1 from processing baseline 04.00 on
S2_SCALE, S2_BASELINE_OFFSET, S2_OFFSET_FROM = 0.0001, -0.1, 400
S2_BASELINE = re.compile(r"_N(\d{4})_")
#: rows read and written at a time
STRIP_ROWS = 512


@dataclass(frozen=True)
class BandFiles:
    """Which file holds each of R, G, B and NIR, what made them (``landsat``, ``sentinel-2`` or
    ``files`` given by role), their scale and offset to reflectance (None: as core detects them), and
    the quality file beside them, if any: Landsat's QA_PIXEL (with its QA_RADSAT, if there), or
    Sentinel-2's SCL."""

    files: dict[str, Path]
    kind: str
    scaling: tuple[float, float] | None
    qa: Path | None = None
    radsat: Path | None = None


def find_band_files(inputs: Sequence[str | os.PathLike]) -> BandFiles:
    """R, G, B, NIR (and the QA file) among ``inputs``: band files of one Landsat Collection 2 Level-2
    or Sentinel-2 L2A download, or a folder holding them (a SAFE folder too), recognised by their names.

    Raises:
        InputNotFoundError: an input does not exist.
        CorruptFileError: a folder given may not be listed (no permission).
        BandError: the files are not of one recognised download, or one of the four bands is missing or
            given twice; Sentinel-2 Level-1C (top-of-atmosphere) bands.
    """
    paths: list[Path] = []
    for given in inputs:
        p = Path(given)
        if not p.exists():
            raise InputNotFoundError(f"file not found: {p} (check the path)")
        if p.is_dir():  # (a folder that may not be listed held "no band files": rglob passes over it unsaid)
            try:
                with os.scandir(p):
                    pass
            except PermissionError:
                raise CorruptFileError(unreadable_text(p)) from None
        # (a folder and the folders in it: a Sentinel-2 SAFE holds its 10 m bands in GRANULE/*/IMG_DATA/R10m)
        paths.extend(sorted(c for c in p.rglob("*") if c.is_file()) if p.is_dir() else [p])
    landsat = [(m, p) for p in paths if (m := LANDSAT_FILE.match(p.name))]
    s2 = [(m, p) for p in paths if (m := S2_FILE.search(p.name))]
    if landsat and s2:
        raise BandError("the files are of a Landsat and a Sentinel-2 download; give one download's band files")
    if landsat:
        sensors = {m.group(1).upper() for m, _ in landsat}
        if len(sensors) > 1:
            raise BandError(f"the files are of several Landsat sensors ({', '.join(sorted(sensors))}); give one "
                            "scene's band files")
        (sensor,) = sensors
        names = LANDSAT_SR_BANDS["Landsat 8-9" if sensor[2:] in ("08", "09") else "Landsat 4-7"]
        files = _one_each({b: [p for m, p in landsat if m.group(2).upper() == names[b]] for b in INPUT_BANDS},
                          lambda b: f"{sensor} {names[b]}")
        prefix = files["R"].name[: LANDSAT_FILE.match(files["R"].name).start(2) - 1]

        def beside(name: str) -> Path | None:
            return next((p for p in [*paths, *files["R"].parent.iterdir()]
                         if p.name.upper() in (f"{prefix}_{name}.TIF".upper(), f"{prefix}_{name}.TIFF".upper())), None)

        qa = beside("QA_PIXEL")
        return BandFiles(files, "landsat", LANDSAT_C2_SCALING, qa, beside("QA_RADSAT") if qa else None)
    if s2:
        numbered = NUMBERED_BANDS["Sentinel-2"]
        files = _one_each({b: [p for m, p in s2 if f"B{m.group(1)}" in numbered[b]] for b in INPUT_BANDS},
                          lambda b: f"B0{numbered[b][0][1:]}")
        if "MSIL1C" in str(files["R"].resolve()).upper():  # (a SAFE folder's name: S2A_MSIL1C_...)
            raise BandError("these are Sentinel-2 Level-1C bands, reflectance at the top of the atmosphere; the model "
                            "learned surface reflectance: download the Level-2A product (S2?_MSIL2A_...) instead")
        baseline = S2_BASELINE.search(str(files["R"].resolve()))
        offset = S2_BASELINE_OFFSET if baseline and int(baseline.group(1)) >= S2_OFFSET_FROM else 0.0
        # (given as files: also in the R10m folder's sibling R20m, as a SAFE holds it)
        near = [p for d in (files["R"].parent, files["R"].parent.parent / "R20m") if d.is_dir() for p in d.iterdir()]
        scl = sorted({p for p in [*paths, *near] if S2_SCL_FILE.search(p.name)},  # (20 m, then 60 m)
                     key=lambda p: (S2_SCL_FILE.search(p.name).group(1) or "", str(p)))
        return BandFiles(files, "sentinel-2", (S2_SCALE, offset) if baseline else None, scl[0] if scl else None)
    names = ", ".join(p.name for p in paths[:6]) + (" ..." if len(paths) > 6 else "")
    coarse = sorted({m.group(1) for p in paths if (m := re.search(r"_B(?:0[2348]|8A)_(20|60)m\.", p.name))})
    if coarse:  # (the same bands at coarser pixels: said to be no band files at all)
        raise BandError(f"these are Sentinel-2's {' and '.join(coarse)} m band files ({names}); the stack is made of the "
                        "10 m ones, B02, B03, B04 and B08 (..._B04_10m.jp2, in the product's R10m folder): give those, "
                        "or these by their role (--red, --green, --blue, --nir)")
    raise BandError(f"no Landsat Collection 2 Level-2 (..._SR_B4.TIF) or Sentinel-2 (..._B04_10m.jp2) band files "
                    f"among {names or 'the inputs'}; give them, or each band by its role (--red, --green, --blue, --nir)")


def _one_each(found: dict[str, list[Path]], name) -> dict[str, Path]:
    """Each role's one file. Raises BandError: one missing or given twice (``name(role)`` names it)."""
    for band, files in found.items():
        if not files:
            raise BandError(f"the {band} band's file ({name(band)}) is missing; give all four of R, G, B and NIR")
        if len(files) > 1:
            raise BandError(f"{name(band)} is given twice ({', '.join(str(p) for p in files)}); give it once")
    return {b: files[0] for b, files in found.items()}


def stack_bands(bands: BandFiles, out: str | os.PathLike, window: tuple[int, int, int, int] | None = None,
                overwrite: bool = False) -> dict:
    """Write ``bands`` as one GeoTIFF (bands R, G, B, NIR in the files' type, 0 = no data, their scale
    and offset, the quality file's clouds set to no data), all of it or the ``window`` ROW,COL,HEIGHT,WIDTH.
    Written under a temporary name and renamed once complete. Returns what was written.

    Raises:
        InputNotFoundError, CorruptFileError: a band file cannot be read.
        GridMismatchError: the files are not on one grid (CRS, transform, size; Sentinel-2's SCL: on
            the bands' grid, with pixels a whole number of times theirs).
        BandError: one file given as two bands; a file has more than one band, or bands of different types;
            a cloud mask (or Landsat's RADSAT) that holds values other than whole numbers.
        NoDataError: every pixel of the stack (of ``window``) would be cloud or no data: nothing is written.
        ConfigError: the output is one of the inputs; a window outside the grid.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
    """
    import rasterio

    from core.raster import GDAL_CACHE_BYTES

    inputs = [*bands.files.values(), *(p for p in (bands.qa, bands.radsat) if p)]
    if any(Path(out).resolve() == p.resolve() for p in inputs):
        raise ConfigError(f"{out} is an input: write the stack to another file")
    given: dict[Path, str] = {}  # (the same file for all four wrote a grey stack, unsaid)
    for role, path in bands.files.items():
        first = given.setdefault(Path(path).resolve(), role)
        if first != role:
            raise BandError(f"{Path(path).name} is given as both {first} and {role}; give each band's own file")
    # (GDAL's block cache, 5% of the machine's memory by default, grew with the scene: 741 MB for 7,680 px)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        return _stack(bands, out, window, overwrite)


def _stack(bands: BandFiles, out, window, overwrite: bool) -> dict:
    """:func:`stack_bands` inside its GDAL settings."""
    import rasterio
    from rasterio.windows import Window

    from core.ee.composites import LANDSAT_QA_MASK
    from core.files import GEOTIFF_SUFFIXES, check_output_file, replacing
    from core.raster import _open, geotiff_writer, read_pixels

    srcs = {}
    scl = bands.kind == "sentinel-2" and bands.qa is not None
    try:
        for role, path in [*bands.files.items(), ("QA", bands.qa), ("RADSAT", bands.radsat)]:
            if path is not None:
                srcs[role] = _open(path)
        first = srcs["R"]
        for role, src in srcs.items():
            if role == "QA" and scl:
                factor = _scl_factor(src, first)
                continue
            if src.count != 1:
                raise BandError(f"{src.name} has {src.count} bands; give one file per band")
            if (src.crs, src.transform, src.width, src.height) != (first.crs, first.transform, first.width, first.height):
                raise GridMismatchError(f"{Path(src.name).name} is not on {Path(first.name).name}'s grid "
                                        f"({_grid_difference(src, first)}): give the bands of one scene, at one "
                                        "resolution (10 m for Sentinel-2's B02, B03, B04, B08)")
        dtypes = {srcs[b].dtypes[0] for b in INPUT_BANDS}
        if len(dtypes) != 1:
            raise BandError(f"the band files hold different types ({', '.join(sorted(dtypes))}); give one download's")
        row0, col0, height, width = window or (0, 0, first.height, first.width)
        if not (0 <= row0 and 0 <= col0 and height > 0 and width > 0 and row0 + height <= first.height
                and col0 + width <= first.width):
            raise ConfigError(f"the window {row0},{col0},{height},{width} is not inside the {first.height} x "
                              f"{first.width} px scene")
        check_output_file(out, overwrite, kind=("a GeoTIFF", GEOTIFF_SUFFIXES))
        profile = {"driver": "GTiff", "count": 4, "dtype": dtypes.pop(), "width": width, "height": height,
                   "crs": first.crs, "transform": rasterio.windows.transform(Window(col0, row0, width, height),
                                                                              first.transform),
                   "nodata": 0, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
                   "predictor": 2, "BIGTIFF": "IF_SAFER"}
        masked = nodata = 0
        with replacing(out) as tmp, geotiff_writer(tmp, profile) as dst:
            dst.descriptions = tuple(INPUT_BANDS)
            if bands.scaling is not None:
                dst.scales, dst.offsets = [bands.scaling[0]] * 4, [bands.scaling[1]] * 4
            for top in range(0, height, STRIP_ROWS):
                win = Window(col0, row0 + top, width, min(STRIP_ROWS, height - top))
                data = np.stack([read_pixels(srcs[b], bands.files[b], 1, window=win) for b in INPUT_BANDS])
                empty = (data == 0).any(axis=0) | np.array([_declared_nodata(srcs[b], data[i])
                                                            for i, b in enumerate(INPUT_BANDS)]).any(axis=0)
                if "QA" in srcs:
                    if scl:
                        cloudy = np.isin(_scl_strip(srcs["QA"], bands.qa, win, factor), S2_SCL_MASKED)
                    else:
                        qa = _flags(read_pixels(srcs["QA"], bands.qa, 1, window=win), bands.qa)
                        cloudy = (qa & np.asarray(LANDSAT_QA_MASK, qa.dtype)) != 0
                    if "RADSAT" in srcs:  # (any band saturated: its value is not the ground's)
                        cloudy |= _flags(read_pixels(srcs["RADSAT"], bands.radsat, 1, window=win), bands.radsat) != 0
                    masked += int((cloudy & ~empty).sum())
                    empty |= cloudy
                nodata += int(empty.sum())
                data[:, empty] = 0
                dst.write(data, window=Window(0, top, width, win.height))
            if nodata == width * height:  # (nothing a prediction could use: not written, as predict would refuse it)
                why = ("every pixel is no data" if not masked else
                       f"all its {nodata:,} pixels are masked as cloud, shadow, snow or saturated" if masked == nodata else
                       f"{masked:,} of its {nodata:,} pixels are masked as cloud, shadow, snow or saturated, the rest "
                       "are no data")
                raise NoDataError(f"the stacked image{'' if window is None else ' of the box asked for'} would hold no "
                                  f"valid pixel ({why}), so {out} was not written; choose a scene of another date, or "
                                  "another part of it (--bbox)")
    finally:
        for src in srcs.values():
            src.close()
    return {"out": str(out), "from": bands.kind, "bands": {b: str(p) for b, p in bands.files.items()},
            "qa": str(bands.qa) if bands.qa else None, "radsat": str(bands.radsat) if bands.radsat else None,
            "width": width, "height": height,
            "window": [row0, col0, height, width], "crs": str(first.crs) if first.crs else None,
            "scale_offset": list(bands.scaling) if bands.scaling else None,
            "no_data_pixels": nodata, "cloud_masked_pixels": masked if bands.qa else None,
            "warnings": unmasked_warning(bands)}


def _grid_difference(src, first) -> str:
    """How the grid of open band file ``src`` differs from ``first``'s, in words."""
    if (src.width, src.height) != (first.width, first.height):
        return f"{src.width} x {src.height} px against {first.width} x {first.height}"
    if src.crs != first.crs:
        return " against ".join(f"CRS {c.to_string()[:40]}" if c else "no CRS" for c in (src.crs, first.crs))
    said = [f"{t.a:.10g} x {-t.e:.10g} from ({t.c:,.10g}, {t.f:,.10g})" for t in (src.transform, first.transform)]
    if said[0] == said[1]:  # (a rotation, or a difference in the 11th digit)
        said = [repr(tuple(t)[:6]) for t in (src.transform, first.transform)]
    return "another origin or pixel size: " + " against ".join(said)


#: the cloud mask each kind of download has beside its bands (:func:`unmasked_warning`)
CLOUD_MASK_FILES = {"landsat": "the scene's ..._QA_PIXEL.TIF", "sentinel-2": "the scene classification, ..._SCL_20m.jp2 "
                    "(in the SAFE's R20m folder)"}


def unmasked_warning(bands: BandFiles) -> list[str]:
    """A warning where a download's bands were found without their cloud mask (:data:`CLOUD_MASK_FILES`):
    clouds and their shadows then stay in the image, and the model maps them."""
    if bands.qa is not None or bands.kind not in CLOUD_MASK_FILES:
        return []
    return [f"no cloud mask was found beside the bands, so clouds and their shadows are not masked: give "
            f"{CLOUD_MASK_FILES[bands.kind]} with the bands (or their folder) to mask them"]


def _scl_factor(scl, bands) -> int:
    """How many band pixels a side one pixel of the SCL file ``scl`` covers (2 for 20 m over 10 m).

    Raises:
        GridMismatchError: SCL is not on the bands' grid: another CRS or origin, pixels that are not a
            whole number of the bands', or too few of them to cover the bands.
    """
    name, to = Path(scl.name).name, Path(bands.name).name
    ratio = scl.transform.a / bands.transform.a
    factor = round(ratio)
    t, b = scl.transform, bands.transform
    if (scl.count != 1 or scl.crs != bands.crs or factor < 1 or abs(ratio - factor) > 1e-6
            or abs(t.e / b.e - factor) > 1e-6 or t.b or t.d or b.b or b.d
            or abs(t.c - b.c) > 1e-6 * abs(b.a) or abs(t.f - b.f) > 1e-6 * abs(b.a)
            or scl.width * factor < bands.width or scl.height * factor < bands.height):
        raise GridMismatchError(f"the scene classification {name} is not on {to}'s grid (another CRS or origin, or "
                                f"pixels that are not a whole number of its pixels): give the SCL file of the same "
                                "product, or stack without it (the bands' files alone: clouds are then not masked)")
    return factor


def _flags(values: np.ndarray, path: Path) -> np.ndarray:
    """A cloud mask's (or RADSAT's) values as integers: as stored, or floats that hold whole numbers (a mask
    converted to Float32 on its way, e.g. exported from another program).

    Raises:
        BandError: values that are not whole numbers (the mask was resampled: its bit flags or classes were
            averaged away).
    """
    if np.issubdtype(values.dtype, np.integer):
        return values
    if not (np.isfinite(values) & (values == np.round(values)) & (values >= 0)).all():
        raise BandError(f"{path.name} holds {values.dtype} values that are not whole numbers, not the flags or classes of "
                        "a download's mask (it was resampled or reprojected, which averages them away): give the file "
                        "as downloaded")
    return values.astype(np.int64)


def _scl_strip(scl, path: Path, win, factor: int) -> np.ndarray:
    """The SCL classes of the bands' window ``win``, each SCL pixel repeated over the ``factor`` x
    ``factor`` band pixels it covers. Raises CorruptFileError: SCL cannot be read; BandError: as :func:`_flags`."""
    from rasterio.windows import Window

    from core.raster import read_pixels

    r0, c0 = int(win.row_off), int(win.col_off)
    r1, c1 = r0 + int(win.height), c0 + int(win.width)
    top, left = r0 // factor, c0 // factor
    classes = _flags(read_pixels(scl, path, 1, window=Window(left, top, -(-c1 // factor) - left, -(-r1 // factor) - top)),
                     path)  # (checked before each is repeated factor x factor times)
    whole = np.repeat(np.repeat(classes, factor, axis=0), factor, axis=1)
    return whole[r0 - top * factor: r1 - top * factor, c0 - left * factor: c1 - left * factor]


def _declared_nodata(src, values: np.ndarray) -> np.ndarray:
    """Where a band file's own nodata value (other than 0) stands, and any NaN or infinity of a float
    band file (declared or not: no reflectance; they were written under the output's nodata 0, which
    every reader of it then refused)."""
    nd = src.nodata
    missing = ~np.isfinite(values) if np.issubdtype(values.dtype, np.floating) else np.zeros(values.shape, bool)
    if nd is None or nd == 0 or np.isnan(nd):
        return missing
    return missing | (values == nd)
