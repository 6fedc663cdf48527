"""Earth Engine assets: what Earth Engine knows of one (its type, bands and footprint), and whether an
asset id is taken, asked with one ``ee.data.getAsset`` call (injected, so tests need no network).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.ee.errors import EEPermissionError, RetryPolicy, call_with_retries
from core.errors import ConfigError, EarthEngineError

#: What Earth Engine says of an asset that is not there (for a missing asset and one this account may
#: not read alike: "does not exist or caller does not have access").
_NOT_THERE = re.compile(r"not found|does not exist|doesn't exist", re.IGNORECASE)

Bounds = tuple[float, float, float, float]  # west, south, east, north (degrees)


@dataclass(frozen=True)
class AssetInfo:
    """An asset as Earth Engine describes it: ``kind`` ("IMAGE", "IMAGE_COLLECTION", "FOLDER", "TABLE"...),
    its bands' ids, its footprint's box in longitude/latitude (None when Earth Engine gives none) and
    its properties."""

    name: str
    kind: str
    bands: tuple[str, ...] = ()
    bounds: Bounds | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _default_get_asset(name: str) -> Mapping[str, Any]:
    import ee

    return ee.data.getAsset(name)


def footprint_bounds(geometry: Any) -> Bounds | None:
    """The box (west, south, east, north) of a GeoJSON footprint's positions; None without any."""
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c[:2]):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, (list, tuple)):
            for part in c:
                walk(part)

    if isinstance(geometry, Mapping):
        walk(geometry.get("coordinates"))
        for part in geometry.get("geometries") or ():
            walk(part.get("coordinates") if isinstance(part, Mapping) else None)
    if not xs:
        return None
    return max(min(xs), -180.0), max(min(ys), -90.0), min(max(xs), 180.0), min(max(ys), 90.0)


def asset_from(raw: Mapping[str, Any], name: str) -> AssetInfo:
    """An :class:`AssetInfo` from ``getAsset``'s answer (an EarthEngineAsset) for ``name``."""
    bands = tuple(str(b.get("id", "")) for b in raw.get("bands") or () if isinstance(b, Mapping))
    return AssetInfo(name=str(raw.get("name") or name), kind=str(raw.get("type", "")).upper(), bands=bands,
                     bounds=footprint_bounds(raw.get("geometry")), properties=dict(raw.get("properties") or {}))


def find_asset(name: str, *, get_asset: Callable[[str], Mapping[str, Any]] | None = None,
               retry: RetryPolicy = RetryPolicy()) -> AssetInfo | None:
    """The asset ``name`` (a full id: :func:`core.ee.upload.asset_name`), or None when Earth Engine has
    none this account can read.

    Raises:
        EarthEngineError subclasses: Earth Engine not configured, a refusal other than "not found",
            or failures after ``retry``'s retries.
    """
    get = get_asset or _default_get_asset
    try:
        raw = call_with_retries(lambda: get(name), retry)
    except EEPermissionError as err:
        if _NOT_THERE.search(str(err)):
            return None
        raise
    return asset_from(raw or {}, name)


def image_asset(name: str, *, get_asset: Callable[[str], Mapping[str, Any]] | None = None,
                retry: RetryPolicy = RetryPolicy()) -> AssetInfo:
    """The image asset ``name``, to show on a map.

    Raises:
        EarthEngineError: there is no such asset (or this account may not read it), said with what to check;
        ConfigError: the asset is not an image (a collection, folder or table);
        EarthEngineError subclasses: as :func:`find_asset`.
    """
    info = find_asset(name, get_asset=get_asset, retry=retry)
    if info is None:
        raise EarthEngineError(f"Earth Engine has no asset {name} that this account can read: check the id (and that "
                               "the asset is shared with this account); an asset just uploaded is there once its "
                               "ingestion task has completed (Tasks tab, or python -m core ee-tasks)")
    if info.kind not in ("IMAGE", ""):
        kind = info.kind.lower().replace("_", " ")
        raise ConfigError(f"{name} is {'an' if kind[:1] in 'aeiou' else 'a'} {kind}, not an image: give the id of "
                          "one image asset (an uploaded prediction)")
    return info
