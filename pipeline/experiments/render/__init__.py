"""Renderers of the docs' generated blocks, one module per kind of data (``pipeline.experiments.docs`` calls them)."""
