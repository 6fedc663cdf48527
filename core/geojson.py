"""Reading GeoJSON: uploaded bytes as text, its polygons, the CRS it declares or names, the names of its
features and parts, and the features that hold no polygon (left out)."""

from __future__ import annotations

import gc
import json
import numbers
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from core.errors import RegionError
from core.geometry import IMAGE_CRS, LONLAT_CRS, Polygon, Ring, geometry_of

#: Largest GeoJSON text accepted from an upload.
MAX_GEOJSON_BYTES = 5 * 1024 * 1024


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (as a ``with`` block or a decorator) while a GeoJSON of many
    features is read, traced or burnt: its millions of coordinate lists and tuples, none in a cycle, were
    scanned again by every full collection their making set off (burning 5,800 fields onto an image: 29 s with
    it, 5.5 s without). Reference counting still frees what is dropped; a run of it in another thread just
    waits. It is switched back on only where it was on."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def check_size(size: int, file_name: str, max_bytes: int = MAX_GEOJSON_BYTES) -> None:
    """Refuse a GeoJSON file of ``size`` bytes over ``max_bytes`` (before it is parsed).

    Raises:
        RegionError: naming both, in the MB the dashboard's upload boxes give.
    """
    if size > max_bytes:
        from core.files import limit_text

        raise RegionError(f"{file_name} is {limit_text(size)}; the limit is {limit_text(max_bytes)}")


def other_text(data: bytes) -> str:
    """The text of a GeoJSON file that is not UTF-8: UTF-16 with its byte order mark (as Windows tools
    save "Unicode" text), else Windows-1252 or Latin-1 (a field named "Feld Müller" by an older
    GIS; a UTF-8 byte order mark before it is dropped), where the bytes are JSON's characters outside
    its strings.

    Raises:
        RegionError: the bytes are no such text (a binary file, a shapefile).
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data:  # Latin-1 decodes any bytes: only text without NULs
        data = data.removeprefix(b"\xef\xbb\xbf")
        try:
            return data.decode("cp1252")  # (Windows' quotes and euro sign, where Latin-1 has control codes)
        except UnicodeDecodeError:
            return data.decode("latin-1")
    raise RegionError("the file is not GeoJSON text (UTF-8, UTF-16 or Latin-1); give a .geojson/.json file (a "
                      "shapefile or KML: convert it first, e.g. ogr2ogr -f GeoJSON out.geojson in.shp)")


def geojson_text(data: bytes) -> str:
    """The text of an uploaded GeoJSON file: UTF-8 (with or without a byte order mark), else as
    :func:`other_text` reads it.

    Raises:
        RegionError: as :func:`other_text`.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return other_text(data)


def declared_crs(obj: dict) -> str | None:
    for holder in (obj, obj.get("properties") or {}):
        value = holder.get("crs") if isinstance(holder, dict) else None
        if value == IMAGE_CRS:
            return IMAGE_CRS
    features = obj.get("features")
    for feat in features if isinstance(features, list) else []:
        if isinstance(feat, dict) and isinstance(feat.get("properties"), dict) and feat["properties"].get("crs") == IMAGE_CRS:
            return IMAGE_CRS
    return None


def named_crs(obj: dict) -> str | None:
    """The CRS named by a GeoJSON's ``crs`` member (GeoJSON 2008: ``{"type": "name", "properties":
    {"name": "urn:ogc:def:crs:EPSG::32631"}}`` or ``{"type": "EPSG", "properties": {"code": 32631}}``)
    when it is not lon/lat; None without such a member or for lon/lat (CRS84, EPSG:4326).

    Raises:
        RegionError: the member cannot be read or names no known CRS.
    """
    member = obj.get("crs")
    if not isinstance(member, dict):  # absent, or the string "image" (see declared_crs)
        return None
    props = member.get("properties") if isinstance(member.get("properties"), dict) else {}
    name = str(props.get("name", "")) if member.get("type") == "name" else (
        f"EPSG:{props['code']}" if member.get("type") == "EPSG" and props.get("code") not in (None, "") else "")
    advice = "save the GeoJSON in longitude/latitude (EPSG:4326)"
    if not name.strip():
        raise RegionError(f"the GeoJSON's crs member {json.dumps(member)[:100]} names no CRS; {advice}")
    if name.upper().endswith("CRS84"):
        return None
    from core.grid import parse_crs

    parsed = parse_crs(name)
    if parsed is None:
        raise RegionError(f"the GeoJSON's coordinates are in {name[:60]}, a CRS that is not known; {advice}")
    return None if parsed.to_epsg() == 4326 else name


