"""Shared pieces of the dashboard pages: session state, caches, maps, widgets."""
