"""Local GeoTIFFs as a data source: the shipped sample scene, or a user's image (+ labels).

:meth:`LocalSource.fetch` cuts the region's window out of the image (and labels) and writes a
small scene: ``image.tif`` (float32 reflectance, bands R, G, B, NIR, NaN = no data, pixels outside
the region's polygon set to no data), ``labels.tif`` (binary mask 1/0/255) and, where the region is
not the whole image, ``context.tif`` (the window grown by :data:`CONTEXT_MARGIN` pixels, and to at
least :data:`CONTEXT_LEAST` pixels a side where the image allows, unmasked, which prediction sees).
The scene keeps the source's CRS and transform; a non-georeferenced source stays non-georeferenced.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from core.config import MIN_REGION_SIDE
from core.errors import CropMapError, InputNotFoundError, InvalidDataError, NoDataError, RegionError
from core.field_labels import is_fields_file
from core.files import (MAX_UPLOAD_BYTES, limit_text, move_into_place, safe_stem, staging_dir, taken_mark,
                        write_bytes_whole)
from core.labels import NODATA, crop_pixels, get_class_map, label_map_warning, labelled_pixels
from core.grid import Grid, crs_words, place_words, window_grid
from core.raster import (ImageReader, band_map_check, check_label_file, file_bands, read_label_classes, write_codes,
                         write_mask, write_reflectance)
from core.geometry import LONLAT_CRS
from core.region import PixelWindow, Region
from core.region_check import WindowCheck, check_region
from core.sources.base import (CODES_FILE, CONTEXT_FILE, CONTEXT_LEAST, CONTEXT_MARGIN, Progress, RegionCheck,
                               SCENE_IMAGE, Scene, scene_files, scene_from_meta, scene_record)
from core.sources.base import complete_scene as _complete_scene

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE_DIR = ROOT / "assets" / "sample"
SAMPLE_IMAGE = SAMPLE_DIR / "sample_rgbn.tif"
SAMPLE_LABELS = SAMPLE_DIR / "sample_cdl.tif"
SAMPLE_LABEL_MAP = "cdl"
#: The sample's pixels are Landsat 8's 30 m (assets/sample/README.md); the file has no CRS to say so.
SAMPLE_PIXEL_SIZE_M = 30.0
SAMPLE_TITLE = "Sample scene: Landsat 8, 2015-09-02, northern Great Plains, USA (not georeferenced)"
SAMPLE_ATTRIBUTION = (
    "Ag-Net Sample Training Dataset (Ziheng Sun, 2019, MIT); Landsat 8 OLI (USGS) and "
    "USDA NASS Cropland Data Layer 2015 (public domain)"
)
#: A usable region with image data in less of it than this is accepted with a note saying so.
LOW_DATA_SHARE = 0.5
#: a georeferenced image's whole-image region follows its edges with a point every this many pixels
#: (more apart on an image over FOOTPRINT_MAX_POINTS times as long a side)
FOOTPRINT_STEP_PX, FOOTPRINT_MAX_POINTS = 32, 512
#: Largest region (pixels) a local source fetches for the dashboard.
MAX_REGION_PIXELS = 4096 * 4096
SCENE_VERSION = 6  # 2: scenes keep the label product's class codes (codes.tif); 3: and a context image; 4: dark pixels kept;
# 5: context >= CONTEXT_LEAST; 6: the window of a region's part on the image (a part beyond it widened it)


class LocalSource:
    """An image GeoTIFF (bands R, G, B, NIR) with optional labels on the same grid.

    Raises (on construction):
        InputNotFoundError: if a file does not exist.
    """

    name = "local"

    def __init__(
        self,
        image_path: str | os.PathLike,
        labels_path: str | os.PathLike | None = None,
        label_map: str | None = None,
        title: str | None = None,
        attribution: str = "",
        band_map: dict[str, int] | None = None,
        min_side: int = MIN_REGION_SIDE,
        max_pixels: int = MAX_REGION_PIXELS,
        pixel_size_m: float | None = None,
    ):
        self.image_path = Path(image_path)
        #: ground size of the pixels (m) where the image's grid cannot say it (no CRS), from what is
        #: known of the image (the sample: Landsat 8, 30 m); a scene of it passes it on to training
        self.pixel_size_m = pixel_size_m
        self.labels_path = Path(labels_path) if labels_path else None
        self.label_map = label_map if self.labels_path else None
        self.title = title or self.image_path.name
        self.attribution = attribution
        self.band_map = band_map
        self.min_side = min_side
        self.max_pixels = max_pixels
        for p in (self.image_path, self.labels_path):
            if p is not None and not p.exists():
                raise InputNotFoundError(f"file not found: {p}")
        if self.labels_path is not None and self.label_map is None:
            raise InvalidDataError("labels were given without a label map (e.g. cdl, worldcover, binary)")

    @classmethod
    def sample(cls) -> "LocalSource":
        """The shipped sample scene (not georeferenced, with CDL labels)."""
        return cls(SAMPLE_IMAGE, SAMPLE_LABELS, SAMPLE_LABEL_MAP, SAMPLE_TITLE, SAMPLE_ATTRIBUTION,
                   pixel_size_m=SAMPLE_PIXEL_SIZE_M)

    def available(self) -> tuple[bool, str]:
        """(True, description) when the image opens; (False, the reason) otherwise."""
        try:
            grid = self.grid()
        except CropMapError as err:
            return False, str(err)
        # short: it stands in the sidebar (the sample's title says "not georeferenced" already)
        where = (f", {crs_words(grid.crs)}" if grid.georeferenced else
                 "" if "not georeferenced" in self.title else " (not georeferenced)")
        return True, f"{self.title}: {grid.width:,} x {grid.height:,} px{where}"

    def grid(self) -> Grid:
        """The image grid.

        Raises:
            InputNotFoundError, CorruptFileError, BandError: if the image cannot be used.
        """
        try:
            st = os.stat(self.image_path)
            version = (st.st_mtime_ns, st.st_size)
        except OSError:  # ImageReader says what is wrong, in the project's words (errors are not kept)
            version = None
        bands = tuple(sorted(self.band_map.items())) if self.band_map else None
        return _checked_grid(str(self.image_path), bands, version)

    def full_region(self) -> Region:
        """The whole image as a region (image coordinates, or lon/lat of its footprint).

        Raises:
            as :meth:`grid`; InvalidDataError: a local CRS, or longitudes past 180 (no lon/lat region).
        """
        return image_footprint(self.grid())

    def check_window(self, region: Region) -> WindowCheck:
        """Validation with the pixel window (see :func:`core.region_check.check_region`).

        Raises:
            as :meth:`grid` (for an unusable image, not for a bad region).
        """
        return check_region(region, self.grid(), self.min_side, self.max_pixels)

    def check_region(self, region: Region) -> RegionCheck:
        """Whether ``region`` is inside the image, at least one patch, within the size limit and over
        image data (a region mostly over no data passes, with a warning giving its share with data)."""
        try:
            res = self.check_window(region)
            share = self.data_share(region, res.window) if res.ok and res.window is not None else None
        except CropMapError as err:
            return RegionCheck(False, str(err))
        if share is None or share >= LOW_DATA_SHARE:
            return RegionCheck(res.ok, res.message, res.area_ha, res.pixels, res.clipped, data_share=share)
        if share == 0:
            return RegionCheck(False, "the region lies over no image data (no data: grey hatching on the map); "
                                      "draw it over the image", res.area_ha, res.pixels, res.clipped)
        part = f"only {share:.0%}" if share >= 0.01 else "under 1%"
        return RegionCheck(True, res.message, res.area_ha, res.pixels, res.clipped,
                           f"{part} of the region has image data; the rest is no data (grey hatching on the map) "
                           "and is left out", share)

    def data_share(self, region: Region, window: PixelWindow) -> float:
        """Share of the region's pixels (inside its outline, in ``window``) that have image data,
        from at most 512 x 512 of them spread evenly over the window.

        Raises:
            InputNotFoundError, CorruptFileError, BandError, InvalidDataError: if the image cannot be read.
        """
        with ImageReader(self.image_path, self.band_map) as reader:
            valid, rows, cols = reader.read_valid_spread(window.to_rasterio())
            inside = region.mask(reader.grid, window)[np.ix_(rows, cols)]
        n = int(inside.sum())
        return float((valid & inside).sum()) / n if n else 0.0

    def scene_key(self, region: Region) -> str:
        """A short hash of the inputs (files, mtimes, region) naming the scene folder."""
        parts = [SCENE_VERSION, region.key(), json.dumps(self.band_map, sort_keys=True), self.label_map]
        for p in (self.image_path, self.labels_path):
            if p is not None:
                parts += [str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size]
        return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def fetch(self, region: Region, out_dir: Path, progress: Progress | None = None) -> Scene:
        """Write the region's scene into ``out_dir`` (reused when already there).

        Raises:
            RegionError: if the region is not valid for this image (the message says why).
            NoDataError: if the region holds no valid pixel.
            InputNotFoundError, CorruptFileError, BandError, GridMismatchError, InvalidDataError.
        """
        out_dir = Path(out_dir)
        check = self.check_window(region)
        if not check.ok or check.window is None:
            raise RegionError(check.message)
        window = check.window
        extra = {"row_off": window.row_off, "col_off": window.col_off, "height": window.height, "width": window.width,
                 "source": str(self.image_path)}
        meta = _complete_scene(out_dir)
        if meta is not None:
            return scene_from_meta(out_dir, meta)
        if progress:
            progress(0, 3, "reading the image")
        with ImageReader(self.image_path, self.band_map) as reader:
            grid = reader.grid
            context = context_window(window, grid)
            ctx_feats, ctx_valid = reader.read(context.to_rasterio())
        r0, c0 = window.row_off - context.row_off, window.col_off - context.col_off
        inside = region.mask(grid, window)
        feats = ctx_feats[r0 : r0 + window.height, c0 : c0 + window.width]
        valid = ctx_valid[r0 : r0 + window.height, c0 : c0 + window.width] & inside
        if not valid.any():
            raise NoDataError("the region holds no valid pixels (all no data); draw it over the image data")
        extra["region_pixels"] = int(inside.sum())  # the pixels inside the outline, with data or not
        if self.pixel_size_m and not grid.georeferenced:  # (a CRS says it itself)
            extra["pixel_size_m"] = float(self.pixel_size_m)
        # written into a staging folder and moved into place whole (a refused region leaves nothing behind);
        # another session cutting the same region meanwhile (one folder per source and region) keeps its
        # files: a scene completed there first is used, not renamed over (its time is in prediction keys)
        with staging_dir(out_dir, prefix=".scene-") as tmp:
            if progress:
                progress(1, 3, "writing the image")
            scene_grid = window_grid(grid, window)
            write_reflectance(tmp / SCENE_IMAGE, feats, valid, scene_grid)
            if context != window or not inside.all():  # else the scene is its own context
                write_reflectance(tmp / CONTEXT_FILE, ctx_feats, ctx_valid, window_grid(grid, context))
                extra["context"] = {"file": CONTEXT_FILE, "row_off": r0, "col_off": c0}
            labels_path = None
            if self.labels_path is not None and self.label_map is not None:
                if progress:
                    progress(2, 3, "writing the labels")
                # the crop mask, and the product's own classes too, so that errors can be told by class
                mask, codes = read_label_classes(self.labels_path, get_class_map(self.label_map), grid,
                                                 window.to_rasterio())
                mask[~inside] = NODATA
                codes[~inside] = -1
                write_mask(tmp / "labels.tif", mask, scene_grid)
                write_codes(tmp / CODES_FILE, codes, scene_grid)
                extra.update(codes=CODES_FILE, class_map=self.label_map)
                labels_path = out_dir / "labels.tif"
            scene = Scene(out_dir / SCENE_IMAGE, labels_path, "binary" if labels_path else None, grid.georeferenced,
                          self.title, self.attribution, extra)
            meta = scene_record(scene, tmp)
            (tmp / "scene.json").write_text(json.dumps(meta, indent=1))
            done = _complete_scene(out_dir)
            if done is not None:
                return scene_from_meta(out_dir, done)
            # scene.json last: it marks the scene as complete
            move_into_place([(tmp / n, out_dir / n) for n in [*scene_files(meta), "scene.json"]], tmp)
        if progress:
            progress(3, 3, "done")
        return scene


@functools.lru_cache(maxsize=32)
def _checked_grid(path: str, bands: tuple | None, version: tuple[int, int] | None) -> Grid:
    """The grid of an image opened as every step opens it (bands, scale, a sample of its pixels),
    kept per ``version`` of the file (modification time, size): a dashboard run asks for it several
    times, and each opening reads the sample again. A file that cannot be used raises every time."""
    with ImageReader(path, dict(bands) if bands else None) as reader:
        return reader.grid


def context_window(window: PixelWindow, grid: Grid, margin: int = CONTEXT_MARGIN,
                   least: int = CONTEXT_LEAST) -> PixelWindow:
    """``window`` grown by ``margin`` pixels on each side and, where that is under ``least`` pixels
    a side, further (evenly, then towards the side with room), all within the grid."""
    def span(off: int, size: int, total: int) -> tuple[int, int]:
        start, end = max(0, off - margin), min(total, off + size + margin)
        want = min(total, least)
        if end - start < want:  # centred on the window, then moved inside the grid: it keeps the margin
            start = min(max(0, off - (want - size) // 2), total - want)
            end = start + want
        return start, end - start

    top, height = span(window.row_off, window.height, grid.height)
    left, width = span(window.col_off, window.width, grid.width)
    return PixelWindow(top, left, height, width)


#: The first bytes of a TIFF (little- and big-endian) and a BigTIFF file.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _check_upload(data: bytes, name: str, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
    """Raises InvalidDataError unless ``data`` is a TIFF file of at most ``max_bytes`` (see :func:`save_upload`)."""
    if not data:
        raise InvalidDataError(f"the uploaded file {name} is empty")
    if len(data) > max_bytes:
        raise InvalidDataError(f"{name} is {limit_text(len(data))}; uploads are limited to {limit_text(max_bytes)}")
    if data[:4] not in TIFF_MAGIC:
        raise InvalidDataError(f"{name} is not a GeoTIFF (it does not start as a TIFF file does); save the raster as "
                               "a GeoTIFF, e.g. gdal_translate -of GTiff IN OUT.tif, or export it from QGIS as GeoTIFF")


#: the most pixels an uploaded raster may hold (a Sentinel-2 tile is 120 million), the most bytes one of its
#: blocks (strip or tile) may expand to, and the most bands: a small compressed file can claim a huge
#: image or a single strip of gigabytes (a decompression bomb, which filled the server's memory)
MAX_UPLOAD_PIXELS = 1_000_000_000
MAX_UPLOAD_BLOCK_BYTES = 256 * 1024 * 1024
MAX_UPLOAD_BANDS = 64


def check_upload_raster(path: str | os.PathLike, name: str) -> None:
    """Refuse an uploaded raster whose header claims more than an upload may hold (its header is
    read; no pixel): :data:`MAX_UPLOAD_PIXELS`, :data:`MAX_UPLOAD_BLOCK_BYTES`, :data:`MAX_UPLOAD_BANDS`.
    A file that cannot be opened is left to the checks that read it (they say why).

    Raises:
        InvalidDataError: too many pixels, blocks (of the image or of its overviews) too large once
            decompressed, or too many bands.
    """
    import rasterio
    from rasterio.enums import Interleaving

    def block_of(src) -> tuple[int, int, int]:  # (rows, cols, bytes once decompressed)
        rows, cols = src.block_shapes[0] if src.count else (1, 1)
        item = max((np.dtype(d).itemsize for d in src.dtypes), default=1)
        return rows, cols, rows * cols * item * (src.count if src.interleaving == Interleaving.pixel else 1)

    try:
        with rasterio.open(path) as src:
            width, height, count = src.width, src.height, src.count
            rows, cols, block = block_of(src)
            levels = len(src.overviews(1)) if count else 0
        # the overviews (a map of the whole image is read from them) have blocks of their own: a 1024 x 1024 px
        # upload whose overview claimed 4096 x 4096 px blocks took 0.55 GB to show
        overviews = []
        for level in range(levels):
            with rasterio.open(path, overview_level=level) as ovr:
                overviews.append(block_of(ovr))
    except (rasterio.errors.RasterioError, ValueError):
        return
    if width * height > MAX_UPLOAD_PIXELS:
        raise InvalidDataError(f"{name} holds {width:,} x {height:,} px, over the {MAX_UPLOAD_PIXELS:,} px an upload may "
                               "hold; cut the part you need first (python -m core stack --bbox, or gdal_translate "
                               "-projwin)")
    if count > MAX_UPLOAD_BANDS:
        raise InvalidDataError(f"{name} has {count:,} bands, over the {MAX_UPLOAD_BANDS} an upload may have; keep the "
                               "bands you need (e.g. gdal_translate -b 1 -b 2 -b 3 -b 4)")
    if block > MAX_UPLOAD_BLOCK_BYTES:
        raise InvalidDataError(f"{name} is stored in blocks of {cols:,} x {rows:,} px, {limit_text(block)} each once "
                               f"decompressed, over the {limit_text(MAX_UPLOAD_BLOCK_BYTES)} an upload may use; save it "
                               "tiled (gdal_translate -co TILED=YES IN OUT.tif)")
    for rows, cols, block in overviews:
        if block > MAX_UPLOAD_BLOCK_BYTES:
            raise InvalidDataError(f"{name}'s overviews are stored in blocks of {cols:,} x {rows:,} px, {limit_text(block)} "
                                   f"each once decompressed, over the {limit_text(MAX_UPLOAD_BLOCK_BYTES)} an upload may "
                                   "use; save it without them (gdal_translate IN OUT.tif) or build them again "
                                   "(gdaladdo OUT.tif)")


def _upload_name(name: str) -> str:
    """The file name of an upload, without any folder a browser sent with it (either slash)."""
    return Path(name.replace("\\", "/")).name


def save_upload(data: bytes, name: str, out_dir: str | os.PathLike, max_bytes: int = MAX_UPLOAD_BYTES,
                created: list[Path] | None = None) -> Path:
    """Store an uploaded GeoTIFF as ``out_dir/<content hash>/<name>`` (suffix lower-cased, unsafe
    characters replaced), so that messages about the file name the file the user chose. A file
    written by this call (not there already) is appended to ``created`` (for :func:`discard_uploads`).

    Only TIFF (and BigTIFF) files are taken: GDAL tells a format by a file's content, not its name, and
    other formats can read other files of the server (a VRT's bands may point at any path or URL).

    Raises:
        InvalidDataError: if the upload is empty, larger than ``max_bytes`` or not a TIFF file, or its header
            claims more than an upload may hold (:func:`check_upload_raster`).
    """
    _check_upload(data, name, max_bytes)
    base = _upload_name(name)
    stem = safe_stem(base, "upload")
    suffix = re.sub(r"[^a-z0-9.]", "", Path(base).suffix.lower()) or ".bin"
    folder = Path(out_dir) / hashlib.sha1(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{suffix}"
    if not path.exists():
        write_bytes_whole(path, data)
        if created is not None:
            created.append(path)
    else:  # taken by this upload too (another session's, say): a refusal of the one that stored it keeps it
        taken_mark(path).touch()
    check_upload_raster(path, base)  # (before any pixel is read)
    return path


@contextlib.contextmanager
def discarded_if_refused() -> Iterator[list[Path]]:
    """A list for :func:`save_upload`'s ``created``: the uploads it holds are removed when the block
    fails (a file refused when checked), and kept when it ends well. A refusal (CropMapError) names them
    by their file names, not by where they were stored."""
    created: list[Path] = []
    try:
        yield created
    except CropMapError as err:
        discard_uploads(created)
        # the user's file by its name, not by where the server stored it ("/srv/work/uploads/06cc.../a.tif")
        text = str(err)
        for path in created:
            text = text.replace(str(path), Path(path).name)
        if text == str(err) or len(err.args) != 1:
            raise
        raise type(err)(text) from None
    except BaseException:
        discard_uploads(created)
        raise


def discard_uploads(paths: list[Path]) -> None:
    """Remove uploads that :func:`save_upload` stored (``<content hash>/<name>``, with their folder when
    nothing else is in it), e.g. files refused when checked, which piled up in the work folder; one
    that another upload took meanwhile (its mark) is kept."""
    for path in paths:
        path = Path(path)
        if not re.fullmatch(r"[0-9a-f]{16}", path.parent.name) or taken_mark(path).exists():
            continue
        try:
            path.unlink(missing_ok=True)
            path.parent.rmdir()  # (only when empty: the same content under another name stays)
        except OSError:
            pass


#: Largest GeoJSON of surveyed fields taken from an upload (its JSON is parsed in the server's memory)
MAX_FIELDS_UPLOAD_BYTES = 50 * 1024 * 1024


def burn_uploaded_fields(data: bytes, name: str, grid: Grid, upload_dir: str | os.PathLike, prop: str | None = None,
                         created: list[Path] | None = None) -> tuple[Path, list[str]]:
    """Burn an uploaded GeoJSON of surveyed fields onto the image's ``grid`` (:mod:`core.field_labels`;
    ``prop`` None: :func:`core.field_labels.pick_class_property`) as the label raster
    ``upload_dir/<hash>/<name's stem>_labels.tif`` (appended to ``created`` when written); returns its
    path and what was left out, in words.

    Raises:
        InvalidDataError: the upload is empty; RegionError, ConfigError, InvalidDataError, NoDataError: as
            :func:`core.field_labels.load_fields`, :func:`~core.field_labels.pick_class_property` and
            :func:`~core.field_labels.burn_fields`.
    """
    from core.field_labels import burn_fields, load_fields, pick_class_property

    if not data:
        raise InvalidDataError(f"the uploaded file {name} is empty")
    base = _upload_name(name)
    obj = load_fields(data, base, MAX_FIELDS_UPLOAD_BYTES)
    prop = prop or pick_class_property(obj, base)
    burnt = burn_fields(obj, grid, prop, base)
    key = hashlib.sha1(data + json.dumps([prop, grid.crs, list(grid.transform), grid.width, grid.height]).encode())
    path = Path(upload_dir) / key.hexdigest()[:16] / f"{safe_stem(base, 'fields')}_labels.tif"
    if not path.exists():
        write_codes(path, burnt.codes, grid, description=prop)
        if created is not None:
            created.append(path)
    return path, burnt.notes(base)


def _past_180_fix(lon: Sequence[float], lat: Sequence[float]) -> str:
    """How to warp a lon/lat image whose footprint (``lon``, ``lat``) runs past 180 degrees so that
    regions can be drawn on it: to -180..180, or, for one across the 180th meridian (which that would
    spread over the whole world), to its UTM zone, or cut in two where no zone holds it."""
    from core.ee.composites import utm_crs

    east = [(x + 360) % 360 for x in lon]  # (0-360: an image across the 180th meridian is whole there)
    if not min(east) < 180 < max(east):
        return "warp it to -180..180 first, e.g. gdalwarp -t_srs EPSG:4326 --config CENTER_LONG 0 IN.tif OUT.tif"
    mid_lon, mid_lat = (sum(east) / len(east) + 180) % 360 - 180, sum(lat) / len(lat)
    if max(east) - min(east) > 12 or not -80 <= mid_lat <= 84:  # (wider than a zone, or where UTM ends)
        return ("cut it at the 180th meridian into two images (gdalwarp -te with each side's bounds), or warp it to a "
                "CRS of its region (a polar one, EPSG:3031 or 3413, near a pole)")
    return f"warp it to its UTM zone, e.g. gdalwarp -t_srs {utm_crs(mid_lon, mid_lat)} IN.tif OUT.tif"


def image_footprint(grid: Grid) -> Region:
    """An image's grid as a region: in image coordinates, or the lon/lat of its footprint.

    Raises:
        InvalidDataError: a local CRS (no place on Earth), a lon/lat CRS on coordinates that are not degrees
            (a wrong tag), or longitudes past 180 (no lon/lat region can be placed on it).
    """
    grid.require_place_on_earth()
    if not grid.georeferenced:
        return Region.from_bbox(0, 0, grid.width, grid.height, crs="image", name="whole image")
    grid.require_degrees()  # (metres tagged as degrees: said as such, not as longitudes to warp)
    # The footprint itself, not its lon/lat bounding box: a UTM image is turned against the
    # meridians, and the box would overstate the area by several percent. Its edges are followed
    # point by point: a straight line in lon/lat between two corners bows off the image's straight
    # edge (0.07 px over 580 px of a 10 m UTM image, growing with the square of the length), and
    # the whole image was said to lie partly outside itself.
    from rasterio.transform import Affine
    from rasterio.warp import transform

    aff = Affine(*grid.transform)
    w, h = grid.width, grid.height
    corners = [aff @ (c, r) for c, r in ((0, 0), (w, 0), (w, h), (0, h))]
    lon, lat = transform(grid.crs, "EPSG:4326", [x for x, _ in corners], [y for _, y in corners])
    if max(lon) - min(lon) <= 180:  # (across the 180th meridian: its four corners, as the regions there take it)
        step = max(FOOTPRINT_STEP_PX, -(-max(w, h) // FOOTPRINT_MAX_POINTS))
        cols = [*range(0, w, step), w]
        rows = [*range(0, h, step), h]
        edge = ([(c, 0) for c in cols[:-1]] + [(w, r) for r in rows[:-1]]
                + [(c, h) for c in cols[:0:-1]] + [(0, r) for r in rows[:0:-1]])
        points = [aff @ (c, r) for c, r in edge]
        lon, lat = transform(grid.crs, "EPSG:4326", [x for x, _ in points], [y for _, y in points])
    if any(abs(x) > 180 for x in lon):  # a lon/lat image of 0-360 degrees (as climate grids have it)
        raise InvalidDataError(f"the image's longitudes run past 180 degrees (to {max(lon, key=abs):.8g}), so lon/lat "
                               f"regions cannot be placed on it; {_past_180_fix(lon, lat)} (the command line takes it "
                               "as it is)")
    ring = tuple(zip(lon, lat)) + ((lon[0], lat[0]),)
    return Region(LONLAT_CRS, ((ring,),), "whole image")


def validate_image(path: str | os.PathLike, band_map: dict[str, int] | None = None) -> Grid:
    """Open an image the way every step of the dashboard will (bands, scale, a sample of pixels, a
    place on a map) and return its grid.

    Raises:
        InputNotFoundError, CorruptFileError, BandError, InvalidDataError (also for a local CRS:
            no place on a map, and for longitudes past 180: no region can be drawn on it).
    """
    with ImageReader(path, band_map) as reader:
        image_footprint(reader.grid)  # (a place on Earth, where the pages can draw a region: said before it is used)
        h, w = reader.shape
        from rasterio.windows import Window

        reader.read(Window(0, 0, min(w, 256), min(h, 256)))
        return reader.grid


def label_map_of_upload(data: bytes, name: str) -> str | None:
    """The label map an uploaded label raster names by its band (e.g. a band described ``LC``:
    WorldCereal), for a form to start on; None when its bands name no product or it cannot be read
    (the reading proper says why). Read in memory (a TIFF only, as :func:`save_upload` takes):
    nothing is stored before the user chooses to use it.

    Raises:
        InvalidDataError: the upload is empty, too large or not a TIFF file.
    """
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile

    from core.labels import label_map_named_by
    from core.raster import band_names

    _check_upload(data, name)
    try:
        with MemoryFile(data) as mem, mem.open() as src:
            return label_map_named_by(band_names(src))
    except RasterioError:  # (unreadable: "Use these files" says why)
        return None


def validate_labels(path: str | os.PathLike, label_map: str, grid: Grid) -> dict:
    """Read a label raster through ``label_map`` on ``grid``; returns crop/valid counts, the share of
    the grid's pixels that have a label (``labelled_share``: labels of part of the image leave the rest
    unlabelled) and a warning that the label map may not be the labels' product
    (:func:`core.labels.label_map_warning`, or None).

    Counted from the codes' counts of one read in strips of rows (:func:`core.raster.check_label_file`), so that
    memory does not grow with the raster (an upload of a few MB, well compressed, may hold a billion pixels:
    read whole, it took gigabytes of the server's memory).

    Raises:
        ConfigError (unknown map), InputNotFoundError, CorruptFileError, GridMismatchError,
        InvalidDataError, NoDataError (no labelled pixel).
    """
    from core.errors import NoDataError

    class_map = get_class_map(label_map)
    found = check_label_file(path, class_map, grid)  # (None: no pixel of the labels under the image)
    valid = labelled_pixels(found, class_map) if found is not None else 0
    if valid == 0:
        raise NoDataError(f"{Path(path).name} holds no labelled pixel with label map {label_map!r}; check the label map")
    return {"valid": valid, "crop": crop_pixels(found, class_map), "labelled_share": valid / (grid.width * grid.height),
            "warning": label_map_warning(found, class_map, Path(path).name, file_bands(path))}


@dataclass(frozen=True)
class UploadedFiles:
    """An uploaded image (and labels) made a local source by :func:`use_uploaded_files`."""

    #: the source's spec (kind "local": image, labels, label_map, title, band_map), for the session
    spec: dict
    grid: Grid
    #: " (averaged from W x H px of P m)" where the image was averaged to coarser pixels, else ""
    averaged_from: str = ""
    #: :func:`validate_labels`' counts of the labels in use, or None without labels
    label_counts: dict | None = None
    #: what a GeoJSON of surveyed fields left out, in words (:func:`burn_uploaded_fields`)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """The outcome in words: the image's size, its place, and its labels' counts."""
        g = self.grid
        text = f"Using {self.spec['title']}: {g.width:,} x {g.height:,} px{self.averaged_from}, {place_words(g)}."
        if self.label_counts is not None:
            share = self.label_counts["labelled_share"]  # (labels of the fields surveyed: the rest has no label)
            part = f" ({share:.0%} of the image's pixels; the others have no label)" if share < 0.995 else ""
            text += (f" Labels: {self.label_counts['valid']:,} labelled pixels{part}, "
                     f"{self.label_counts['crop']:,} crop.")
        return text

    @property
    def warning(self) -> str | None:
        """That the label map may not be the labels' product (:func:`validate_labels`), and what the fields
        of a GeoJSON left out, band numbers that contradict the image's band names, and what reading an
        image averaged on upload warned of (its copy no longer shows it); None when there is nothing to say."""
        said = [w for w in ((self.label_counts or {}).get("warning"), *self.notes) if w]
        return "; ".join(said) if said else None


def use_uploaded_files(image: bytes, image_name: str, upload_dir: str | os.PathLike, labels: bytes | None = None,
                       labels_name: str | None = None, label_map: str = "cdl", band_spec: str | None = None,
                       pixel_size_m: float | None = None, labels_property: str | None = None) -> UploadedFiles:
    """Store an uploaded image GeoTIFF (and labels on its pixels, or a GeoJSON of surveyed fields with
    their class in ``labels_property``, burnt onto its grid: :func:`burn_uploaded_fields`) under
    ``upload_dir`` and check them as every step will read them; with ``pixel_size_m``, the source is their copy averaged to pixels
    that size (:func:`core.resample.resampled_copies`; the labels checked as given first, so that a
    refusal names the user's file). A refusal removes what this call stored.

    Raises:
        BandError: a bad ``band_spec`` or bands not found; InvalidDataError: not a TIFF, empty, too
            large, or values that are no reflectance; CorruptFileError, GridMismatchError, NoDataError,
            ConfigError: as :func:`validate_image` and :func:`validate_labels`, and
            :func:`core.resample.resampled_copies`; RegionError (and the others) as :func:`burn_uploaded_fields`.
    """
    from core.bands import parse_band_spec
    from core.resample import resampled_copies

    with discarded_if_refused() as created:
        band_map = parse_band_spec(band_spec.strip() if band_spec and band_spec.strip() else None)
        image_path = save_upload(image, image_name, upload_dir, created=created)
        grid = validate_image(image_path, band_map)
        notes: list[str] = []
        if labels is not None and is_fields_file(labels_name):
            labels_path, notes = burn_uploaded_fields(labels, labels_name, grid, upload_dir, labels_property, created)
        else:
            labels_path = (save_upload(labels, labels_name or "labels.tif", upload_dir, created=created)
                           if labels is not None else None)
        title, was = image_name, ""
        if pixel_size_m is not None:  # the copies are the source from here on (they name their bands)
            if labels_path is not None:
                validate_labels(labels_path, label_map, grid)
            was = f" (averaged from {grid.width:,} x {grid.height:,} px of {grid.pixel_size_m() or 0:.3g} m)"
            with ImageReader(image_path, band_map) as reader:  # (the copy's own no longer show, e.g. a fill read as no data)
                notes += reader.warnings
            image_path, labels_path = resampled_copies(image_path, pixel_size_m, labels_path,
                                                       label_map if labels_path else None, band_map, created=created)
            band_map, title = None, f"{Path(image_name).stem} ({pixel_size_m:g} m)"
            grid = validate_image(image_path)
        else:  # band numbers that contradict the file's band names (kept in the form from the file before): said
            notes += band_map_check(image_path, band_map)
        counts = validate_labels(labels_path, label_map, grid) if labels_path is not None else None
    spec = {"kind": "local", "image": str(image_path), "labels": str(labels_path) if labels_path else None,
            "label_map": label_map if labels_path else None, "title": title, "band_map": band_map}
    return UploadedFiles(spec, grid, was, counts, tuple(notes))
