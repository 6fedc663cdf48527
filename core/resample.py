"""Resampling an image and its labels to another pixel size: a model sees fields at the scale it
learned (the shipped model: 30 m Landsat pixels), e.g. a 10 m Sentinel-2 image averaged to 30 m.

Reflectance is the mean of the valid pixels under each new pixel (no data never enters a mean);
labels take the class covering most of each new pixel (:func:`_area_mode`; their no data is not a class). The new grid keeps the image's
CRS, origin and orientation, and covers all of it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from core.bands import INPUT_BANDS
from core.errors import InvalidDataError
from core.grid import Grid, metres_text

#: the shipped model's pixel size (Landsat's 30 m; its card's ``pixel_size_m``): the dashboard's choice
SHIPPED_PIXEL_SIZE_M = 30.0
#: resampling is refused when it would change the pixel size by less than this (nothing to gain)
MIN_CHANGE = 1.05
#: the most pixels a resampled image may have (100 million: 1.6 GB of float32 R, G, B, NIR in memory;
#: 0.001 m pixels made a 64 px image a 640,000 px square, said to be "out of memory; resample a smaller image")
MAX_RESAMPLED_PIXELS = 100_000_000


def reprojection_needed(grid: Grid) -> str | None:
    """Why a georeferenced ``grid`` must be reprojected before it can be resampled (its CRS is not
    in metres, or its metres are not the ground's), or None. Never raises."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        crs = CRS.from_user_input(grid.crs)
    except CRSError:
        return f"the image's CRS ({grid.crs}) is not one this project reads"
    unit, factor = crs.linear_units_factor if crs.is_projected else (None, None)
    if factor != 1.0:
        return f"the image's CRS ({grid.crs}) is not projected in metres"
    if isinstance(grid.pixel_area_ha(), np.ndarray):  # a metre of the CRS is not a metre on the ground
        return (f"the image's CRS ({grid.crs}) does not keep ground sizes (its pixels are "
                f"{metres_text(grid.pixel_size_m())} m on the ground at the image's centre, not their size in the CRS)")
    return None


def resampled_grid(grid: Grid, pixel_size_m: float) -> Grid:
    """The grid of ``grid``'s area in pixels of ``pixel_size_m`` metres (same CRS, origin and axes), as
    many as fit to the nearest whole pixel on each axis.

    Raises:
        InvalidDataError: the grid is not georeferenced, or its CRS is not projected in metres or does
            not keep ground sizes (e.g. Web Mercator); the pixel size is not positive, leaves less than
            one pixel, is larger than the image, or makes more than :data:`MAX_RESAMPLED_PIXELS`.
    """
    if not grid.georeferenced:
        raise InvalidDataError("the image is not georeferenced, so its pixels have no size in metres to resample "
                               "to; use it as it is")
    unfit = reprojection_needed(grid)
    if unfit:
        raise InvalidDataError(f"{unfit}; reproject it first (e.g. gdalwarp -t_srs to its UTM zone), then resample it")
    if not (pixel_size_m > 0 and math.isfinite(pixel_size_m)):
        raise InvalidDataError(f"pixel size {pixel_size_m} m: give a positive size in metres")
    a, b, c, d, e, f = grid.transform
    sx, sy = pixel_size_m / math.hypot(a, d), pixel_size_m / math.hypot(b, e)  # per axis: pixels need not be square
    if sx > grid.width or sy > grid.height:  # one new pixel over the whole image and beyond: area invented
        across, down = grid.width * math.hypot(a, d), grid.height * math.hypot(b, e)
        raise InvalidDataError(f"{pixel_size_m:g} m pixels are larger than the image ({across:,.0f} x {down:,.0f} m); "
                               "give a pixel size smaller than the image")
    # to the nearest whole pixel, as gdalwarp -tr: a last row or column of new pixels at least half over the
    # image is kept (the mean of the pixels it covers), a thinner one left out; the area stays within half a
    # new pixel of the image's on each side (every partial pixel kept made a 64 px image's 41 ha 43.6 ha)
    width, height = math.floor(grid.width / sx + 0.5), math.floor(grid.height / sy + 0.5)
    if width < 1 or height < 1:
        raise InvalidDataError(f"{pixel_size_m:g} m pixels leave no pixel of the image")
    if width * height > MAX_RESAMPLED_PIXELS:
        raise InvalidDataError(f"{pixel_size_m:g} m pixels would make the image {width:,} x {height:,} px, more than the "
                               f"{MAX_RESAMPLED_PIXELS:,} px a resampled image may have; give a larger pixel size")
    return Grid(grid.crs, (a * sx, b * sy, c, d * sx, e * sy, f), width, height)


def resample_files(image: str | os.PathLike, out: str | os.PathLike, pixel_size_m: float,
                   labels: str | os.PathLike | None = None, labels_out: str | os.PathLike | None = None,
                   label_map: str | None = None, band_map: dict[str, int] | None = None,
                   overwrite: bool = False) -> dict:
    """Write the R, G, B, NIR reflectance of ``image`` in ``pixel_size_m`` pixels to ``out``
    (float32 0-1, NaN = no data, bands named) and, given ``labels`` (on the image's grid, read with
    ``label_map``), their class codes on the same new grid to ``labels_out`` (int16, -1 = no data).
    Everything is computed before anything is written; the files replace what stood there together. The image is read
    whole (images up to a few hundred MB, as uploads are). Returns what was done: the grids'
    pixel sizes and sizes, and the files.

    Raises:
        InputNotFoundError, BandError, CorruptFileError, InvalidDataError: reading ``image`` (see
            :class:`core.raster.ImageReader`) or :func:`resampled_grid`, or a change of less than
            :data:`MIN_CHANGE` times; NoDataError: no pixel of the image has data;
        GridMismatchError, InvalidDataError: reading ``labels`` (:func:`core.raster.read_label_classes`);
        ConfigError: labels without ``labels_out`` or ``label_map``, an unknown label map, or an output
            that is an input;
        OutputExistsError: an output exists and ``overwrite`` is False.
    """
    from core.errors import ConfigError, NoDataError
    from core.files import GEOTIFF_SUFFIXES, check_output_file, replacing_all
    from core.labels import get_class_map
    from core.raster import ImageReader, grid_of_file, read_label_classes, write_codes, write_reflectance

    if labels is not None and (labels_out is None or label_map is None):
        raise ConfigError("resampling labels needs the file to write them to and their label map")
    class_map = get_class_map(label_map) if labels is not None else None
    with ImageReader(image, band_map) as reader:  # the inputs' own mistakes before an output in the way
        _checked_target(reader.grid, pixel_size_m)
        said = list(reader.warnings)  # (e.g. an undeclared fill read as no data: the copy no longer shows it)
    if labels is not None:
        grid_of_file(labels)  # (missing, or not a raster)
    outs = [out] + ([labels_out] if labels is not None else [])
    ins = [image] + ([labels] if labels is not None else [])
    for path, option in zip(outs, ("--out", "--labels-out")):
        if any(Path(path).resolve() == Path(p).resolve() for p in ins):
            raise ConfigError(f"{path} is an input: write the resampled copy to another file")
        check_output_file(path, overwrite, option, kind=("a GeoTIFF", GEOTIFF_SUFFIXES))
    if len(outs) == 2 and Path(outs[0]).resolve() == Path(outs[1]).resolve():
        raise ConfigError("the image and the labels need two different output files")
    from rasterio.windows import Window

    from core.raster import row_strips

    # read in strips of rows into the one (bands, h, w) array resampled: the features of the whole image (5 float32
    # bands), its stored values and a copy of its four bands at once were 37 bytes a pixel, for 16 kept
    with ImageReader(image, band_map) as reader:
        grid = reader.grid
        target = _checked_target(grid, pixel_size_m)
        refl = np.empty((len(INPUT_BANDS), grid.height, grid.width), np.float32)
        any_valid = False
        for r0, r1 in row_strips(grid.height, grid.width):
            feats, valid = reader.read(Window(0, r0, grid.width, r1 - r0))
            part = refl[:, r0:r1]
            part[...] = np.moveaxis(feats[..., : len(INPUT_BANDS)], -1, 0)
            part[:, ~valid] = np.nan
            any_valid |= bool(valid.any())
        del feats, valid, part
    if not any_valid:  # (a copy of no data was written, exit status 0)
        raise NoDataError(f"{Path(image).name} has no pixel with data in every band (0, its nodata value or NaN "
                          "everywhere): there is nothing to resample")
    bands = _reproject(refl, grid, target, "average", np.nan)
    del refl  # (held through the labels' resampling, it was the peak: 16 bytes a pixel of the image)
    valid = ~np.isnan(bands).any(axis=0)  # a pixel is valid in every band or none
    codes = None
    if class_map is not None:
        _, raw = read_label_classes(labels, class_map, grid)
        codes = _reproject(raw[None], grid, target, "area_mode", -1)
        del raw
    with replacing_all(outs) as tmps:  # the image and its labels both, or neither
        write_reflectance(tmps[0], np.moveaxis(bands, 0, -1), valid, target)
        if codes is not None:
            write_codes(tmps[1], codes[0], target, class_map.band or "class")
    finer = pixel_size_m < grid.pixel_size_m()  # (said: a finer copy was made in silence)
    return {"image": str(out), "labels": str(labels_out) if codes is not None else None,
            "pixel_size_m": {"from": round(grid.pixel_size_m(), 3), "to": pixel_size_m},
            "size_px": {"from": [grid.width, grid.height], "to": [target.width, target.height]},
            "valid_pixels": int(valid.sum()),
            "warnings": said + ([f"{pixel_size_m:g} m pixels are finer than the image's {metres_text(grid.pixel_size_m())} m: "
                                 "each takes the pixels under it (a share of each where it straddles two), no detail is added"] if finer else [])}


def resampled_copies(image: str | os.PathLike, pixel_size_m: float, labels: str | os.PathLike | None = None,
                     label_map: str | None = None, band_map: dict[str, int] | None = None,
                     created: list[Path] | None = None) -> tuple[Path, Path | None]:
    """The image (and labels) in ``pixel_size_m`` pixels, beside them as ``<name>_<size>m.tif`` (with
    band numbers: ``<name>_<size>m_R3_G2_B1_NIR4.tif``; labels: ``<name>_<size>m_<label map>.tif``):
    made by :func:`resample_files`, or the copies made before (they are written whole or not at all;
    one found is marked taken, :func:`core.files.taken_mark`). Copies written by this call are appended
    to ``created`` (e.g. :func:`core.sources.local.discarded_if_refused`'s list: removed with the uploads
    if refused).

    Raises:
        as :func:`resample_files`.
    """
    def copy_of(path, tag=""):
        return Path(path).with_name(f"{Path(path).stem}_{pixel_size_m:g}m{tag}.tif")

    # the image's copy depends on the band numbers it was read with (an upload mended, another session's
    # of the same file), the labels' on their map (which codes are no data)
    named = sorted(band_map or {}, key=lambda k: (INPUT_BANDS.index(k) if k in INPUT_BANDS else len(INPUT_BANDS), k))
    bands = "".join(f"_{k}{band_map[k]}" for k in named)
    out, labels_out = copy_of(image, bands), copy_of(labels, f"_{label_map}") if labels is not None else None
    if not (out.is_file() and (labels_out is None or labels_out.is_file())):
        resample_files(image, out, pixel_size_m, labels, labels_out, label_map, band_map, overwrite=True)
        if created is not None:
            created.extend(p for p in (out, labels_out) if p is not None)
    else:  # made for an earlier upload (another session's, say): taken by this one too
        from core.files import taken_mark

        for p in (out, labels_out):
            if p is not None:
                taken_mark(p).touch()
    return out, labels_out


def _checked_target(grid: Grid, pixel_size_m: float) -> Grid:
    target = resampled_grid(grid, pixel_size_m)
    now = grid.pixel_size_m()
    if now and max(now, pixel_size_m) / min(now, pixel_size_m) < MIN_CHANGE:
        raise InvalidDataError(f"the image already has {metres_text(now)} m pixels: resampling to {pixel_size_m:g} m would "
                               "change nothing; use it as it is")
    return target


def _reproject(bands: np.ndarray, grid: Grid, target: Grid, how: str, nodata) -> np.ndarray:
    from rasterio import Affine
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    # the source padded with no data to the new grid's last row and column: GDAL counted the image's
    # last row and column twice in a new pixel only partly over it (a biased mean, another mode)
    a, b, _, d, e, _ = grid.transform
    ta, tb, _, td, te, _ = target.transform
    rows = math.ceil(target.height * math.hypot(tb, te) / math.hypot(b, e) - 1e-9)
    cols = math.ceil(target.width * math.hypot(ta, td) / math.hypot(a, d) - 1e-9)
    shape = (max(rows, grid.height), max(cols, grid.width))
    out = np.full((bands.shape[0], target.height, target.width), nodata, bands.dtype)
    for i in range(bands.shape[0]):
        band = bands[i]
        if shape != band.shape:  # (band by band: one band's copy at a time)
            band = np.full(shape, nodata, bands.dtype)
            band[: grid.height, : grid.width] = bands[i]
        if how == "area_mode":
            out[i] = _area_mode(band, grid, target, nodata)
            continue
        reproject(band, out[i], src_transform=Affine(*grid.transform), src_crs=grid.crs,
                  dst_transform=Affine(*target.transform), dst_crs=target.crs, src_nodata=nodata,
                  dst_nodata=nodata, resampling=getattr(Resampling, how))
    return out


#: Two classes' shares of a new pixel closer than this (float32 averages of the same count of old
#: pixels) are a tie (:func:`_area_mode`).
TIE_TOLERANCE = 1e-5
#: :func:`_area_mode` weighs the old pixels itself only where two classes' shares of a new pixel are
#: equal or at least this apart (ten times :data:`TIE_TOLERANCE`): no rounding then makes or breaks a tie
SHARE_STEP = 1e-4
#: :func:`_area_mode_by_pixel` works in strips of new rows of about this many (new pixel, old pixel
#: under it) pairs: 4 bytes each, 12 where a new pixel holds more than one class
_STRIP_PAIRS = 1 << 21


def _area_mode(codes: np.ndarray, grid: Grid, target: Grid, nodata) -> np.ndarray:
    """The class code covering the most area of each new pixel (``nodata`` where none has data), from
    each class's share of it, averaged by area. (GDAL's ``mode`` counts each old pixel a new one touches
    once, however little of it lies inside: where the sizes are not whole multiples, a class covering
    2.75 old pixels of a new one took it from one covering 3.5.) A tie (4 + 4 + 1 of 9 old pixels, or
    3 + 3 + 3) goes to the class of the old pixel at the new one's centre where it is one of those tied,
    else to the lower code. (Ties went to the lower code alone: in the CDL and WorldCereal the crop
    codes are the low ones, so every tie was crop.) At an even ratio (10 m to 20 m) the centre is the
    corner of four old pixels, and the nearest, bottom-right one is taken: a tied boundary moves by half
    an old pixel, a field gaining on one side what it loses on the other (the lower code there biased
    the crop area by about 2.5%).

    A share is GDAL's ``average`` of the class's 0/1 layer (no data left out), classes taken from the
    lowest code up. Where the new grid is the old one scaled by a ratio of small whole numbers (as
    :func:`resampled_grid` makes it for 10 to 30 m, 20 to 30, 10 to 25 ...), the old pixels under each
    new one are weighed here with GDAL's weights, every class at once (:func:`_pixel_overlaps`; the same
    codes); elsewhere GDAL averages each class's layer over the whole image (:func:`_area_mode_by_class`,
    one full-size reprojection a class: 110 s for a CDL of 8192 x 8192 px, 3 s so). Never raises."""
    from rasterio import Affine
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    # the class of the old pixel at each new pixel's centre
    centre = np.full((target.height, target.width), nodata, codes.dtype)
    reproject(codes, centre, src_transform=Affine(*grid.transform), src_crs=grid.crs,
              dst_transform=Affine(*target.transform), dst_crs=target.crs, src_nodata=nodata, dst_nodata=nodata,
              resampling=Resampling.nearest)
    overlaps = _pixel_overlaps(codes.shape, grid, target)
    if overlaps is None or codes.dtype.kind not in "iu" or codes.dtype.itemsize > 4:
        return _area_mode_by_class(codes, grid, target, nodata, centre)
    return _area_mode_by_pixel(codes, overlaps, centre, nodata)


def _area_mode_by_class(codes: np.ndarray, grid: Grid, target: Grid, nodata, centre: np.ndarray) -> np.ndarray:
    """:func:`_area_mode` by GDAL's ``average`` of each class's 0/1 layer over the whole image."""
    from rasterio import Affine
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    shape = (target.height, target.width)
    warp = dict(src_transform=Affine(*grid.transform), src_crs=grid.crs, dst_transform=Affine(*target.transform),
                dst_crs=target.crs)
    out = np.full(shape, nodata, codes.dtype)
    most = np.zeros(shape, np.float32)
    share = np.empty(shape, np.float32)
    missing = codes == nodata
    for code in np.unique(codes[~missing]):
        layer = (codes == code).astype(np.float32)
        layer[missing] = np.nan
        share.fill(np.nan)
        reproject(layer, share, src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.average, **warp)
        # (NaN: no data under the new pixel, never more; shares within float32's rounding are a tie)
        more = share > most + TIE_TOLERANCE
        tie = (np.abs(share - most) <= TIE_TOLERANCE) & (centre == code) & (out != nodata)
        take = more | tie
        most[take], out[take] = np.maximum(share[take], most[take]), code
    return out


def _pixel_overlaps(shape: tuple[int, int], grid: Grid,
                    target: Grid) -> tuple[tuple[np.ndarray, np.ndarray], ...] | None:
    """For the rows, then the columns of ``target``: the first old pixel (of an array of ``shape`` on
    ``grid``) under each new one, and the weights GDAL's ``average`` gives it and the next ones (0 past
    the last), as :func:`_axis_overlaps`; or None where shares weighed so could tie where GDAL's do not,
    or the other way round: another CRS, a rotation, or new pixel edges off every grid of ``1/q`` of an
    old pixel (``q`` up to 100 on each axis) coarse enough for :data:`SHARE_STEP`. (On such a grid a
    class's area in a new pixel is a whole number of ``1/q`` steps on each axis, and all the shares of
    a new pixel have the same denominator: two are equal or at least ``SHARE_STEP`` apart, to within
    :func:`_whole`'s 1e-7. Our float64 sums and GDAL's round alike, or differ far below that (its
    coordinates' rounding): a float32 share may differ in its last bit, a tie or a class taken never.)"""
    a, b, c, d, e, f = grid.transform
    ta, tb, tc, td, te, tf = target.transform
    if b or d or tb or td or not (a and e and ta and te) or target.crs != grid.crs:
        return None
    axes, steps = [], 1.0
    for n_new, new0, new_size, old0, old_size, n_old in ((target.height, tf, te, f, e, shape[0]),
                                                        (target.width, tc, ta, c, a, shape[1])):
        ratio, offset = new_size / old_size, (new0 - old0) / old_size
        # (a ratio off by the last bits of a pixel size, 10.000000001 m, drifts by n_new times as much)
        q = next((q for q in range(1, 101) if _whole(q * ratio, n_new) and _whole(q * offset, 1)), None)
        if q is None or ratio <= 0:
            return None
        # (a new pixel's length in steps; at least an old pixel's, which GDAL weighs whole under a smaller one)
        steps *= q * max(ratio, 1.0)
        axes.append(_axis_overlaps(n_new, new0, new_size, old0, old_size, n_old))
    return tuple(axes) if steps <= 1 / SHARE_STEP else None


def _whole(x: float, times: int) -> bool:
    """Whether ``x`` is a whole number to within 1e-7 when ``times`` of it are added up."""
    return abs(x - round(x)) * times <= 1e-7


def _axis_overlaps(n_new: int, new0: float, new_size: float, old0: float, old_size: float,
                   n_old: int) -> tuple[np.ndarray, np.ndarray]:
    """The first of ``n_old`` old pixels under each of ``n_new`` new ones along an axis (origin and
    pixel size of each), and the weight of it and of the next ones, GDAL's (3.x warp kernel,
    ``average``): the share of the old pixel inside the new one at either end, 1 between them or where
    one old pixel holds it all, 0 past the end."""
    # the new pixels' edges in old pixels, rounded as GDAL rounds them: the new grid's coordinates, then
    # the old grid's inverse geotransform (from the exact ratio, shares were up to 2e-11 off GDAL's at an
    # origin off whole metres; so, 1e-16)
    edges = -old0 / old_size + (new0 + np.arange(n_new + 1, dtype=np.float64) * new_size) * (1.0 / old_size)
    lo, hi = edges[:-1], edges[1:]
    first = np.maximum(np.floor(lo + 1e-10), 0.0)
    stop = np.minimum(np.ceil(hi - 1e-10), float(n_old))
    stop = np.where((first == stop) & (stop < n_old), stop + 1, stop)
    k = first[:, None] + np.arange(max(int((stop - first).max()), 1))
    weights = np.where(k == first[:, None], np.where(stop - first == 1, 1.0, 1 - (lo - first))[:, None],
                       np.where(k + 1 == stop[:, None], (1 - (stop - hi))[:, None], 1.0))
    return first.astype(np.intp), np.where(k < stop[:, None], weights, 0.0)


def _area_mode_by_pixel(codes: np.ndarray, overlaps: tuple[tuple[np.ndarray, np.ndarray], ...], centre: np.ndarray,
                        nodata) -> np.ndarray:
    """:func:`_area_mode` on the overlaps of :func:`_pixel_overlaps`, in strips of new rows: a new pixel
    whose old pixels with data are of one class takes it (its share is 1); the others weigh each class
    as GDAL sums it (old rows, then columns, in float64, no data left out), rounded to float32, and take
    their classes from the lowest code up (:func:`_largest_shares`)."""
    (row0, row_w), (col0, col_w) = overlaps
    height, width = centre.shape
    pairs = row_w.shape[1] * col_w.shape[1]  # old pixels under a new one, at most
    # codes in a wider type, so that one value (the largest) stands for no class: no data, or weight 0
    work = np.dtype(np.int32 if codes.dtype.itemsize <= 2 else np.int64)
    none = np.iinfo(work).max
    out = np.full(centre.shape, nodata, codes.dtype)
    rows = max(1, _STRIP_PAIRS // (pairs * width))
    classes = np.empty((pairs, rows, width), work)
    for r0 in range(0, height, rows):
        r1 = min(r0 + rows, height)
        part = classes[:, : r1 - r0]
        for i in range(row_w.shape[1]):
            # (take: a third of indexing's time; past the last old pixel: weight 0)
            strip = codes.take(np.minimum(row0[r0:r1] + i, codes.shape[0] - 1), axis=0)
            for j in range(col_w.shape[1]):
                p = i * col_w.shape[1] + j
                part[p] = strip.take(np.minimum(col0 + j, codes.shape[1] - 1), axis=1)
                if not row_w[r0:r1, i].all():
                    part[p][row_w[r0:r1, i] == 0] = none
                if not col_w[:, j].all():
                    part[p][:, col_w[:, j] == 0] = none
        np.putmask(part, part == nodata, none)
        lowest = part.min(axis=0)
        # the highest class: none + 1 wraps round to the type's least value, below every class
        np.add(part, 1, out=part)
        highest = part.max(axis=0) - 1
        np.subtract(part, 1, out=part)
        out[r0:r1] = np.where(lowest == none, nodata, lowest)  # (a class alone: share 1, taken)
        at = np.nonzero(lowest != highest)
        if at[0].size:
            weights = np.empty((pairs, at[0].size))
            for i in range(row_w.shape[1]):
                for j in range(col_w.shape[1]):
                    np.multiply(row_w[r0 + at[0], i], col_w[at[1], j], out=weights[i * col_w.shape[1] + j])
            out[r0:r1][at] = _largest_shares(part[:, at[0], at[1]], weights, lowest[at], highest[at],
                                             centre[r0:r1][at], nodata, none)
    return out


def _largest_shares(classes: np.ndarray, weights: np.ndarray, lowest: np.ndarray, highest: np.ndarray,
                    centre: np.ndarray, nodata, none: int) -> np.ndarray:
    """The class of each new pixel (a column of ``classes``: the codes of its old pixels, ``none`` for
    no class; of ``weights``: their weights; two classes or more, ``lowest`` to ``highest``) by
    :func:`_area_mode_by_class`'s rule, its classes taken from the lowest code up, their shares summed
    as GDAL sums them."""
    weights[classes == none] = 0.0
    total = np.zeros(classes.shape[1])
    for w in weights:  # (added one by one, in GDAL's order: the same float64)
        total += w
    found = np.empty(classes.shape[1], centre.dtype)
    at = np.arange(classes.shape[1])  # the new pixels with classes left to weigh, and of each:
    out = np.full(classes.shape[1], nodata, centre.dtype)  # the class taken so far
    most = np.zeros(classes.shape[1], np.float32)  # and its share
    code = lowest  # the class weighed
    while True:
        area = np.zeros(at.size)
        for c, w in zip(classes, weights):
            np.add(area, w, out=area, where=c == code)
        share = (area / total).astype(np.float32)
        take = (share > most + TIE_TOLERANCE) | ((np.abs(share - most) <= TIE_TOLERANCE) & (centre == code) &
                                                 (out != nodata))
        np.maximum(share, most, out=most, where=take)
        np.copyto(out, code, where=take)
        left = code != highest  # (most new pixels hold two classes, few more than three)
        if not left.all():
            found[at[~left]] = out[~left]
            if not left.any():
                return found
            at, classes, weights, total, highest, code, most, out, centre = (
                at[left], classes[:, left], weights[:, left], total[left], highest[left], code[left], most[left],
                out[left], centre[left])
        code = classes.min(axis=0, initial=none, where=classes > code)  # each new pixel's next class up
