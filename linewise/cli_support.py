"""What every command of the ``linewise`` command line shares: one-line failures, atomic writes, keys.

Errors that the user can fix (a bad lock, a missing key) print one clear message to standard error and
exit with status 2 (:data:`EXIT_BAD_INPUT`), without a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import os
import tempfile
import warnings
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


def check_outputs(command: str, *paths: Path) -> None:
    """Exit 2 with one line, before any work, when an output file cannot be written where asked.

    Refused: a path that is a folder, a path below a file (``/etc/passwd/f.parquet``), and a path whose
    nearest existing folder is not writable. Folders that do not exist yet are created by
    :func:`write_outputs`.
    """
    for path in paths:
        if path.is_dir():
            fail(f"linewise {command}: cannot write {path}: it is a folder")
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            fail(f"linewise {command}: cannot write {path}: {ancestor} is not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            fail(f"linewise {command}: cannot write {path}: {ancestor} is not writable")


def write_outputs(command: str, files: dict[Path, Callable[[Path], object]]) -> None:
    """Write every file of one output, or none: each is staged beside its target, then all are renamed.

    A failure while staging (a full disk, a folder where a file should go) leaves no output and no
    staged file, and exits 2 with one line naming the file.
    """
    check_outputs(command, *files)
    with contextlib.ExitStack() as stack:
        staged: list[tuple[Path, Path]] = []
        for path, write in files.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                folder = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(dir=path.parent, prefix=".linewise-"))
                )
                write(folder / path.name)
            except OSError as err:
                fail(f"linewise {command}: cannot write {path}: {err.strerror or err}")
            staged.append((folder / path.name, path))
        for source, target in staged:
            try:
                source.replace(target)
            except OSError as err:
                fail(f"linewise {command}: cannot write {target}: {err.strerror or err}")


def date_option(value: str | None, command: str) -> dt.date | None:
    """Parse a ``--as-of`` option; exit 2 with one line when it is no date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"linewise {command}: --as-of must be a date YYYY-MM-DD")


def reporting_numerical_warnings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so that each numerical warning it raises is printed as one line, never an error.

    :class:`linewise.models.exceptions.NumericalWarning` (weights truncated, nobody at risk before the
    horizon) says that a result was computed with a safeguard; the command goes on, and each distinct
    message is printed once to standard error as ``linewise: warning: ...``, without a file and line.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from linewise.models.exceptions import NumericalWarning

        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NumericalWarning)
                return command(*args, **kwargs)
        finally:
            shown: set[str] = set()
            for warning in caught:
                text = str(warning.message)
                if not issubclass(warning.category, NumericalWarning):
                    # recorded instead of shown: hand it back to the caller's filters
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
                elif text not in shown:
                    shown.add(text)
                    typer.echo(f"linewise: warning: {text}", err=True)

    return run


def quiet_mlflow() -> None:
    """Keep MLflow's own INFO lines and download bars off the terminal (warnings still show)."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
