"""Google Earth Engine as a data source: a region -> composite GeoTIFF + label GeoTIFF.

The image is a median cloud-masked composite (bands R, G, B, NIR, float32 reflectance 0-1,
nodata NaN) and the labels a crop mask (uint8 1/0, 255 no data; class map ``binary``) on the
same grid, both downloaded with ``computePixels`` in tiles (core.ee.pixels). For a land-cover
product the product's own class codes are downloaded (int16) and kept beside the mask, which is
made from them here with the same class map as for a local label raster; a user asset with a
given crop value comes down as the mask itself. Earth Engine is
initialised on first use, never at import; when it is not configured, :meth:`available`
says so and nothing else in the app is affected.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

from core.config import MIN_REGION_SIDE
from core.sources.base import (CODES_FILE, CONTEXT_FILE, Progress, RegionCheck, Scene, SCENE_IMAGE, complete_scene,
                               context_margin, scene_from_meta, scene_record)

#: Direct downloads above this many pixels (per band) should be batch exports instead.
DEFAULT_MAX_PIXELS = 40_000_000
#: Masked composite pixels travel as this value and become NaN on disk.
SENTINEL = -9999.0
#: Class codes where the label product has no data (masked, or outside the region).
CODE_NODATA = -1

_ATTRIBUTION = {
    "landsat": "Landsat Collection 2 courtesy of the U.S. Geological Survey",
    "s2": "Contains modified Copernicus Sentinel-2 data; Cloud Score+ (Google)",
}
_LABEL_ATTRIBUTION = {
    "worldcover": "ESA WorldCover 2021 (CC BY 4.0)",
    "dynamicworld": "Dynamic World (Google, World Resources Institute)",
    "glcfcs30d": "GLC-FCS30D (Zhang et al. 2024, ESSD)",
    "cdl": "USDA NASS Cropland Data Layer",
    "asset": "user asset",
}


class EarthEngineSource:
    """Earth Engine behind the :class:`core.sources.base.Source` interface.

    Args:
        composite, labels: the recipes (default: the Camana preset's); ``preset`` picks both.
        project, secrets, env: passed to :func:`core.ee.auth.initialize`.
        max_workers: parallel computePixels requests.
        initialize: a zero-argument callable returning an ``EEStatus`` (tests inject a fake).
        compute, getinfo: injected ``computePixels`` / ``getInfo`` (tests and benchmarks).
    """

    name = "earthengine"

    def __init__(
        self,
        composite=None,
        labels=None,
        *,
        preset: str | None = None,
        project: str | None = None,
        secrets: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        max_workers: int = 8,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        overwrite: bool = True,
        reuse: bool = False,
        initialize: Callable[[], Any] | None = None,
        compute: Callable[[dict], Any] | None = None,
        getinfo: Callable[[Any], Any] | None = None,
    ):
        from core.ee.presets import CAMANA, get_preset

        base = get_preset(preset) if preset else CAMANA
        self.preset = base if preset else None
        self.composite = composite or base.composite
        self.labels = dated_labels(self.composite, labels if labels is not None else (
            base.labels if (preset or composite is None) else None))
        self.project = project
        self.secrets = secrets
        self.env = env if env is not None else os.environ
        self.max_workers = max_workers
        self.max_pixels = max_pixels
        self.overwrite = overwrite
        self.reuse = reuse
        self._initialize = initialize
        self._compute = compute
        self._getinfo = getinfo
        self._status = None

    # -------------------------------------------------------------- status
    def status(self):
        """The cached :class:`core.ee.auth.EEStatus` (initialises once; never raises)."""
        if self._status is None or not self._status.ok:
            if self._initialize is not None:
                from core.ee.auth import EEStatus
                from core.errors import EarthEngineError

                try:
                    self._status = self._initialize()
                except EarthEngineError as err:
                    self._status = EEStatus(False, self.project, "none", str(err))
            else:
                from core.ee.auth import status

                self._status = status(self.project, self.secrets, self.env)
        return self._status

    def available(self) -> tuple[bool, str]:
        """(True, "Earth Engine ready: project ...") or (False, what to set up)."""
        st = self.status()
        return bool(st.ok), st.message

    def _require_ready(self) -> None:
        from core.ee.errors import EENotConfiguredError

        st = self.status()
        if not st.ok:
            raise EENotConfiguredError(st.message)

    # -------------------------------------------------------------- viewing
    def map_layers(self, region, get_map_id: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]] | None = None,
                   attempts: int | None = None) -> list:
        """Earth Engine tile layers of the composite (true colour, false colour, NDVI) and the labels
        for ``region`` (:class:`core.ee.tiles.TileLayer`; URLs cached for less than their lifetime),
        each request tried at most ``attempts`` times (:class:`core.ee.errors.RetryPolicy`'s by default).

        Raises:
            EENotConfiguredError: if Earth Engine is not available;
            RegionError: if the region is not in longitude/latitude;
            EarthEngineError subclasses: when getMapId fails (after retries).
        """
        from core.ee.composites import region_geometry
        from core.ee.errors import RetryPolicy
        from core.ee.tiles import composite_layers, label_layers

        self._require_ready()
        geometry = region_geometry(region)
        policy = RetryPolicy() if attempts is None else RetryPolicy(attempts=attempts)
        layers = composite_layers(self.composite, geometry, get_map_id=get_map_id, policy=policy)
        if self.labels is not None:
            layers += label_layers(self.labels, geometry, get_map_id=get_map_id, policy=policy)
        return layers

    def export_jobs(self, region, kind: str, destination: str, name: str, *, train_points: tuple[int, int] = (275, 275),
                    test_points: tuple[int, int] = (50, 50), patch_size: int = 256, kernel_buffer: int | None = None,
                    points_per_task: int = 100, seed: int = 0, warnings: list[str] | None = None) -> list:
        """Unstarted batch exports of ``region`` (start them with core.ee.export.start_jobs):
        ``kind`` "patches" (training and test TFRecord patches at points stratified by the labels)
        or "image" (TFRecord image export for prediction, patches with a kernel overlap + mixer).
        What the user should know before starting them is appended to ``warnings`` (points that
        could not be counted).

        Raises:
            EENotConfiguredError; ConfigError: bad destination, name, sizes, or patches without labels;
            RegionError: a region not in longitude/latitude; NoDataError: no scene for the composite, or a
            class with fewer labelled pixels than the points asked for (:func:`core.ee.export.check_sample_points`).
        """
        from core.ee.composites import region_geometry, require_scenes
        from core.ee.export import (UNCOUNTED_POINTS, ImageExportConfig, PatchExportConfig, SampleConfig, check_sample_points,
                                    check_task_count, image_export_job, parse_destination, patches_past_region,
                                    training_export_jobs)
        from core.errors import ConfigError

        if kind not in ("patches", "image"):
            raise ConfigError(f"export kind must be 'patches' or 'image', got {kind!r}")
        dest = parse_destination(destination)
        geometry = region_geometry(region)
        self._require_ready()
        if kind == "image":
            cfg = ImageExportConfig(patch_size=patch_size, kernel_buffer=32 if kernel_buffer is None else kernel_buffer)
            require_scenes(self.composite, geometry, self._getinfo)  # (an export of none failed after its time in the queue)
            return [image_export_job(self.composite, geometry, dest, name=name, image_cfg=cfg)]
        if self.labels is None:
            raise ConfigError("training patches need labels: choose a label product in the Earth Engine settings")
        sample = SampleConfig(tuple(train_points), tuple(test_points), seed=seed)
        patches = PatchExportConfig(patch_size=patch_size, kernel_buffer=kernel_buffer or 0, points_per_task=points_per_task)
        check_task_count(sample, patches)  # (before Earth Engine is asked)
        require_scenes(self.composite, geometry, self._getinfo)
        found = check_sample_points(self.composite, self.labels, geometry, sample, self._getinfo)  # (ONE getInfo, on the button; the scene count above is another)
        if found is None and warnings is not None:
            warnings.append(UNCOUNTED_POINTS)
        if warnings is not None and (small := patches_past_region(self.composite, geometry, patches)) is not None:
            warnings.append(small)
        return training_export_jobs(self.composite, self.labels, geometry, dest, name=name, sample=sample, patches=patches)

    def settings(self) -> dict:
        """The composite and label recipes as plain data (:func:`recipes_from_settings` reads them back)."""
        return {"composite": asdict(self.composite), "labels": asdict(self.labels) if self.labels else None}

    # -------------------------------------------------------------- regions
    def _keeps_codes(self) -> bool:
        """Whether the labels come down as the product's class codes (a land-cover product) rather
        than as a crop mask made in Earth Engine (a user asset with a given crop value)."""
        return self.labels is not None and self.labels.product != "asset"

    def plans(self, region):
        """(geometry, image plan, label plan) for a region on one grid: float32 x 4, and int16 class
        codes (``class``) or, for a user asset, a uint8 crop mask (``label``)."""
        from core.ee.composites import region_geometry
        from core.ee.pixels import plan_for_geometry
        from core.bands import INPUT_BANDS

        geometry = region_geometry(region)
        crs = self.composite.crs_for(geometry)
        scale = self.composite.resolution
        kw = {"target_requests": self.max_workers, "origin": self.composite.grid_origin(crs)}
        image_plan = plan_for_geometry(geometry, scale, INPUT_BANDS, "float32", crs, **kw)
        label_band = (("class",), "int16") if self._keeps_codes() else (("label",), "uint8")
        label_plan = plan_for_geometry(geometry, scale, *label_band, crs, **kw)
        return geometry, image_plan, label_plan

    def check_region(self, region) -> RegionCheck:
        """Size checks done locally (no Earth Engine request): area, pixels, limits. The size comes
        from the region's bounds, so a continent is refused at once, before any tile is planned."""
        from core.ee.composites import region_geometry
        from core.errors import CropMapError
        from core.lonlat import lonlat_area_ha

        scale = self.composite.resolution
        try:
            geometry = region_geometry(region)
            width, height = self.composite.grid_size(geometry)
        except CropMapError as err:
            return RegionCheck(False, str(err))
        area_ha = lonlat_area_ha(dict(geometry))
        pixels = width * height
        if min(width, height) < MIN_REGION_SIDE:  # (predicted with the image around it: context_margin)
            return RegionCheck(
                False,
                f"region is {width}x{height} px at {scale:g} m; it must be at least {MIN_REGION_SIDE} px a side "
                f"({MIN_REGION_SIDE * scale / 1000:.1f} km): draw a larger region or use a finer scale",
                area_ha,
                pixels,
            )
        if pixels > self.max_pixels:
            side = math.sqrt(self.max_pixels) * scale / 1000
            return RegionCheck(
                False,
                f"region is {width}x{height} px ({pixels / 1e6:.0f} Mpx) at {scale:g} m, over the "
                f"{self.max_pixels / 1e6:.0f} Mpx direct-download limit (~{side:.0f} km a side): draw a smaller "
                "region, use larger pixels (a coarser scale), or run it as a batch export (the dashboard's Earth Engine page, or "
                "python -m core ee-export-image)",
                area_ha,
                pixels,
                batch_only=True,
            )
        try:
            if self.labels is not None:  # a label product with no map there (CDL outside the US)
                from core.ee.labels import check_coverage

                check_coverage(self.labels, geometry)
            _, image_plan, label_plan = self.plans(region)
            context_plan = self.context_plan(image_plan)
        except CropMapError as err:
            return RegionCheck(False, str(err), area_ha, pixels)
        return RegionCheck(
            True,
            f"{width}x{height} px at {scale:g} m in {self.composite.crs_for(geometry)}; "  # (its area is the page's, in the user's unit)
            + self._describe_download(context_plan, label_plan, context_margin(image_plan.height, image_plan.width)),
            area_ha,
            pixels,
        )

    def context_plan(self, image_plan):
        """The plan of the composite that :meth:`fetch` downloads: ``image_plan``'s grid grown by
        :func:`~core.sources.base.context_margin` pixels on each side (:data:`CONTEXT_MARGIN`, more
        for a small region)."""
        from core.ee.pixels import grown_plan

        return grown_plan(image_plan, context_margin(image_plan.height, image_plan.width),
                          target_requests=self.max_workers)

    def _describe_download(self, context_plan, label_plan, margin: int) -> str:
        """What a fetch downloads, for people: size and requests in all, then each part's grid."""
        from core.files import size_text

        plans = [context_plan] + ([label_plan] if self.labels is not None else [])
        size = size_text(sum(p.total_bytes for p in plans))
        requests = sum(p.requests for p in plans)
        each = f"the composite {context_plan.width}x{context_plan.height} px ({margin} px around the region for context)"
        if self.labels is not None:
            each += f" and the labels {label_plan.width}x{label_plan.height} px"
        return f"downloads {size} in {requests} request(s): {each}"

    # -------------------------------------------------------------- fetch
    def _outputs(self) -> list[str]:
        """The files a fetch writes, in the order they are put in place (scene.json last: it marks
        the scene as complete)."""
        labels = ([CODES_FILE, "labels.tif"] if self._keeps_codes() else ["labels.tif"]) if self.labels is not None else []
        return [CONTEXT_FILE, SCENE_IMAGE, *labels, "scene.json"]

    def fetch(self, region, out_dir: Path, progress: Progress | None = None) -> Scene:
        """Download the region's composite (image.tif) and labels (labels.tif) into ``out_dir``.

        The composite comes down over the region's grid grown by :data:`CONTEXT_MARGIN` pixels, more
        for a small region, to :data:`~core.sources.base.CONTEXT_LEAST` a side (``context.tif``,
        unmasked, named in ``extra["context"]``), and ``image.tif`` is cut from it, so that
        prediction sees a field's surroundings however tightly the region was drawn.

        Everything is downloaded into a temporary folder inside ``out_dir`` and moved into place
        only when all of it is there, so a fetch that fails leaves no new file behind (and no
        ``out_dir`` it created). With ``overwrite``, outputs of an earlier fetch into the same
        folder that this one does not write (e.g. its labels) are removed. With ``reuse``, a complete
        folder of the same recipe and region (its scene.json's ``recipe``) is used as it is, with no
        request, also one that another session completed while this one downloaded.

        Raises:
            RegionError: the region is malformed, too small or too large (see check_region).
            EENotConfiguredError: Earth Engine is not set up.
            NoDataError: no scene matches the dates, region and cloud filter.
            OutputExistsError: files exist and ``overwrite`` is False (checked before any request).
            ConfigError: ``out_dir`` is a file, or lies under one.
            EarthEngineError subclasses: requests that fail after retries.
        """
        from core.ee.composites import composite_image, no_clear_pixel, require_scenes
        from core.ee.labels import label_image, raw_label_image
        from core.ee.pixels import DownloadStats, cut_out, download, prepare_image
        from core.errors import NoDataError, OutputExistsError, RegionError
        from core.files import check_output_dir, move_into_place, staging_dir
        from core.labels import NODATA
        from core.bands import INPUT_BANDS

        check = self.check_region(region)
        if not check.ok:
            raise RegionError(check.message)
        out = check_output_dir(out_dir)
        recipe = self._recipe(region)
        if (done := self._reusable(out, recipe)) is not None:
            return done  # (another session's download of the same recipe and region)
        names = self._outputs()
        if not self.overwrite:
            existing = [out / n for n in names if (out / n).exists()]
            if existing:
                raise OutputExistsError(f"{existing[0]} already exists; choose another output folder or pass overwrite=True")
        self._require_ready()
        geometry, image_plan, label_plan = self.plans(region)
        context_plan = self.context_plan(image_plan)
        cfg = self.composite

        count = int(require_scenes(cfg, geometry, self._getinfo)["count"])

        # each part's tiles, planned, then as many as it took (a tile too large for one request is split)
        tiles = {"imagery": context_plan.requests, "labels": label_plan.requests if self.labels is not None else 0}
        offset, part = 0, "imagery"

        def relay(done: int, n: int, _msg: str) -> None:
            # (the whole download's count, as the bar: each file's own said "4/4 tiles" with the bar at half way)
            tiles[part] = max(tiles[part], n)
            if progress is not None:
                whole = sum(tiles.values())
                progress(offset + done, whole, f"downloaded {offset + done}/{whole} tiles ({part})")

        stats = DownloadStats()
        image = prepare_image(composite_image(cfg, geometry, on_grid=True), INPUT_BANDS, "float32", SENTINEL)
        # the label expression too before any pixel is fetched: a recipe it refuses (ConfigError, e.g.
        # Dynamic World before 2015) must not cost the composite's download first
        # (on the composite's pixels, each the product's most frequent class under it: labels.aggregated)
        label_img, on_grid = None, {"scale_m": cfg.resolution, "crs": label_plan.crs}
        if self.labels is not None and self._keeps_codes():
            import ee

            label_img = prepare_image(ee.Image(raw_label_image(self.labels, geometry, **on_grid)).rename("class"),
                                      ("class",), "int16", CODE_NODATA)
        elif self.labels is not None:
            label_img = prepare_image(label_image(self.labels, geometry, **on_grid), ("label",), "uint8", NODATA)
        image_path, labels_path = out / SCENE_IMAGE, None
        codes = {}
        with staging_dir(out, prefix=".ee-fetch-") as tmp:  # a failed fetch leaves nothing new behind
            # overwrite=True: the staging folder is new; existing outputs in ``out`` were checked above
            download(
                image,
                context_plan,
                tmp / CONTEXT_FILE,
                compute=self._compute,
                max_workers=self.max_workers,
                progress=relay,
                overwrite=True,
                nodata=float("nan"),
                sentinel=SENTINEL,
                stats=stats,
            )
            margin = context_margin(image_plan.height, image_plan.width)
            cut = cut_out(tmp / CONTEXT_FILE, tmp / SCENE_IMAGE, image_plan, margin, margin, geometry)
            if not cut.with_data:  # (before the labels' download: the region has nothing to show or predict)
                raise NoDataError(no_clear_pixel(count, cfg))
            if self.labels is not None:
                offset, part = tiles["imagery"], "labels"  # (after a split, the labels' count went back: 4/4, 2/2)
                common = dict(compute=self._compute, max_workers=self.max_workers, progress=relay,
                              overwrite=True, stats=stats, geometry=geometry)
                if self._keeps_codes():
                    codes_path = download(label_img, label_plan, tmp / CODES_FILE, nodata=CODE_NODATA, **common)
                    labels_from_codes(codes_path, tmp / "labels.tif", self.labels.class_map_name)
                    codes = {"codes": CODES_FILE, "class_map": self.labels.class_map_name}
                else:
                    download(label_img, label_plan, tmp / "labels.tif", nodata=NODATA, **common)
                labels_path = out / "labels.tif"
            scene = self._scene(geometry, count, image_plan, stats, {**codes, "region_pixels": cut.inside}, image_path,
                                labels_path)
            record = {**scene_record(scene, tmp), "recipe": recipe}
            (tmp / "scene.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
            # each file appears whole (same folder: rename), all or none; scene.json last. With
            # overwrite, an earlier fetch's outputs that this scene does not have go with it.
            if (done := self._reusable(out, recipe)) is not None:
                return done  # (finished first by another session: its files are kept)
            stale = [n for n in (SCENE_IMAGE, CODES_FILE, "labels.tif") if n not in names] if self.overwrite else []
            move_into_place([*((None, out / n) for n in stale), *((tmp / n, out / n) for n in names)], tmp)
        return scene

    def _reusable(self, out: Path, recipe: str) -> Scene | None:
        """With ``reuse``, the complete scene of ``recipe`` in ``out`` (:meth:`_recipe`), else None."""
        done = complete_scene(out) if self.reuse else None
        return scene_from_meta(out, done) if done is not None and done.get("recipe") == recipe else None

    def _recipe(self, region) -> str:
        """A fingerprint of what a fetch of ``region`` downloads (composite, labels, its GeoJSON, preset), kept in
        scene.json: with ``reuse``, a complete folder of the same recipe is used as it is."""
        import hashlib

        from core.ee.composites import region_geometry

        what = [asdict(self.composite), asdict(self.labels) if self.labels is not None else None,
                region_geometry(region), self.preset.key if self.preset is not None else None]  # (its title)
        return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()

    def _aggregated(self) -> dict[str, str]:
        """What each pixel of a fetch aggregates, where the grid is coarser than the sources' pixels
        (:func:`core.ee.composites.aggregation`): ``image`` and ``labels`` in words, for scene.json."""
        from core.ee.composites import aggregation
        from core.ee.labels import NATIVE_SCALE_M, PRODUCTS

        cfg, out = self.composite, {}
        if aggregation(cfg.resolution, cfg.spec.scale) is not None:
            out["image"] = (f"each scene's mean reflectance over the {cfg.spec.scale:g} m {cfg.spec.title} pixels "
                            "under each pixel")
        native = NATIVE_SCALE_M.get(self.labels.product) if self.labels is not None else None
        if native is not None and aggregation(cfg.resolution, native) is not None:
            out["labels"] = (f"the most frequent class of the {native:g} m {PRODUCTS[self.labels.product][0]} "
                             "pixels under each pixel")
        return out

    def _scene(self, geometry, count, image_plan, stats, codes, image_path, labels_path) -> Scene:
        """The :class:`Scene` of a fetch (its ``extra`` is what scene.json holds)."""
        from core.ee.labels import PRODUCTS

        cfg = self.composite
        # how many scenes the median is of (1 or 50: an agronomist weighs the composite by it)
        title = f"{cfg.spec.title} median of {count:,} scene{'s' if count != 1 else ''} {cfg.start}..{cfg.end}"
        if self.preset is not None:
            from core.ee.composites import geojson_bounds

            inside = all(abs(p - q) <= 1e-6 for p, q in zip(geojson_bounds(geometry), self.preset.bbox))
            # the preset's name only for the preset's own box: a region drawn elsewhere is not "Camana"
            title = self.preset.title if inside else f"{title} (recipe of the {self.preset.key} preset)"
        attribution = _ATTRIBUTION[cfg.spec.family]
        margin = context_margin(image_plan.height, image_plan.width)  # (where the scene lies in context.tif)
        if self.labels is not None:
            attribution += "; labels: " + (f"user asset {self.labels.asset_id}" if self.labels.product == "asset"
                                           else _LABEL_ATTRIBUTION[self.labels.product])
        aggregated = self._aggregated()
        if "image" in aggregated:  # (the title says what the pixels are: not the sensor's own)
            title += f", averaged to {cfg.resolution:g} m pixels"
        extra = {
            "source": self.name,
            "title": title,  # (what the dashboard's downloads say they were made from)
            "composite": asdict(cfg),
            "labels": asdict(self.labels) if self.labels is not None else None,
            "label_product": PRODUCTS[self.labels.product][0] if self.labels is not None else None,
            "scenes": count,
            "crs": image_plan.crs,
            "scale": cfg.resolution,
            "aggregated": aggregated,
            "grid": [image_plan.width, image_plan.height],
            "context": {"file": CONTEXT_FILE, "row_off": margin, "col_off": margin},
            "requests": stats.requests,
            "retries": stats.retries,
            "seconds": round(stats.seconds, 2),
            **codes,
        }
        return Scene(
            image_path=image_path,
            labels_path=labels_path,
            label_map="binary" if labels_path is not None else None,
            georeferenced=True,
            title=title,
            attribution=attribution,
            extra=extra,
        )


def labels_from_codes(codes_path: Path, labels_path: Path, class_map: str) -> Path:
    """Write the crop mask of a downloaded class-code file (int16, -1 = no data) at ``labels_path``
    with the class map ``class_map``, and rewrite the codes with the product's no-data codes as -1
    (as a local scene keeps them). Returns ``labels_path``.

    Raises:
        InvalidDataError: codes that cannot be the class map's (e.g. above 255).
    """
    from core.labels import get_class_map
    from core.raster import grid_of_file, read_label_classes, write_codes, write_mask

    grid = grid_of_file(codes_path)
    mask, codes = read_label_classes(codes_path, get_class_map(class_map), band=1)
    write_codes(codes_path, codes, grid)
    return write_mask(labels_path, mask, grid)


def dated_labels(composite, labels):
    """The label recipe a source uses beside ``composite``: Dynamic World without dates labels the
    composite's own date range; any other recipe as it is (None: no labels).

    Raises:
        ConfigError: Dynamic World for composite dates that end before its first map.
    """
    if labels is not None and labels.product == "dynamicworld" and not (labels.start or labels.year):
        from dataclasses import replace

        return replace(labels, start=composite.start, end=composite.end)
    return labels


def recipes_from_settings(settings: Mapping[str, Any]):
    """(CompositeConfig, LabelConfig or None) from :meth:`EarthEngineSource.settings`-style data, the labels
    as the source uses them (:func:`dated_labels`).

    Raises:
        ConfigError: if a field is unknown or a value is invalid, or the labels have no map for the
            composite's dates (the message says which).
    """
    from core.ee.composites import CompositeConfig
    from core.ee.labels import LabelConfig
    from core.errors import ConfigError

    def build(cls, data, what: str):
        if not isinstance(data, Mapping):
            raise ConfigError(f"bad Earth Engine settings: the {what} settings must be a mapping of fields, got {data!r}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in dict(data).items()})
        except ConfigError as err:
            raise ConfigError(f"bad Earth Engine {what} settings: {err}") from None
        except (TypeError, ValueError) as err:  # an unknown field, or a value of the wrong kind
            raise ConfigError(f"bad Earth Engine {what} settings: {err}; fix or remove that field") from None

    if not isinstance(settings, Mapping):
        raise ConfigError(f"bad Earth Engine settings: expected composite and labels settings, got {settings!r}")
    composite = build(CompositeConfig, settings.get("composite") or {}, "composite")
    labels = settings.get("labels")
    return composite, dated_labels(composite, build(LabelConfig, labels, "label") if labels else None)


def presets() -> list[dict]:
    """The presets for the app's picker: key, title, bbox, sensor, dates, label product."""
    from core.ee.presets import PRESETS

    return [
        {
            "key": p.key,
            "title": p.title,
            "bbox": p.bbox,
            "geojson": p.geojson,
            "sensor": p.composite.sensor,
            "start": p.composite.start,
            "end": p.composite.end,
            "labels": p.labels.product,
            "year": p.labels.year,
        }
        for p in PRESETS
    ]
