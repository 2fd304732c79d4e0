"""Edit a copy of a CSV data lock, cell by cell, to build bad-input cases."""

from __future__ import annotations

import csv
from pathlib import Path


def read_rows(lock: Path, table: str) -> tuple[list[str], list[dict[str, str]]]:
    with (lock / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(lock: Path, table: str, header: list[str], rows: list[dict[str, str]]) -> None:
    with (lock / f"{table}.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def set_cell(lock: Path, table: str, row: int, column: str, value: str) -> None:
    """Set the cell at ``row`` (1-based after the header) of ``column``."""
    header, rows = read_rows(lock, table)
    rows[row - 1][column] = value
    write_rows(lock, table, header, rows)


def get_cell(lock: Path, table: str, row: int, column: str) -> str:
    return read_rows(lock, table)[1][row - 1][column]


def append_row(lock: Path, table: str, values: dict[str, str]) -> int:
    """Append a row and return its 1-based row number."""
    header, rows = read_rows(lock, table)
    rows.append({name: values.get(name, "") for name in header})
    write_rows(lock, table, header, rows)
    return len(rows)


def drop_column(lock: Path, table: str, column: str) -> None:
    header, rows = read_rows(lock, table)
    header.remove(column)
    write_rows(lock, table, header, [{k: v for k, v in row.items() if k != column} for row in rows])


def add_column(lock: Path, table: str, column: str, value: str) -> None:
    header, rows = read_rows(lock, table)
    write_rows(lock, table, [*header, column], [{**row, column: value} for row in rows])


def row_of(lock: Path, table: str, **match: str) -> int:
    """Return the 1-based row number of the first row whose cells equal ``match``."""
    for number, row in enumerate(read_rows(lock, table)[1], start=1):
        if all(row[key] == value for key, value in match.items()):
            return number
    raise LookupError(f"no row in {table} matches {match}")