def to_lonlat(polys: tuple[Polygon, ...], crs: str) -> tuple[Polygon, ...]:
    """Polygons in ``crs`` reprojected to lon/lat.

    Raises:
        RegionError: a coordinate cannot be reprojected (outside the CRS's area).
    """
    from rasterio._err import CPLE_BaseError
    from rasterio.warp import transform_geom

    try:
        _require_on_earth(polys, crs)
        geom = transform_geom(crs, LONLAT_CRS, geometry_of(polys))
    except CPLE_BaseError:
        raise RegionError(f"the GeoJSON's coordinates cannot be placed on Earth from {crs}; check them, or save the "
                          "GeoJSON in longitude/latitude (EPSG:4326)") from None
    coords = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return tuple(tuple(_as_ring(ring) for ring in poly) for poly in coords)


def _require_on_earth(polys: tuple[Polygon, ...], crs: str) -> None:
    """Raises RegionError: a coordinate beyond :data:`core.grid.MAX_COORDINATE` (a Web Mercator
    easting of 1e17 m took GDAL 1.5 s to reproject, 1e20 m over a minute, holding the page), or a corner that
    cannot be placed on Earth or is not given back by its longitude/latitude (it lies past the CRS's
    world and would come back elsewhere)."""
    import numpy as np
    from rasterio.warp import transform

    from core.grid import MAX_COORDINATE

    advice = "check the GeoJSON's coordinates and its CRS, or save it in longitude/latitude (EPSG:4326)"
    for poly in polys:
        xs = np.array([x for ring in poly for x, _ in ring], float)
        ys = np.array([y for ring in poly for _, y in ring], float)
        far = np.maximum(np.abs(xs), np.abs(ys)) > MAX_COORDINATE
        if far.any():
            i = int(np.argmax(far))
            raise RegionError(f"coordinate ({xs[i]:g}, {ys[i]:g}) is too far from {crs}'s origin to lie on Earth; "
                              f"{advice}")
        lon, lat = (np.asarray(v, float) for v in transform(crs, LONLAT_CRS, xs, ys))
        # a corner past the CRS's world (a Web Mercator easting past 20,037 km) comes back as another
        # longitude, each corner on its own: a polygon drawn across the globe's seam would be torn apart
        with np.errstate(invalid="ignore"):
            back_x, back_y = (np.asarray(v, float) for v in transform(LONLAT_CRS, crs, lon, lat))
            placed = (np.isfinite(lon) & np.isfinite(lat) & np.isclose(back_x, xs, rtol=1e-7, atol=1.0)
                      & np.isclose(back_y, ys, rtol=1e-7, atol=1.0))
        if not placed.all():
            i = int(np.argmin(placed))
            raise RegionError(f"coordinate ({xs[i]:g}, {ys[i]:g}) lies outside the part of the Earth {crs} maps; "
                              f"{advice}")


def _as_ring(raw: Any) -> Ring:
    """A GeoJSON ring (a list of ``[x, y, ...]`` positions) as a tuple of (x, y) floats, closed (its
    first position again at its end, as RFC 7946 asks: a region read from a ring left open was written
    out open, a GeoJSON that other tools refuse).

    Raises:
        RegionError: a position is not a list of at least two numbers (JSON numbers: true, false and
            text such as "12.5" are not), or a number is too large.
    """
    try:
        # each kind of number checked once (an ABC check of every coordinate took 3 s for 20,000 fields)
        if any(not issubclass(t, numbers.Real) or issubclass(t, bool) for t in {type(v) for p in raw for v in p[:2]}):
            raise TypeError
        ring = tuple((float(p[0]), float(p[1])) for p in raw)
    except (TypeError, ValueError, IndexError, KeyError):  # KeyError: a position written as an object
        raise RegionError("GeoJSON polygon coordinates must be lists of [x, y] numbers") from None
    except OverflowError:  # an integer too large for a float
        raise RegionError("region coordinates must be finite numbers") from None
    return ring + ring[:1] if ring and ring[0] != ring[-1] else ring


