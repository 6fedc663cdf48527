"""Which bands of a file are R, G, B and NIR: from band descriptions (Sentinel-2, Landsat 8-9 and
Collection 2 names, STAC common names) or from an explicit ``R=3,G=2,B=1,NIR=4`` mapping.
"""

from __future__ import annotations

import re
from typing import Sequence

from core.errors import BandError


#: Bands every model sees, in this order; NDVI is derived, never read.
INPUT_BANDS: tuple[str, ...] = ("R", "G", "B", "NIR")
FEATURE_BANDS: tuple[str, ...] = ("R", "G", "B", "NIR", "NDVI")

# Band descriptions recognised for each input band (upper case); numbered names (B4, B04, B8A) are
# read by :func:`_numbered`, as their satellite numbers them.
_ALIASES: dict[str, tuple[str, ...]] = {
    "R": ("R", "RED", "RED_SR"),
    "G": ("G", "GREEN", "GREEN_SR"),
    "B": ("B", "BLUE", "BLUE_SR"),
    "NIR": ("NIR", "N", "NIR_SR", "NIR08"),
}
# NIR08: the STAC common name of the 0.85 um NIR band of Landsat 8-9 (band 5) and of Sentinel-2's B8A, as
# Planetary Computer and Earth Search name them (with red, green, blue); their "nir" (Sentinel-2 B8) wins.
# Bare band numbers (B4, or B04 as Harmonized Landsat Sentinel-2 writes them) mean other bands on each
# satellite: red is B4 on Sentinel-2 and Landsat 8-9 but B3 on Landsat 4-7, whose B4 is NIR; NIR is B8
# (10 m) or B8A (20 m) on Sentinel-2, whose B5 is red edge, and B5 on Landsat 8-9, whose B8 is panchromatic.
NUMBERED_BANDS: dict[str, dict[str, tuple[str, ...]]] = {
    "Sentinel-2": {"R": ("B4",), "G": ("B3",), "B": ("B2",), "NIR": ("B8", "B8A")},
    "Landsat 8-9": {"R": ("B4",), "G": ("B3",), "B": ("B2",), "NIR": ("B5",)},
    "Landsat 4-7": {"R": ("B3",), "G": ("B2",), "B": ("B1",), "NIR": ("B4",)},
}
# bands that only one of them has (all of a set): Sentinel-2's narrow NIR or second SWIR; Landsat 8-9's
# two thermal bands together (Sentinel-2 has a B10, cirrus, in L1C, and a B11, SWIR 1, but with B12);
# Landsat 7's two gains of thermal B6
_NUMBERED_MARKERS: dict[str, tuple[frozenset[str], ...]] = {
    "Sentinel-2": (frozenset({"B8A"}), frozenset({"B12"})),
    "Landsat 8-9": (frozenset({"B10", "B11"}),),
    "Landsat 4-7": (frozenset({"B6_VCID_1"}), frozenset({"B6_VCID_2"})),
}
# Landsat Collection 2 surface reflectance names: SR_B<n> is another band on Landsat 4-7 (TM, ETM+)
# than on Landsat 8-9 (OLI), so they are read only when a band that one of them alone has tells which.
LANDSAT_SR_BANDS: dict[str, dict[str, str]] = {
    "Landsat 4-7": {"R": "SR_B3", "G": "SR_B2", "B": "SR_B1", "NIR": "SR_B4"},
    "Landsat 8-9": {"R": "SR_B4", "G": "SR_B3", "B": "SR_B2", "NIR": "SR_B5"},
}
_LANDSAT_MARKERS: dict[str, frozenset[str]] = {
    "Landsat 4-7": frozenset({"ST_B6", "SR_ATMOS_OPACITY", "SR_CLOUD_QA"}),  # thermal band 6, TM/ETM+ QA
    "Landsat 8-9": frozenset({"SR_B6", "ST_B10", "SR_QA_AEROSOL"}),  # SWIR 1 (4-7's band 6 is thermal), OLI QA
}


