"""OMOP CDM fixtures written by the tests: a lock written into a DuckDB file, copies of it, edits to it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Final

import duckdb

from linewise.simulation.omop_writer import EpisodeChoice, write_omop

#: Text that must never appear in an error of an import from a simulated lock.
SIMULATED_ID: Final = re.compile(r"SIM-\d{6}")
ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def write_duckdb(lock: Path, path: Path, episodes: EpisodeChoice = "needed", seed: int = 0) -> str:
    """Write ``lock`` into a new DuckDB file at ``path`` and return its SQLAlchemy URL."""
    write_omop(lock, duckdb_url(path), episodes=episodes, seed=seed)
    return duckdb_url(path)


def duckdb_url(path: Path) -> str:
    return f"duckdb:///{path}"


def copy_cdm(path: Path, target: Path) -> Path:
    """Copy a DuckDB file (closed) and return the copy."""
    shutil.copyfile(path, target)
    return target


def run_sql(path: Path, *statements: str) -> None:
    """Run statements against the DuckDB file at ``path``."""
    with duckdb.connect(str(path)) as connection:
        for statement in statements:
            connection.execute(statement)


def query(path: Path, statement: str) -> list[tuple[Any, ...]]:
    """Return the rows of a query against the DuckDB file at ``path``."""
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(statement).fetchall()


def concept_id(path: Path, name: str) -> int:
    """The local concept id of the concept called ``name`` (any case)."""
    rows = query(path, f"SELECT concept_id FROM concept WHERE lower(concept_name) = lower('{name}')")
    assert len(rows) == 1, name
    return int(rows[0][0])


def leaks(text: str) -> list[str]:
    """Identifiers or dates found in ``text``."""
    return SIMULATED_ID.findall(text) + ISO_DATE.findall(text)
