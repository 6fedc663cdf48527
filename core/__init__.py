"""UI-free crop-mapping package: rasters, labels, patches, U-Net, tiled prediction, metrics.

Importing ``core`` has no side effects: TensorFlow, rasterio and Earth Engine are imported by the
modules that need them, never by this package's ``__init__``.
"""

__version__ = "0.1.0"
