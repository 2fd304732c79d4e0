"""linewise: the command-line entry point that wires features, models, training, serving and simulation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("linewise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
