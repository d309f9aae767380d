"""Stages of ``groundbench.evaluate``: data, scoring, the per-sample record cache, ranks."""