def _list(value: Any, what: str) -> list:
    """``value`` when it is a list (None -> []). Raises RegionError otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegionError(f"GeoJSON {what} must be a list, not {type(value).__name__}")
    return value


def polygons_of(obj: dict) -> Iterable[Polygon]:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        for feat in _list(obj.get("features"), "features"):
            if isinstance(feat, dict):
                yield from polygons_of(feat)
    elif kind == "Feature":
        geom = obj.get("geometry")
        if isinstance(geom, dict):
            yield from polygons_of(geom)
    elif kind == "GeometryCollection":
        for geom in _list(obj.get("geometries"), "geometries"):
            if isinstance(geom, dict):
                yield from polygons_of(geom)
    elif kind == "Polygon":  # ("coordinates": [] is an empty geometry, RFC 7946: no polygon, as an empty MultiPolygon)
        rings = _list(obj.get("coordinates"), "Polygon coordinates")
        if rings:
            yield tuple(_as_ring(r) for r in rings)
    elif kind == "MultiPolygon":
        for poly in _list(obj.get("coordinates"), "MultiPolygon coordinates"):
            rings = _list(poly, "MultiPolygon coordinates")
            if rings:
                yield tuple(_as_ring(r) for r in rings)


def has_area(feature: Any) -> bool:
    """Whether a feature holds a polygon (a malformed one counts: the region refuses it, saying why,
    rather than leaving it out unsaid)."""
    if not isinstance(feature, dict):
        return False
    try:
        return any(True for _ in polygons_of(feature))
    except RegionError:
        return True


def features_without_area(obj: Any) -> list[str]:
    """The names (or 1-based numbers, "feature 3") of a FeatureCollection's features that hold no
    Polygon or MultiPolygon (points, lines, or no geometry), which a region leaves out."""
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        return []
    # (a feature that is no object at all, null or a number, went unsaid)
    return [(feature_name(feat) if isinstance(feat, dict) else "") or f"feature {i}"
            for i, feat in enumerate(obj["features"], 1) if not isinstance(feat, dict) or not has_area(feat)]


def left_out_note(skipped: Sequence[str], file_name: str, shown: int = 5) -> str:
    """In words, the features of ``file_name`` left out for holding no polygon (:func:`features_without_area`)."""
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"{len(skipped)} feature(s) of {file_name} hold no polygon (points, lines, or an empty or no geometry) "
            f"and are left out: {', '.join(skipped[:shown])}{more}")


#: Properties that name a feature, in the order looked for (GIS layers spell "name" many ways)
NAME_KEYS = ("name", "Name", "NAME", "label", "id", "ID")


def feature_name(feature: dict) -> str:
    """A feature's name: its ``name`` property (or ``Name``, ``NAME``, ``label``, ``id``), or its id; "" without one."""
    props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
    for value in [*(props.get(k) for k in NAME_KEYS), feature.get("id")]:
        if value not in (None, "") and not isinstance(value, (dict, list)):
            return str(value).strip()
    return ""


def part_names(obj: dict, n_polygons: int) -> tuple[str, ...]:
    """The part each of the ``n_polygons`` polygons of a GeoJSON belongs to: its feature's name (its
    ``name`` property, or ``Name``, ``NAME``, ``label``, ``id``, or the feature's id), "part N" for a
    feature without one (N: its place in the file), "NAME (2)" for a second feature of the same name (the
    next number no feature is named with); () for a GeoJSON of one
    feature (nothing to tell apart), or for a Feature written by :meth:`core.region.Region.to_geojson`, its own
    ``parts``.
    """
    props = obj.get("properties") if isinstance(obj.get("properties"), dict) else {}
    kept = props.get("parts") if obj.get("type") == "Feature" else None
    if isinstance(kept, list) and len(kept) == n_polygons and all(isinstance(k, str) for k in kept):
        return tuple(kept)
    if obj.get("type") != "FeatureCollection" or not isinstance(obj.get("features"), list):
        return ()
    # (numbered as in the file, as the features left out are: "part 2" is the file's second feature)
    areas = [(i, f) for i, f in enumerate(obj["features"], 1) if isinstance(f, dict) and has_area(f)]
    if len(areas) < 2:
        return ()
    given = [feature_name(feature) or f"part {i}" for i, feature in areas]
    names: list[str] = []
    taken, own = set(), set(given)
    for j, (_, feature) in enumerate(areas):
        name, k = given[j], 1
        while name in taken or (k > 1 and name in own):  # (a feature named "X (2)" keeps its name)
            k += 1
            name = f"{given[j]} ({k})"
        taken.add(name)
        names += [name] * sum(1 for _ in polygons_of(feature))
    return tuple(names) if len(names) == n_polygons else ()


def geojson_name(obj: dict, most: int = 3) -> str:
    """The ``name`` property of a Feature, or the names of a FeatureCollection's features (the first
    ``most`` of them, and how many more); "" when none has one."""
    def name_of(feature) -> str:
        props = feature.get("properties") if isinstance(feature, dict) else None
        value = props.get("name") if isinstance(props, dict) else None
        return str(value).strip() if value not in (None, "") else ""

    if obj.get("type") != "FeatureCollection":
        return name_of(obj)
    feats = [f for f in (obj.get("features") if isinstance(obj.get("features"), list) else [])
             if has_area(f)]  # the areas only (a feature left out does not name the region)
    names = list(dict.fromkeys(n for n in map(name_of, feats) if n))  # in order, each once
    unnamed = sum(1 for f in feats if not name_of(f))  # (counted: "a, b" named a file of three fields)
    extra = max(len(names) - most, 0) + (unnamed if names else 0)
    return ", ".join(names[:most]) + (f" and {extra} more" if extra else "")
