"""Report directories: report.json, samples.csv, report.md and figures (docs/reports.md)."""

from groundbench.report.records import Records, parse_samples_csv
from groundbench.report.render import (
    REPORT_SCHEMA,
    headline_lines,
    protocol_title,
    render_markdown,
    render_report_json,
)

__all__ = [
    "Records",
    "parse_samples_csv",
    "REPORT_SCHEMA",
    "headline_lines",
    "protocol_title",
    "render_markdown",
    "render_report_json",
]