def parse_band_spec(spec: str | None) -> dict[str, int] | None:
    """Parse ``"1,2,3,4"`` or ``"R=1,G=2,B=3,NIR=4"`` (1-based band numbers) into a mapping.

    Raises:
        BandError: if the text is not of either form, does not give exactly four bands, or names
            a band twice or one band number for two bands.
    """
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    named = all("=" in p for p in parts)
    try:
        pairs = [(k.strip().upper(), int(v)) for k, v in (p.split("=", 1) for p in parts)] if named else \
            [(b, int(p)) for b, p in zip(INPUT_BANDS, parts)]
    except ValueError:
        raise BandError(f"bad band list {spec!r}: give four 1-based band numbers in the order R,G,B,NIR, e.g. 1,2,3,4") from None
    if not named and len(parts) != len(INPUT_BANDS):
        raise BandError(f"bad band list {spec!r} ({len(parts)} numbers): give exactly four band numbers, "
                        "of R, G, B and NIR in this order, e.g. 1,2,3,4")
    mapping = dict(pairs)
    if len(mapping) != len(pairs) or set(mapping) != set(INPUT_BANDS):
        raise BandError(f"bad band list {spec!r}: it must name exactly R, G, B and NIR, once each, e.g. R=3,G=2,B=1,NIR=4")
    _check_distinct(mapping, spec)
    return mapping


def _check_distinct(band_map: dict[str, int], what: object) -> None:
    """Raises BandError if two of R, G, B, NIR share a band number."""
    seen: dict[int, str] = {}
    for name, idx in band_map.items():
        if idx in seen:
            raise BandError(f"bad band list {what!r}: band {idx} is given for both {seen[idx]} and {name}; "
                            "R, G, B and NIR must be four different bands, e.g. 1,2,3,4")
        seen[idx] = name


def resolve_bands(descriptions: Sequence[str | None], count: int, band_map: dict[str, int] | None = None) -> dict[str, int]:
    """Find the 1-based index of R, G, B and NIR.

    Raises:
        BandError: if a band is missing, named twice, or cannot be identified, or if ``band_map``
            lacks one of them, gives one band number twice, or names a band the image lacks; an
            image of fewer than four bands (an RGB or grey picture).
    """
    if count < len(INPUT_BANDS):
        raise BandError(
            f"the image has {count} band{'s' if count != 1 else ''}, but a crop map needs four: R, G, B and NIR "
            "(near infrared, for NDVI); a photo or a true-colour picture will not do: use the satellite "
            "product's surface reflectance bands, NIR included"
            + ("; a download's band files (one band each) are stacked into one image by python -m core stack"
               if count == 1 else "")
        )
    if band_map is not None:
        missing = [b for b in INPUT_BANDS if b not in band_map]
        if missing:
            raise BandError(f"the band numbers lack {', '.join(missing)}: give the numbers of R, G, B and NIR, e.g. 1,2,3,4")
        band_map = {b: band_map[b] for b in INPUT_BANDS}
        _check_distinct(band_map, ",".join(f"{b}={i}" for b, i in band_map.items()))
        for name, idx in band_map.items():
            if not 1 <= idx <= count:
                raise BandError(f"band {name}={idx} does not exist: the image has {count} band{'s' if count != 1 else ''}"
                                + (", numbered from 1" if idx < 1 else ""))
        return band_map
    names = [(d or "").strip().upper() for d in descriptions]
    if not any(names):
        raise BandError(
            f"the image has {count} bands without descriptions, so R, G, B and NIR cannot be told apart; "
            "name them (band descriptions R,G,B,NIR) or give the band numbers of R, G, B and NIR, e.g. 1,2,3,4 "
            "(--bands on the command line, 'Band numbers' in the dashboard)"
        )
    found: dict[str, int] = {}
    for band in INPUT_BANDS:
        for alias in _ALIASES[band]:
            if alias in names:
                found[band] = names.index(alias) + 1
                break
    missing = [b for b in INPUT_BANDS if b not in found]
    if missing and any(re.fullmatch(r"B\d+A?", n) for n in names):
        found.update(_numbered(names, missing))
        missing = [b for b in INPUT_BANDS if b not in found]
    if missing and any(n.startswith("SR_B") for n in names):
        landsat = _landsat_sr_names(names)
        found.update({b: names.index(landsat[b]) + 1 for b in missing if landsat[b] in names})
        missing = [b for b in INPUT_BANDS if b not in found]
    if missing:
        raise BandError(
            f"the image lacks band(s) {', '.join(missing)} (its bands are {', '.join(n or '?' for n in names)}); "
            "it needs R, G, B and NIR surface reflectance, or give their band numbers "
            "(--bands on the command line, 'Band numbers' in the dashboard)"
        )
    return found


