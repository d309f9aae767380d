"""Stages of ``groundbench.evaluate``: data, scoring, records cache, gallery, output folder, world."""
