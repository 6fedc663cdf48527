"""Google Earth Engine: auth, composites, labels, map tiles, direct pixels, exports, tasks, upload.

Nothing here talks to Earth Engine at import time; :func:`core.ee.auth.initialize` must be called
(the :class:`core.sources.earthengine.EarthEngineSource` does it) before any request is sent.
Modules that build Earth Engine objects import ``ee`` themselves; this package does not.
"""
