"""Reading multiband reflectance images and label rasters, window by window, and writing masks.

An :class:`ImageReader` finds the R, G, B and NIR bands (:mod:`core.bands`), detects the
reflectance scale and refuses values that cannot be reflectance (:mod:`core.reflectance`), derives
NDVI and a validity mask, and returns ``(features, valid)`` for any window, so that nothing ever
needs the whole image in memory. Label rasters are read through a :class:`~core.labels.ClassMap`
on the same grid (:mod:`core.grid`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core.bands import INPUT_BANDS, band_map_warnings, resolve_bands
from core.errors import (
    BandError,
    CorruptFileError,
    InputNotFoundError,
    InvalidDataError,
    final_name,
    first_line,
    unreadable_text,
)
from core.grid import Grid, check_same_grid, georeferencing_warnings, grid_of, pixel_offset, window_within
from core.labels import NODATA, ClassMap, CodeCounts
from core.reflectance import (
    MIN_CHECKED_PIXELS,
    lift_zeros,
    reflectance_scaling,
    sample_valid,
    sample_warnings,
    stored_ceiling,
    to_features,
    valid_pixels,
)


def grid_of_file(path: str | os.PathLike) -> Grid:
    """The :class:`Grid` of a raster file.

    Raises:
        InputNotFoundError, CorruptFileError: the file cannot be opened as a raster;
        InvalidDataError: its geotransform puts a corner out of range.
    """
    with _open(path) as src:
        return grid_of(src)


def file_bands(path: str | os.PathLike) -> tuple[str | None, ...]:
    """The band descriptions of a raster file, one per band (None for a band without one).

    Raises:
        InputNotFoundError, CorruptFileError.
    """
    with _open(path) as src:
        return band_names(src)


def band_names(src, needed_by: str | None = None) -> tuple[str | None, ...]:
    """The band descriptions of the open raster ``src`` (None for a band without one); None for every
    band where they are not UTF-8 text (a file written with names in another encoding, e.g. Latin-1,
    which rasterio cannot decode).

    Raises:
        BandError: names that are not UTF-8 where ``needed_by`` (the file's name) needs them to tell
            its bands apart.
    """
    try:
        return tuple(src.descriptions)
    except UnicodeDecodeError:
        if needed_by:
            raise BandError(f"the band names of {needed_by} are not UTF-8 text (written in another encoding), so "
                            "its bands cannot be told apart by name; give their numbers (--bands 1,2,3,4 for R, G, "
                            "B, NIR; on the Region page, the upload's 'Band numbers of R, G, B, NIR'), or write "
                            "the file again with UTF-8 band names") from None
        return (None,) * src.count


def band_map_check(path: str | os.PathLike, band_map: dict[str, int] | None) -> tuple[str, ...]:
    """The warning of :func:`core.bands.band_map_warnings` for the file at ``path``: band numbers given
    by the user that contradict its band names. () without ``band_map``.

    Raises:
        InputNotFoundError, CorruptFileError.
    """
    if not band_map:
        return ()
    with _open(path) as src:
        return band_map_warnings(band_names(src), src.count, band_map, Path(path).name)


#: GDAL's block cache while a whole image is read once, block by block (a prediction, an overview):
#: its default, 5% of RAM, keeps every block read, so memory grew with the image. Bytes (rasterio
#: passes GDAL_CACHEMAX to GDALSetCacheMax64).
GDAL_CACHE_BYTES = 128 * 2**20
#: Pixels in each strip of rows :meth:`ImageReader.read_overview` reads (four bands: 32 MB of int16).
OVERVIEW_STRIP_PIXELS = 4 * 2**20


def spread(n: int, length: int) -> np.ndarray:
    """Indices of ``n`` pixels spread evenly over ``length`` (the centre pixel of each of ``n``
    equal parts, as GDAL's nearest resampling picks them)."""
    return ((np.arange(n) + 0.5) * length / n).astype(int)


def _open(path: str | os.PathLike):
    """``rasterio.open(path)``, its failures said for a user.

    Raises:
        InputNotFoundError: no such file.
        CorruptFileError: a folder, not a raster, truncated or damaged, compressed with a codec missing here, or
            not readable (no permission).
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    p = Path(path)
    try:
        exists = p.exists()
    except PermissionError:  # (a folder above it that may not be entered)
        raise CorruptFileError(unreadable_text(p)) from None
    if not exists:
        raise InputNotFoundError(f"file not found: {p} (check the path)")
    try:
        src = rasterio.open(p)
    except RasterioIOError as err:
        # GDAL's text names the file by its whole path (for an upload, a folder of the server's): by name here
        name = p.name or str(p)  # "." has no name
        reason = str(err).replace(f"'{p}'", "").replace(str(p), name).strip().rstrip(".")
        if "permission denied" in reason.lower():  # (was "the file is truncated or damaged")
            raise CorruptFileError(unreadable_text(name)) from None
        if p.is_dir():
            mixers = sorted(m.name for m in p.glob("*mixer.json"))  # (an Earth Engine image export's folder)
            also = f", or the export's {mixers[0]}" if len(mixers) == 1 else (
                ", or an export's PREFIX-mixer.json" if mixers else "")
            raise CorruptFileError(f"{name} is a folder; give the image or labels GeoTIFF (.tif) in it{also}") from None
        if "not recognized as being in a supported file format" in reason:
            raise CorruptFileError(f"{name} is not a GeoTIFF (nor another raster format that GDAL reads); "
                                   "give the image or labels as a GeoTIFF (.tif)") from None
        reason = reason.removeprefix(f"{name}:").strip()  # (GDAL's text may start with the name once more)
        if "missing codec" in reason:  # compressed in a way this GDAL does not read (e.g. JPEG-XL)
            raise CorruptFileError(f"cannot read {name}: it is compressed with a codec this installation lacks "
                                   f"({reason}); write it with another compression, e.g. gdal_translate -co "
                                   "COMPRESS=DEFLATE IN.tif OUT.tif") from None
        if p.suffix.lower() in (".tif", ".tiff"):  # a GeoTIFF by name that GDAL cannot open: cut short or damaged
            raise CorruptFileError(f"cannot read {name} ({reason}): the file is truncated or damaged; copy or "
                                   "download it again") from None
        raise CorruptFileError(f"cannot read {name}: {reason}; is it a GeoTIFF?") from None
    from rasterio._err import CPLE_BaseError  # (GDAL's errors; rasterio.errors does not name them)

    try:  # damage GDAL met while opening (e.g. in the GeoTIFF keys) is raised by the first call that checks
        src.colorinterp
    except CPLE_BaseError as err:
        src.close()
        reason = str(err).replace(str(p), p.name).strip().rstrip(".")  # (not the server's folders)
        raise CorruptFileError(f"cannot read {p.name or p} ({reason}): the file is damaged; copy or download it "
                               "again") from None
    return src


def read_pixels(src, path: str | os.PathLike, *args, **kwargs) -> np.ndarray:
    """``src.read(*args, **kwargs)`` of the open raster ``src`` (the file ``path``).

    Raises:
        CorruptFileError: a block of the file cannot be read (truncated or damaged).
    """
    from rasterio.errors import RasterioIOError

    try:
        return src.read(*args, **kwargs)
    except RasterioIOError as err:
        reason = str(err).replace("See previous exception for details.", "").strip().rstrip(".")
        raise CorruptFileError(f"cannot read pixels of {path} ({reason}): the file is truncated or damaged; "
                               "copy or download it again") from None


def read_padded(src, path: str | os.PathLike, indexes, window, fill, masked: bool = False) -> np.ndarray:
    """:func:`read_pixels` of ``window`` (None: the whole raster), whose part beyond the raster's
    edges is ``fill`` (masked, for a ``masked`` read). Not rasterio's ``boundless`` read: that goes
    through a warped VRT, which turns a rotated grid north-up and so moves and resamples its pixels.

    Raises:
        CorruptFileError: see :func:`read_pixels`.
    """
    from rasterio.windows import Window

    if window is None:
        return read_pixels(src, path, indexes, masked=masked)
    r, c, h, w = (int(round(v)) for v in (window.row_off, window.col_off, window.height, window.width))
    r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, src.height), min(c + w, src.width)
    if (r0, c0, r1, c1) == (r, c, r + h, c + w):
        return read_pixels(src, path, indexes, window=window, masked=masked)
    shape = (h, w) if isinstance(indexes, int) else (len(indexes), h, w)
    dtype = src.dtypes[(indexes if isinstance(indexes, int) else indexes[0]) - 1]
    try:
        out = np.full(shape, fill, dtype)
    except (OverflowError, ValueError):  # a nodata value the type cannot hold: 0, no data too
        out = np.zeros(shape, dtype)
    mask = np.ones(shape, bool)
    if r1 > r0 and c1 > c0:
        part = read_pixels(src, path, indexes, window=Window(c0, r0, c1 - c0, r1 - r0), masked=masked)
        out[..., r0 - r : r1 - r, c0 - c : c1 - c] = np.ma.getdata(part)
        mask[..., r0 - r : r1 - r, c0 - c : c1 - c] = np.ma.getmaskarray(part)
    return np.ma.MaskedArray(out, mask=mask) if masked else out


class ImageReader:
    """A reflectance image open for windowed reading. Use as a context manager.

    ``scale`` and ``offset`` turn stored values of R into reflectance (``scales``/``offsets``: per
    band R, G, B, NIR).

    Raises (on open):
        InputNotFoundError, CorruptFileError, BandError;
        InvalidDataError: a sample of the pixels does not look like reflectance (see :func:`check_reflectance`)
            or holds NaN without a NaN nodata value.
    """

    def __init__(self, path: str | os.PathLike, band_map: dict[str, int] | None = None):
        from rasterio.enums import ColorInterp, MaskFlags

        self.path = Path(path)
        self._src = _open(self.path)
        try:
            src = self._src
            self.grid = grid_of(src)
            self.band_index = resolve_bands(band_names(src, None if band_map else self.path.name), src.count, band_map)
            self._indexes = [self.band_index[b] for b in INPUT_BANDS]
            check_real_numbers(src, self.path, "reflectance")
            self.nodata = src.nodata
            # a mask band (GDAL's internal .msk or an alpha band: a cloud mask, the edge of a warped scene)
            # hides pixels whose values remain; they are no data, as the nodata value's are
            # (not where the band GDAL takes for alpha is one of R, G, B, NIR: a 4-band file written as RGBA)
            alpha_used = any(src.colorinterp[i - 1] == ColorInterp.alpha for i in self._indexes)
            self._has_mask = not alpha_used and any(MaskFlags.per_dataset in src.mask_flag_enums[i - 1]
                                                    or MaskFlags.alpha in src.mask_flag_enums[i - 1] for i in self._indexes)
            # an alpha band after them (R, G, B, NIR, alpha: GDAL takes alpha as the mask of 2- and 4-band
            # files only), whose 0 hides pixels (a cloud mask, a clipped area) that were predicted and counted
            self._alpha = next((i for i in range(1, src.count + 1) if i not in self._indexes
                                and src.colorinterp[i - 1] == ColorInterp.alpha), None)
            sample = self._sample(src)
            # valid_pixels, as reading has it: NaN without a NaN nodata value is refused now if the
            # sample shows it, so that a prediction does not stop part of the way through
            sample = sample[:, valid_pixels(sample, self.nodata, self.path.name, pixels="sampled pixels")]
            if sample.shape[1] < MIN_CHECKED_PIXELS:  # the windows fell in no-data margins: look at all of it
                spread = self._decimated(src)
                spread = spread[:, sample_valid(spread, self.nodata)]
                if spread.shape[1] > sample.shape[1]:
                    sample = spread
            self.scales, self.offsets = reflectance_scaling(
                src.dtypes[0], sample, self.path.name,
                [src.scales[i - 1] for i in self._indexes], [src.offsets[i - 1] for i in self._indexes])
            self.scale, self.offset = float(self.scales[0]), float(self.offsets[0])
            self._ceiling = stored_ceiling(self.scales, self.offsets)
            #: suspect but possible values (see :func:`sample_warnings`), for the user to check
            self.warnings = sample_warnings(sample, self.scales, self.offsets, self.path.name)
            self.warnings += band_map_warnings(band_names(src), src.count, self.band_index, self.path.name)
            self.warnings += georeferencing_warnings(src, self.path.name)
            if not sample.shape[1]:  # (info said nothing of an image of zeros or NaN only)
                self.warnings += (f"none of the pixels of {self.path.name} sampled across it has data in every band "
                                  "(0, its nodata value or NaN everywhere): there may be nothing to show, predict "
                                  "or train on",)
        except Exception:
            self._src.close()
            raise

    def _sample(self, src, n: int = 4, size: int = 128) -> np.ndarray:
        """Stored values of up to n x n small windows spread over the image (cheap at any size)."""
        from rasterio.windows import Window

        h, w = min(size, src.height), min(size, src.width)
        # as many windows a side as fit without overlap: a pixel is counted once (an image of 300 px
        # had 4 overlapping windows a side, and "NaN in 12996 sampled pixels" for 2500 of them)
        rows = np.linspace(0, src.height - h, max(1, min(n, src.height // h))).astype(int)
        cols = np.linspace(0, src.width - w, max(1, min(n, src.width // w))).astype(int)
        parts = [self._stored(window=Window(int(c), int(r), w, h)) for r in sorted(set(rows)) for c in sorted(set(cols))]
        return np.concatenate([p.reshape(4, -1) for p in parts], axis=1).astype(np.float64)

    def _decimated(self, src, side: int = 512) -> np.ndarray:
        """Stored values of pixels spread evenly over the whole image (nearest, at most ``side`` x
        ``side``): for images whose data the sampled windows miss (wide no-data margins)."""
        raw = self._stored_spread(min(side, src.height), min(side, src.width))
        return raw.reshape(len(self._indexes), -1).astype(np.float64)

    def _stored_spread(self, h: int, w: int) -> np.ndarray:
        """:meth:`_stored` of ``h`` x ``w`` pixels spread evenly over the whole image (nearest): from
        the file's overviews where it has them (GDAL picks the level), else from strips of rows read
        in turn, each block once and GDAL's block cache small (GDAL's own decimated read thrashed a
        small cache and filled its default one: 1.5 GB for a 12,288 px image), so that memory does
        not grow with the image.

        Raises:
            CorruptFileError: see :func:`read_pixels`.
        """
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        if self._src.overviews(self._indexes[0]):
            return self._stored(out_shape=(len(self._indexes), h, w), resampling=Resampling.nearest)
        height, width = self._src.height, self._src.width
        rows, cols = spread(h, height), spread(w, width)
        raw = np.empty((len(self._indexes), h, w), self._src.dtypes[self._indexes[0] - 1])
        strip = max(1, OVERVIEW_STRIP_PIXELS // width)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            for r0 in range(0, height, strip):
                picked = np.flatnonzero((rows >= r0) & (rows < r0 + strip))
                if picked.size:
                    part = self._stored(Window(0, r0, width, min(strip, height - r0)))
                    raw[:, picked] = part[:, rows[picked] - r0][:, :, cols]
        return raw

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> "ImageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stored(self, window=None, **kwargs) -> np.ndarray:
        """Stored values of R, G, B, NIR as (4, h, w) of ``window`` (None: all; ``kwargs`` as
        rasterio's read takes them, e.g. ``out_shape``); pixels beyond the edges, or hidden by the
        file's mask band, hold the no-data value (0 without one: no data too, see :func:`valid_pixels`).

        Raises:
            CorruptFileError: see :func:`read_pixels`.
        """
        fill = self.nodata if self.nodata is not None else 0
        if kwargs:
            raw = read_pixels(self._src, self.path, self._indexes, window=window, masked=self._has_mask, **kwargs)
        else:
            raw = read_padded(self._src, self.path, self._indexes, window, fill, masked=self._has_mask)
        raw = raw.filled(fill) if self._has_mask else raw
        if self._alpha is not None:  # (its 0: no data, as the mask band's)
            if kwargs:
                one = dict(kwargs)  # (the same read, of one band)
                if "out_shape" in one:
                    one["out_shape"] = (1, *one["out_shape"][1:])
                alpha = read_pixels(self._src, self.path, [self._alpha], window=window, masked=False, **one)[0]
            else:
                alpha = read_padded(self._src, self.path, [self._alpha], window, 0, masked=False)[0]
            raw[:, alpha == 0] = fill
        return raw

    def _stored_and_valid(self, window=None, **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_stored` and which of its pixels are valid (:func:`valid_pixels`).

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value.
            CorruptFileError: see :func:`read_pixels`.
        """
        raw = self._stored(window, **kwargs)
        return raw, valid_pixels(raw, self.nodata, self.path.name, ceiling=self._ceiling)

    def read_valid(self, window=None) -> np.ndarray:
        """The validity mask (h, w) of :meth:`read`, without making the features.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value.
        """
        return self._stored_and_valid(window)[1]

    def read_valid_spread(self, window, side: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The validity mask of ``window`` (inside the raster) at pixels spread evenly over it, at
        most ``side`` x ``side`` of them (all of them in a smaller window), and the window's rows and
        columns they are at: a cheap look at how much of a large window has data.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value.
            CorruptFileError: see :func:`read_pixels`.
        """
        from rasterio.enums import Resampling

        h, w = int(window.height), int(window.width)
        rows, cols = spread(min(side, h), h), spread(min(side, w), w)
        _, valid = self._stored_and_valid(window, out_shape=(len(self._indexes), len(rows), len(cols)),
                                          resampling=Resampling.nearest)
        return valid, rows, cols

    def read_overview(self, side: int) -> tuple[np.ndarray, np.ndarray, Grid]:
        """:meth:`read` of the whole image at most ``side`` x ``side`` pixels (nearest: about every
        ``k``-th pixel, from the file's overviews where it has them, else from strips of rows read in
        turn, each block once) and the grid of those pixels, whose bounds are the image's: a look at
        an image too large to read whole, in memory that does not grow with it. The whole image when
        it fits.

        Raises:
            as :meth:`read`.
        """
        from rasterio.transform import Affine

        g = self.grid
        step = max(1, -(-max(g.height, g.width) // side))
        if step == 1:
            return (*self.read(), g)
        h, w = -(-g.height // step), -(-g.width // step)
        raw = self._stored_spread(h, w)
        valid = valid_pixels(raw, self.nodata, self.path.name, ceiling=self._ceiling)
        grid = Grid(g.crs, tuple(Affine(*g.transform) @ Affine.scale(g.width / w, g.height / h))[:6], w, h)
        return to_features(raw, valid, self.scales, self.offsets, self.path.name), valid, grid

    def read(self, window=None) -> tuple[np.ndarray, np.ndarray]:
        """Features (h, w, 5) float32 = R, G, B, NIR reflectance and NDVI, and a validity mask (h, w).

        Invalid pixels (no data in any band, or a value no reflectance reaches:
        :data:`MAX_POSSIBLE_REFLECTANCE`) have features 0.

        Raises:
            InvalidDataError: on NaN reflectance without a NaN nodata value, or negative reflectance.
        """
        import rasterio
        from rasterio.windows import Window

        whole = window if window is not None else Window(0, 0, self._src.width, self._src.height)
        h, w = int(round(whole.height)), int(round(whole.width))
        rows = max(1, STRIP_PIXELS // max(w, 1))
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):  # (each block read once: not kept by GDAL as well)
            if h > rows:  # in strips of rows into one output: the stored values of all of it beside the features
                feats, valid = np.empty((h, w, 5), np.float32), np.empty((h, w), bool)  # were 49 bytes a pixel, for 21
                try:
                    for r0 in range(0, h, rows):
                        part = Window(whole.col_off, whole.row_off + r0, w, min(rows, h - r0))
                        raw, valid[r0 : r0 + rows] = self._stored_and_valid(part)
                        feats[r0 : r0 + rows] = to_features(raw, valid[r0 : r0 + rows], self.scales, self.offsets,
                                                             self.path.name)
                    return feats, valid
                except InvalidDataError:  # (said of the whole window, its counts and values, as before)
                    feats = valid = raw = None
            raw, valid = self._stored_and_valid(window)
        return to_features(raw, valid, self.scales, self.offsets, self.path.name), valid


def read_image(path: str | os.PathLike, band_map: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray, Grid]:
    """Whole image as ``(features (H, W, 5), valid (H, W), grid)``. For small images only."""
    with ImageReader(path, band_map) as reader:
        feats, valid = reader.read()
        return feats, valid, reader.grid


def label_band_index(src, class_map: ClassMap, band: str | int | None = None) -> int:
    """1-based band index of the label band: explicit (a band name, or a 1-based number as an int or
    as text, e.g. ``--label-band 2`` for a file whose bands have no names), by the class map's band
    name, or 1.

    Raises:
        BandError: no band of the name given, or a band number the file does not have.
    """
    names = [(d or "").upper() for d in band_names(src)]
    if isinstance(band, str) and band.strip().isdigit() and band.strip().upper() not in names:
        band = int(band)
    if isinstance(band, int):
        if not 1 <= band <= src.count:
            raise BandError(f"label band {band} does not exist: the file has {src.count} band"
                            f"{'s' if src.count != 1 else ''}; give a number from 1 to {src.count} or a band name")
        return band
    wanted = band or class_map.band
    if wanted:
        if wanted.upper() in names:
            return names.index(wanted.upper()) + 1
        if band:
            named = ", ".join(d or "unnamed" for d in band_names(src))
            raise BandError(f"label band {band!r} not found (the file's {src.count} band(s): {named}); give one of "
                            "their names, or the band's number (1 = the first)")
    return 1


def read_labels(
    path: str | os.PathLike,
    class_map: ClassMap,
    grid: Grid | None = None,
    window=None,
    band: str | int | None = None,
) -> np.ndarray:
    """Crop mask (uint8: 1 crop, 0 not crop, 255 no data) of a label raster: of ``window`` (None: all)
    of the image on ``grid``, where given; a label raster on the image's pixel grid that covers more
    than the image (a larger tile) gives the image's part.

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError (if ``grid`` is given and the labels
        are on another grid: see :func:`_window_in_labels`), InvalidDataError (values that cannot be
        the class map's codes).
    """
    return _mask_of(_read_label_band(path, class_map, grid, window, band), class_map)


def read_label_classes(path: str | os.PathLike, class_map: ClassMap, grid: Grid | None = None, window=None,
                       band: str | int | None = None, checked: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The crop mask (as :func:`read_labels`) and the raw class codes (int16, -1 wherever the mask
    is no data) of a label raster, from one read; ``checked=False``: a strip of a raster whose codes
    :func:`check_label_file` checked as a whole (a strip alone may look like another product's).

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError, InvalidDataError: as :func:`read_labels`.
    """
    raw = _read_label_band(path, class_map, grid, window, band, checked)
    mask = _mask_of(raw, class_map)  # checks that the values are class codes before they become int16
    codes = np.full(mask.shape, -1, np.int16)
    known = mask != NODATA
    np.copyto(codes, np.ma.getdata(raw), where=known, casting="unsafe")  # (no filled copy, nor one of the known)
    return mask, codes


def _mask_of(raw: np.ma.MaskedArray, class_map: ClassMap) -> np.ndarray:
    """Crop mask of a masked label band (masked = no data).

    Raises:
        InvalidDataError: values that cannot be the class map's codes.
    """
    mask = class_map.to_mask(raw.filled(0 if raw.dtype.kind in "iu" else np.nan))
    if np.ma.is_masked(raw):
        mask[np.ma.getmaskarray(raw)] = NODATA
    return mask


def check_real_numbers(src, path: str | os.PathLike, what: str) -> None:
    """Refuse a raster whose pixels are not real numbers (complex values, as radar data stores them).

    Raises:
        InvalidDataError: a complex data type.
    """
    dtype = np.dtype(src.dtypes[0])
    if dtype.kind not in "biuf":
        raise InvalidDataError(f"{Path(path).name} stores {dtype.name} values, not {what}; give an image of "
                               "real numbers (integers or floats)")


def _window_in_labels(grid: Grid | None, labels: Grid, window, path):
    """The window of a label file on ``labels`` to read for ``window`` (None: all) of an image on
    ``grid``: the same one where the file is on the image's grid; moved where the file lies on the
    image's pixel grid (a larger tile of the same product, e.g. CDL, or labels of only some of the
    image's fields: the window's part beyond the file is no data, see :func:`read_padded`).

    Raises:
        GridMismatchError: the file is on another grid, or on the image's pixels but beside the image
            or of its size but moved (an export off by some pixels).
    """
    from rasterio.windows import Window

    if grid is None or grid.same_as(labels):
        return window
    inside = window_within(grid, labels)
    offset = pixel_offset(grid, labels) if inside is None else None  # (column, row) of the image in the file
    # labels overlapping the image (the rest is no data), unless they are of its size: a copy moved by
    # some pixels is a mistake (an export off by a pixel), not labels of part of it
    # (both placed, by a CRS or a geotransform of their own: a TIFF without one has GDAL's identity, "the
    # same pixels" by default)
    if (offset is not None and labels.shape != grid.shape and grid.placed and labels.placed
            and -grid.width < offset[0] < labels.width and -grid.height < offset[1] < labels.height):
        inside = Window(offset[0], offset[1], grid.width, grid.height)
    if inside is None:
        check_same_grid(grid, labels, path)  # (raises, saying how the grids differ)
    if window is None:
        return inside
    return Window(window.col_off + inside.col_off, window.row_off + inside.row_off, window.width, window.height)


def _read_label_band(path, class_map: ClassMap, grid: Grid | None, window, band: str | int | None,
                     checked: bool = True) -> np.ma.MaskedArray:
    """The label band as a masked array (masked = the file's no data); ``checked``: its codes checked
    (False: a strip of a raster whose codes :func:`check_label_file` checked as a whole).

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError.
        InvalidDataError: the codes are evidently another product's, or a 0/1 crop mask declares a class as
            no data (core.labels.check_label_codes).
    """
    from core.labels import check_label_codes

    with _open(path) as src:
        window = _window_in_labels(grid, grid_of(src), window, path)
        idx, band_name, declared = _label_band(src, path, class_map, band)
        raw = read_padded(src, path, idx, window, 0, masked=True)
    if checked:
        check_label_codes(raw, class_map, band_name, Path(path).name, declared)
    return raw


def _label_band(src, path, class_map: ClassMap, band: str | int | None) -> tuple[int, str | None, float | None]:
    """The index of the open label raster's band of class codes, its name and its declared no data.

    Raises:
        InvalidDataError: no such band, or values that are not real numbers.
    """
    idx = label_band_index(src, class_map, band)
    check_real_numbers(src, path, "class codes")
    names = band_names(src)
    return idx, names[idx - 1] if 0 < idx <= len(names) else None, src.nodatavals[idx - 1]


#: Pixels in each strip of rows of a raster read in parts (:func:`row_strips`): a few tens of MB at once.
STRIP_PIXELS = 4 * 2**20


@contextmanager
def geotiff_writer(tmp: str | os.PathLike, profile: dict) -> Iterator:
    """``rasterio.open(tmp, "w", **profile)``, then the file checked to have reached the disk whole
    (:func:`check_written`): a writer to use inside :func:`core.files.replacing`, so that a file cut short
    never replaces anything.

    Raises:
        OSError: the file written did not reach the disk whole (a full disk, a file size limit).
    """
    import rasterio

    with rasterio.open(tmp, "w", **profile) as dst:
        yield dst
    check_written(tmp)


def check_written(path: str | os.PathLike, name: str | os.PathLike | None = None) -> None:
    """Check that a GeoTIFF just written reached the disk whole: it opens, and each block of each band lies
    inside the file. GDAL writes its last blocks and its header when the file is closed, and rasterio does not
    raise when that fails: a full disk left a truncated file, which was renamed into place (over the file it
    replaced) with "wrote ..." and exit status 0. (The blocks' places are read from the header, not their
    pixels: 40 ms for a 6,144 px square image of 4 bands, where reading it back took 4 s.) ``name``: the
    output the file is to become, said in the error in place of ``path`` (a file of a hidden staging folder,
    whose name means nothing to a user).

    Raises:
        OSError: the file cannot be opened or a block lies beyond its end (EIO, with GDAL's words).
    """
    import errno

    import rasterio
    from rasterio.errors import RasterioError

    said = str(name or path)

    def refused(why: str) -> OSError:
        # (GDAL's words name the file written, by its path or its name)
        why = why.replace(str(path), Path(said).name).replace(Path(path).name, Path(said).name)
        return OSError(errno.EIO, f"the GeoTIFF did not reach the disk whole ({why}), so it was not kept", said)

    size = os.path.getsize(path)
    try:
        with rasterio.open(path) as src:
            for band in range(1, src.count + 1):
                for (row, col), _ in src.block_windows(band):
                    offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
                    length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
                    if not offset or not length or int(offset) + int(length) > size:
                        raise refused(f"block {col},{row} of band {band} is missing; the file ends at {size:,} bytes")
    except RasterioError as err:
        raise refused(final_name(first_line(err))) from None


def row_strips(height: int, width: int, pixels: int | None = None) -> list[tuple[int, int]]:
    """Rows ``(start, stop)`` of strips of about ``pixels`` each (None: :data:`STRIP_PIXELS`; at least
    one row) of a ``height`` x ``width`` raster, top to bottom."""
    rows = max(1, (pixels or STRIP_PIXELS) // max(width, 1))
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def check_label_file(path: str | os.PathLike, class_map: ClassMap, grid: Grid | None = None, window=None,
                     band: str | int | None = None, strip_pixels: int | None = None) -> CodeCounts | None:
    """The checks of :func:`read_labels` on all of a label raster's codes of ``window`` (None: all)
    on ``grid`` (see :func:`_window_in_labels`), read in strips of rows so that memory does not grow
    with the raster: then its strips can be read with ``checked=False``. Returns the codes' counts
    (:class:`core.labels.CodeCounts`; None for a window of no pixel).

    Raises:
        InputNotFoundError, CorruptFileError, GridMismatchError: as :func:`read_labels`.
        InvalidDataError: as :func:`core.labels.check_code_counts` and :meth:`ClassMap.refuse_non_codes`.
    """
    import rasterio
    from rasterio.windows import Window

    from core.labels import check_code_counts

    with _open(path) as src, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        window = _window_in_labels(grid, grid_of(src), window, path) or Window(0, 0, src.width, src.height)
        idx, band_name, declared = _label_band(src, path, class_map, band)
        found = None
        for start, stop in row_strips(int(window.height), int(window.width), strip_pixels):
            strip = Window(window.col_off, window.row_off + start, window.width, stop - start)
            part = CodeCounts.of(read_padded(src, path, idx, strip, 0, masked=True))
            found = part if found is None else found + part
    if found is None:  # (no pixel: nothing to judge)
        return None
    check_code_counts(found, class_map, band_name, Path(path).name, declared)
    class_map.refuse_non_codes(found.fraction, found.high, found.pixels, found.low)
    return found


def write_mask(path: str | os.PathLike, mask: np.ndarray, grid: Grid) -> Path:
    """Write a crop mask (uint8 1/0, 255 = no data) on ``grid`` as a one-band GeoTIFF, atomically
    (temporary name, then rename; an existing file is replaced)."""
    return _write_bands(path, mask.astype(np.uint8)[None], grid, NODATA, ("crop",))


def write_codes(path: str | os.PathLike, codes: np.ndarray, grid: Grid, description: str = "class") -> Path:
    """Write class codes (int16, -1 = no data; :func:`read_label_classes`) on ``grid``, atomically."""
    return _write_bands(path, codes.astype(np.int16, copy=False)[None], grid, -1, (description,))  # (no copy of int16)


def write_reflectance(path: str | os.PathLike, feats: np.ndarray, valid: np.ndarray, grid: Grid) -> Path:
    """Write R, G, B, NIR reflectance (``feats[..., :4]``, (h, w, >= 4)) on ``grid`` as float32 with
    NaN = no data where not ``valid``, bands described, atomically: the images that scenes and
    resampled copies are made of.

    A valid pixel of reflectance 0 in every band (negatives are clipped to 0) is written as the
    smallest positive float32 instead: zero in every band reads as no data (:func:`core.reflectance.valid_pixels`),
    and the pixel would drop out of predictions, areas and metrics."""
    if feats.shape[:2] != grid.shape or valid.shape != grid.shape:
        raise ValueError(f"features are {feats.shape[1]}x{feats.shape[0]} px, grid is {grid.width}x{grid.height}")

    def strip(r0: int, r1: int) -> np.ndarray:
        v = valid[r0:r1]
        data = lift_zeros(np.moveaxis(feats[r0:r1, :, :4], -1, 0).astype(np.float32), v)
        data[:, ~v] = np.nan
        return data

    return _write_bands(path, strip, grid, float("nan"), INPUT_BANDS, dtype="float32")


def _write_bands(path: str | os.PathLike, bands: np.ndarray | Callable[[int, int], np.ndarray], grid: Grid, nodata,
                 descriptions: Sequence[str], dtype: str | None = None) -> Path:
    """Write ``bands`` on ``grid``, one band per of ``descriptions``, as a tiled, deflated GeoTIFF,
    atomically (temporary name, then rename; an existing file is replaced). ``bands``: a (count, h, w)
    array, or a function of a strip of rows (r0, r1) that makes its (count, r1 - r0, w) bands of
    ``dtype`` when it is written (no copy of a whole raster: 200 MB for a 15 Mpx scene).

    Deflate at level 1 on every core: 1.4 s for a 15 Mpx scene where the default level took 6 s, for
    files 2% larger."""
    import rasterio
    from rasterio.windows import Window

    from core.files import replacing

    path = Path(path)
    h, w = grid.shape
    if not callable(bands):
        array = bands
        if array.shape[1:] != (h, w):
            raise ValueError(f"bands are {array.shape[2]}x{array.shape[1]} px, grid is {grid.width}x{grid.height}")
        bands, dtype = (lambda r0, r1: array[:, r0:r1]), array.dtype.name
    profile = {"driver": "GTiff", "width": w, "height": h, "count": len(descriptions), "dtype": dtype, "nodata": nodata,
               "transform": rasterio.Affine(*grid.transform), "compress": "deflate", "zlevel": 1,
               "num_threads": "ALL_CPUS", "tiled": w >= 256 and h >= 256}
    if grid.crs:
        profile["crs"] = grid.crs
    with replacing(path) as tmp, geotiff_writer(tmp, profile) as dst:
        for r0, r1 in row_strips(h, w):
            data = bands(r0, r1)
            if data.shape != (len(descriptions), r1 - r0, w):  # (GDAL would stretch it to the window, unsaid)
                raise ValueError(f"a strip of rows {r0}-{r1} is {data.shape}, not {(len(descriptions), r1 - r0, w)}")
            dst.write(data, window=Window(0, r0, w, r1 - r0))
        for i, description in enumerate(descriptions, start=1):
            dst.set_band_description(i, description)
    return path
