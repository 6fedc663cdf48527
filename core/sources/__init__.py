"""Data sources behind one interface: local GeoTIFFs and Google Earth Engine."""
