"""groundbench: benchmark and evaluation toolkit for annotation-free visual grounding."""

from importlib import metadata

try:
    __version__ = metadata.version("groundbench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
