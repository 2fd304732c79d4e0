"""The hand-written example lock that ships with the package (for tests and the demo)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def example_lock_path() -> Path:
    """Return the folder of the bundled example lock.

    Returns
    -------
    Path
        A folder with ``manifest.json`` and one CSV per table: eight invented patients covering
        treatment beyond progression with radiotherapy, a CDK4/6i switch, chemotherapy, an oral
        SERD, a death, an ongoing line and censoring.
    """
    return Path(str(files("linewise.features") / "example_lock"))
