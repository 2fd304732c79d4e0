"""The ``linewise`` command line: the one module that wires the packages together.

Configuration and the environment are read here and nowhere else. Errors that the user can fix
(a bad lock, a missing key) print one clear message to standard error and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from features import (
    DataLock,
    LockValidationError,
    LockWarning,
    PseudonymKeyError,
    example_lock_path,
    load_lock,
    pseudonymize,
    resolve_key,
)
from linewise import __version__

EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="linewise",
    help="Treatment-sequencing recommender for HR+/HER2- advanced breast cancer after progression on "
    "first-line endocrine therapy + CDK4/6 inhibitor.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"linewise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Treatment-sequencing recommender for HR+/HER2- advanced breast cancer."""


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _load_for_validation(lock: Path) -> tuple[DataLock, list[str]]:
    """Load a lock with a throw-away key: validation needs no pseudonym key and writes nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LockWarning)
        data_lock = load_lock(lock, secrets.token_bytes(32))
    return data_lock, [str(w.message) for w in caught if issubclass(w.category, LockWarning)]


def _print_summary(summary: dict[str, Any], notes: list[str], console: Console) -> None:
    lock_id = escape(summary["lock_id"])
    console.print(
        f"data lock [bold]{lock_id}[/bold] (lock date {summary['lock_date']}): [green]valid[/green]"
    )
    console.print(
        f"  patients {summary['patients']}  centres {summary['centres']}  deaths {summary['deaths']}"
    )
    console.print(f"  lines {summary['lines']}  progressions {summary['progressions']}")
    rows = ", ".join(f"{name} {count}" for name, count in summary["rows"].items())
    console.print(f"  rows: {rows}", soft_wrap=True)
    for note in notes:
        console.print(f"  warning: {escape(note)}", soft_wrap=True)


@app.command()
def validate(
    lock: Annotated[
        Path, typer.Argument(help="Data lock folder (manifest.json and one CSV or Parquet per table).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a data lock against every rule of the contract and summarise it; exit 2 if it breaks any."""
    try:
        data_lock, notes = _load_for_validation(lock)
    except LockValidationError as err:
        if as_json:
            payload = {
                "valid": False,
                "lock": err.lock_name,
                "violations": [v.to_dict() for v in err.violations],
            }
            typer.echo(json.dumps(payload, indent=2))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        _fail(str(err))
    summary = data_lock.summary()
    if as_json:
        typer.echo(json.dumps({"valid": True, **summary, "warnings": notes}, indent=2))
        return
    _print_summary(summary, notes, Console(highlight=False))


@app.command("pseudonymize")
def pseudonymize_command(
    ids: Annotated[
        list[str],
        typer.Argument(
            help="Raw patient identifiers, or '-' to read them from standard input, one per line."
        ),
    ],
) -> None:
    """Print the keyed pseudonym (patient_key) of each raw patient identifier, one per line."""
    if ids == ["-"]:
        ids = sys.stdin.read().splitlines()
    elif "-" in ids:
        _fail(
            "linewise pseudonymize: '-' reads identifiers from standard input and cannot be mixed with others"
        )
    for position, raw_id in enumerate(ids, start=1):
        if not raw_id.strip():
            _fail(f"linewise pseudonymize: identifier {position} is empty")
    try:
        key = resolve_key(os.environ)
    except PseudonymKeyError as err:
        _fail(f"linewise pseudonymize: {err}")
    for raw_id in ids:
        typer.echo(pseudonymize(raw_id, key))


@app.command()
def demo() -> None:
    """Run the main job on the embedded default data and print where its outputs are."""
    console = Console(highlight=False)
    lock = example_lock_path()
    console.print(f"[bold]linewise {__version__} demo[/bold]")
    console.print("step 1 of 1 available: validate the bundled example lock (eight invented patients)")
    data_lock, notes = _load_for_validation(lock)
    _print_summary(data_lock.summary(), notes, console)
    console.print(
        "\nNot built yet, so not run: simulating a PALMARES-2-sized lock, deriving decision examples, "
        "training the survival models, scoring a patient and writing the tumour-board report."
    )
    console.print("Outputs: none written (validation reads only).")


def main() -> None:
    """Run the command line (console-script entry point)."""
    app()
