"""Named regions with their composite and label recipes (the app's preset list)."""

from __future__ import annotations

from dataclasses import dataclass

from core.ee.composites import CompositeConfig, bbox_geojson
from core.ee.labels import LabelConfig


@dataclass(frozen=True)
class Preset:
    """A region (lon/lat box west, south, east, north) with how to composite and label it."""

    key: str
    title: str
    bbox: tuple[float, float, float, float]
    composite: CompositeConfig
    labels: LabelConfig
    notes: str = ""
    #: the region's name where it is drawn (the sidebar's line, the maps)
    place: str = ""

    @property
    def geojson(self) -> dict:
        """The region as a GeoJSON Polygon (so a preset can be passed where a region is expected)."""
        return bbox_geojson(*self.bbox)


CAMANA = Preset(
    key="camana",
    title="Camana valley, Peru (Landsat 5, 2005-2006)",
    bbox=(-72.778645, -16.651663, -72.66865, -16.57553),
    composite=CompositeConfig(sensor="L5", start="2005-01-01", end="2006-12-31", max_cloud=20.0, scale=30.0),
    labels=LabelConfig(product="glcfcs30d", year=2005),
    notes="The prediction area of the original 2019 notebook (Earth Engine -> TensorFlow U-Net -> Earth Engine).",
    place="Camana valley, Arequipa, Peru",
)

#: Every preset, in display order.
PRESETS: tuple[Preset, ...] = (CAMANA,)


def get_preset(key: str) -> Preset:
    """The preset called ``key``.

    Raises:
        ConfigError: if there is none (the message lists them).
    """
    from core.errors import ConfigError

    for preset in PRESETS:
        if preset.key == key:
            return preset
    raise ConfigError(f"unknown preset {key!r}; choose one of {', '.join(p.key for p in PRESETS)}")
