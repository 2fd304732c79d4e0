"""What every command of the ``linewise`` command line shares: one-line failures, atomic writes, keys.

Errors that the user can fix (a bad lock, a missing key) print one clear message to standard error and
exit with status 2 (:data:`EXIT_BAD_INPUT`), without a traceback.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer

from linewise.features import PseudonymKeyError, resolve_key

#: Exit status of every failure the user can fix.
EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    """Print ``message`` to standard error and exit with :data:`EXIT_BAD_INPUT`, without a traceback."""
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinities (in dicts, lists and tuples too) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def resolve_key_or_fail(command: str) -> bytes:
    """Return the pseudonym key from the environment or key file; exit 2 naming ``command`` if none."""
    try:
        return resolve_key(os.environ)
    except PseudonymKeyError as err:
        fail(f"linewise {command}: {err}")


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside ``path`` and rename it: never a half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".linewise-") as staging:
        staged = Path(staging) / path.name
        write(staged)
        staged.replace(path)


def date_option(value: str | None, command: str) -> dt.date | None:
    """Parse a ``--as-of`` option; exit 2 with one line when it is no date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"linewise {command}: --as-of must be a date YYYY-MM-DD")


def quiet_mlflow() -> None:
    """Keep MLflow's own INFO lines and download bars off the terminal (warnings still show)."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
