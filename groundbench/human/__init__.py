"""Human evaluation of heatmaps: study files, rendering, the local study server, storage and
statistics (docs/human.md)."""
