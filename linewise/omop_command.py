"""``linewise import-omop``: read an OMOP CDM 5.4 database and write it as a data lock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from linewise.cli_support import EXIT_BAD_INPUT, fail
from linewise.features.omop import (
    MappingError,
    OmopImportError,
    OmopSource,
    OmopSourceError,
    import_omop,
    load_mapping,
)


def import_omop_command(
    url: Annotated[
        str,
        typer.Argument(
            help="SQLAlchemy URL of the CDM: duckdb:///cdm.duckdb, postgresql+psycopg://user@host/db."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Lock folder to create (must not exist).")],
    cdm_schema: Annotated[
        str | None,
        typer.Option("--cdm-schema", help="Schema of the clinical tables (default: the connection's)."),
    ] = None,
    vocabulary_schema: Annotated[
        str | None,
        typer.Option(
            "--vocabulary-schema", help="Schema of concept and concept_ancestor (default: the CDM schema)."
        ),
    ] = None,
    lock_id: Annotated[
        str | None, typer.Option("--lock-id", help="The lock's id (default: omop-<lock date>).")
    ] = None,
    lock_date: Annotated[
        str | None,
        typer.Option(
            "--lock-date", help="The lock's cut-off YYYY-MM-DD (default: cdm_source.source_release_date)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Concept mapping YAML (default: the bundled mapping.yaml)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result, or the problems, as JSON.")
    ] = False,
) -> None:
    """Read an OMOP CDM 5.4 database and write it as a data lock; exit 2, writing nothing, on any problem."""
    cut_off = None
    if lock_date is not None:
        try:
            cut_off = dt.date.fromisoformat(lock_date)
        except ValueError:
            fail("linewise import-omop: --lock-date must be a date YYYY-MM-DD")
    try:
        rules = load_mapping(mapping)
    except MappingError as err:
        fail(f"linewise import-omop: {err}")
    source = OmopSource(url, cdm_schema, vocabulary_schema)
    try:
        summary = import_omop(source, out, lock_id=lock_id, lock_date=cut_off, mapping=rules)
    except OmopImportError as err:
        if as_json:
            payload = {
                "imported": False,
                "source": err.source,
                "total_problems": len(err.problems),
                "problems": [problem.to_dict() for problem in err.problems],
            }
            typer.echo(json.dumps(payload, indent=2))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        fail(str(err))
    except (OmopSourceError, FileExistsError) as err:
        fail(f"linewise import-omop: {err}")
    if as_json:
        typer.echo(json.dumps({"imported": True, "lock": str(out), **summary.to_dict()}, indent=2))
        return
    console = Console(highlight=False)
    rows = ", ".join(f"{name} {count}" for name, count in summary.rows.items())
    console.print(
        f"wrote lock [bold]{escape(summary.lock_id)}[/bold] to {escape(str(out))}: "
        f"{summary.patients} patients of {summary.persons} persons; lines "
        f"{summary.lines_from_episodes} from episodes, {summary.lines_derived} derived from drug exposures",
        soft_wrap=True,
    )
    console.print(f"  rows: {rows}", soft_wrap=True)
