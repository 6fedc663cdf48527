"""Map tile layers (XYZ URL templates) for composites, labels and assets, for folium TileLayers.

Each layer is one ``getMapId`` call; results are cached in-process for ``TTL_SECONDS``
(shorter than the life of an Earth Engine map id), keyed by the serialized image and its
visualisation, so reruns of the dashboard do not call Earth Engine again.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.ee.errors import RetryPolicy, call_with_retries

#: Earth Engine map ids stay valid for hours; refresh well before that.
TTL_SECONDS = 30 * 60
ATTRIBUTION = "Google Earth Engine"

TRUE_COLOR = {"bands": ["R", "G", "B"], "min": 0.0, "max": 0.3, "gamma": 1.3}
FALSE_COLOR = {"bands": ["NIR", "R", "G"], "min": 0.0, "max": [0.5, 0.3, 0.3], "gamma": 1.2}
NDVI_VIS = {"bands": ["NDVI"], "min": -0.2, "max": 0.9, "palette": ["8c510a", "d8b365", "f6e8c3", "c7eae5", "5ab4ac", "01665e"]}


def _hex(rgb: tuple[int, ...]) -> str:
    return "".join(f"{v:02x}" for v in rgb)


def _colours() -> tuple[dict, dict]:
    """The label and probability visualisations, in the colours of the local overlays (core.overlays):
    a layer from Earth Engine reads as the same layer drawn from a local image."""
    from core.overlays import CLASS_COLOURS, colormap

    lut = colormap("probability")
    return ({"bands": ["label"], "min": 0, "max": 1, "palette": [_hex(CLASS_COLOURS["not crop"]), _hex(CLASS_COLOURS["crop"])]},
            {"min": 0, "max": 100, "palette": [_hex(tuple(lut[i][:3])) for i in (0, 64, 128, 192, 255)]})


LABEL_VIS, PROBABILITY_VIS = _colours()


@dataclass(frozen=True)
class TileLayer:
    """An XYZ layer: ``url`` has ``{z}/{x}/{y}`` placeholders (folium.TileLayer(tiles=url, attr=...))."""

    name: str
    url: str
    attribution: str = ATTRIBUTION
    opacity: float = 1.0
    show: bool = True  # visible when the map opens (the others can be switched on in its layer control)


_cache: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached tile URL."""
    with _lock:
        _cache.clear()


def _default_get_map_id(image: Any, vis: Mapping[str, Any]) -> Mapping[str, Any]:
    return image.getMapId(dict(vis))


def tile_url(
    image: Any,
    vis: Mapping[str, Any],
    *,
    get_map_id: Callable[[Any, Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ttl: float = TTL_SECONDS,
    now: Callable[[], float] = time.monotonic,
    policy: RetryPolicy = RetryPolicy(),
) -> str:
    """The XYZ URL template of ``image`` rendered with ``vis`` (cached for ``ttl`` seconds).

    Raises:
        EarthEngineError subclasses: when getMapId fails (after ``policy``'s retries on 429/5xx); NoDataError:
            no image to draw ("collection is empty", :func:`core.ee.errors.map_ee_error`).
    """
    import ee

    key = json.dumps([ee.serializer.encode(image, for_cloud_api=True), dict(vis)], sort_keys=True, default=str)
    t = now()
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] > t:
            return hit[1]
    fn = get_map_id or _default_get_map_id
    result = call_with_retries(lambda: fn(image, vis), policy)
    fetcher = result.get("tile_fetcher")
    url = fetcher.url_format if fetcher is not None else result.get("url") or result.get("tile_url")
    if not url:
        url = f"https://earthengine.googleapis.com/v1/{result['mapid']}/tiles/{{z}}/{{x}}/{{y}}"
    with _lock:
        for old in [k for k, (expires, _) in _cache.items() if expires <= t]:  # (a server's regions pile up)
            del _cache[old]
        _cache[key] = (t + ttl, url)
    return url


def composite_layers(cfg, geometry: Mapping[str, Any], *, clip: bool = True, **kw: Any) -> list[TileLayer]:
    """True colour, false colour (NIR-R-G) and NDVI layers of a composite (see :class:`CompositeConfig`).

    Raises:
        EarthEngineError subclasses, NoDataError: as :func:`tile_url`.
    """
    from core.ee.composites import composite_image, ee_geometry

    image = composite_image(cfg, geometry)
    if clip:
        image = image.clip(ee_geometry(geometry))
    label = f"{cfg.spec.title} {cfg.start}..{cfg.end}"
    return [
        TileLayer(f"{label} true colour", tile_url(image, TRUE_COLOR, **kw)),
        TileLayer(f"{label} false colour (NIR-R-G)", tile_url(image, FALSE_COLOR, **kw), show=False),
        TileLayer(f"{label} NDVI", tile_url(image, NDVI_VIS, **kw), show=False),
    ]


def label_layers(cfg, geometry: Mapping[str, Any] | None = None, *, clip: bool = True, **kw: Any) -> list[TileLayer]:
    """The crop / not-crop layer of a label config (no data transparent).

    Raises:
        ConfigError: as :func:`core.ee.labels.label_image`; EarthEngineError subclasses, NoDataError: as
            :func:`tile_url`.
    """
    from core.ee.composites import ee_geometry
    from core.ee.labels import PRODUCTS, label_image

    image = label_image(cfg, geometry)
    image = image.updateMask(image.neq(255))
    if clip and geometry is not None:
        image = image.clip(ee_geometry(geometry))
    title = PRODUCTS[cfg.product][0] + (f" {cfg.year}" if cfg.year else "")
    return [TileLayer(f"Labels: {title} (amber = crop)", tile_url(image, LABEL_VIS, **kw), opacity=0.6)]


def asset_layer(asset_id: str, vis: Mapping[str, Any] | None = None, name: str | None = None, **kw: Any) -> TileLayer:
    """A layer of an image asset (e.g. an uploaded prediction: uint8 percent, 255 = no data).

    Raises:
        EarthEngineError subclasses (EEPermissionError: an asset id that is wrong or not shared), NoDataError:
            as :func:`tile_url`.
    """
    import ee

    image = ee.Image(asset_id)
    image = image.updateMask(image.neq(255))
    return TileLayer(name or asset_id, tile_url(image, vis or PROBABILITY_VIS, **kw), opacity=0.7)
