"""Report directories: report.json, samples.csv, report.md and figures (docs/reports.md)."""

from groundbench.report.render import (
    REPORT_SCHEMA,
    headline_lines,
    render_markdown,
    render_report_json,
    render_samples_csv,
)

__all__ = [
    "REPORT_SCHEMA",
    "headline_lines",
    "render_markdown",
    "render_report_json",
    "render_samples_csv",
]