def band_map_warnings(descriptions: Sequence[str | None], count: int, band_map: dict[str, int], what: str) -> tuple[str, ...]:
    """A warning when band numbers given by the user (``band_map``) contradict the file's own band
    names: R and NIR swapped, say, give a plausible but wrong crop map. () when they agree or the
    names do not tell the bands."""
    try:
        resolve_bands(descriptions, count, band_map)  # (numbers the file lacks: its error says it, alone)
        named = resolve_bands(descriptions, count)
    except BandError:
        return ()
    if named == band_map:
        return ()
    given = ", ".join(f"{b}={band_map[b]}" for b in INPUT_BANDS)
    own = ", ".join(f"{b}={named[b]}" for b in INPUT_BANDS)
    return (f"{what}: the band numbers given ({given}) differ from what the file's band names say ({own}); "
            "check them: bands in the wrong places give a wrong crop map",)


def _numbered(names: Sequence[str], missing: Sequence[str]) -> dict[str, int]:
    """1-based indices of the ``missing`` bands among band names (upper case) numbered as a
    satellite numbers its bands (B4, B04, B8A): that of the satellite a band of its own tells, else of
    the one whose numbers the file holds (Sentinel-2 before Landsat 8-9, whose B8 is panchromatic).
    Bands the file lacks are left out.

    Raises:
        BandError: the numbers fit Landsat 4-7 and another satellite, and no band tells which.
    """
    plain = [re.sub(r"^B0+(?=\d)", "B", n) for n in names]  # B04 -> B4

    def index(kind: str) -> dict[str, int]:  # the bands found, each by the first of its names the file has
        held = {b: next((a for a in NUMBERED_BANDS[kind][b] if a in plain), None) for b in missing}
        return {b: plain.index(a) + 1 for b, a in held.items() if a is not None}

    told = [kind for kind, sets in _NUMBERED_MARKERS.items() if any(marks <= set(plain) for marks in sets)]
    if told:
        return index(told[0])
    fits = [kind for kind in NUMBERED_BANDS if len(index(kind)) == len(missing)]
    if "Sentinel-2" in fits and "Landsat 8-9" in fits:
        fits.remove("Landsat 8-9")
    if len({tuple(index(kind).items()) for kind in fits}) <= 1:
        return index(fits[0]) if fits else {}
    orders = [f"{','.join(map(str, index(kind).values()))} for {kind}" for kind in fits
              if len(missing) == len(INPUT_BANDS)]
    example = f", here {' or '.join(orders)}" if orders else ""
    raise BandError(
        "the bands are named by number (B1, B2, ...), and the numbers mean other bands on Landsat 4-7 (B3 red, "
        "B4 NIR) than on Landsat 8-9 (B4 red, B5 NIR) and Sentinel-2 (B4 red, B8 NIR), and the file does "
        f"not tell which; name the bands R, G, B, NIR or give their band numbers in the order R,G,B,NIR{example} "
        "(--bands on the command line, 'Band numbers' in the dashboard)"
    )


def _landsat_sr_names(names: Sequence[str]) -> dict[str, str]:
    """R, G, B, NIR -> Landsat Collection 2 ``SR_B<n>`` name, for the Landsat generation that the
    image's band names (upper case) tell.

    Raises:
        BandError: no band (or bands of both) tells Landsat 4-7 from Landsat 8-9.
    """
    kinds = [kind for kind, marks in _LANDSAT_MARKERS.items() if marks & set(names)]
    if len(kinds) == 1:
        return LANDSAT_SR_BANDS[kinds[0]]
    orders = [f"{','.join(str(names.index(m[b]) + 1) for b in INPUT_BANDS)} for {kind}"
              for kind, m in LANDSAT_SR_BANDS.items() if all(m[b] in names for b in INPUT_BANDS)]
    example = f", here {' or '.join(orders)}" if orders else ""
    raise BandError(
        "the bands are named SR_B<n> (Landsat Collection 2), whose numbers mean other bands on Landsat 4-7 "
        "(SR_B3 red, SR_B4 NIR) than on Landsat 8-9 (SR_B4 red, SR_B5 NIR), and the file does not tell which; "
        f"name the bands R, G, B, NIR or give their band numbers in the order R,G,B,NIR{example} "
        "(--bands on the command line, 'Band numbers' in the dashboard)"
    )
