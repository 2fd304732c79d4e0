"""Read a lock folder into text frames, before any rule is checked.

Every cell is read as text (stripped of surrounding spaces; an empty cell is ``""``), whatever the
format, so that CSV and Parquet locks go through the same checks. Problems that stop a file from
being read at all are returned as violations, never raised one at a time.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import Violation
from features.schema import MANIFEST_FILE, TABLE_SUFFIXES, TABLES, TableSpec


@dataclass
class RawTable:
    """One table as text: the frame, the file it came from, and its header."""

    spec: TableSpec
    file: str
    frame: pd.DataFrame


@dataclass
class RawLock:
    """A lock folder as read: manifest dict, text tables, and what stopped reading."""

    name: str
    manifest: dict[str, Any] | None
    tables: dict[str, RawTable] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)


def read_lock_folder(path: Path) -> RawLock:
    """Read the manifest and every table of a lock folder as text.

    Parameters
    ----------
    path : Path
        The lock folder.

    Returns
    -------
    RawLock
        What could be read, and a violation for everything that could not.
    """
    violations: list[Violation] = []
    manifest = _read_manifest(path, violations)
    raw = RawLock(name=path.name, manifest=manifest, violations=violations)
    for spec in TABLES:
        candidates = [path / f"{spec.name}{suffix}" for suffix in TABLE_SUFFIXES]
        present = [candidate for candidate in candidates if candidate.is_file()]
        if not present:
            raw.violations.append(
                Violation(
                    path.name,
                    spec.name,
                    None,
                    None,
                    None,
                    "table-missing",
                    f"table {spec.name} is missing: expected {spec.name}.csv or {spec.name}.parquet",
                )
            )
            continue
        if len(present) > 1:
            raw.violations.append(
                Violation(
                    path.name,
                    spec.name,
                    None,
                    None,
                    None,
                    "table-ambiguous",
                    f"table {spec.name} is given both as CSV and as Parquet; keep one",
                )
            )
            continue
        table = _read_table(present[0], spec, raw.violations)
        if table is not None:
            raw.tables[spec.name] = table
    return raw


def _read_manifest(folder: Path, violations: list[Violation]) -> dict[str, Any] | None:
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        violations.append(
            Violation(MANIFEST_FILE, None, None, None, None, "manifest", "manifest.json is missing")
        )
        return None
    try:
        content = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        violations.append(
            Violation(
                MANIFEST_FILE, None, None, None, None, "manifest", f"manifest.json is not valid JSON: {err}"
            )
        )
        return None
    if not isinstance(content, dict):
        violations.append(
            Violation(
                MANIFEST_FILE, None, None, None, None, "manifest", "manifest.json must hold a JSON object"
            )
        )
        return None
    return content


def _read_table(file_path: Path, spec: TableSpec, violations: list[Violation]) -> RawTable | None:
    try:
        if file_path.suffix == ".csv":
            frame = _read_csv_as_text(file_path, spec, violations)
        else:
            frame = _read_parquet_as_text(file_path)
    except pd.errors.ParserError as err:
        violations.append(_field_count_violation(file_path.name, spec.name, err))
        return None
    except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException, csv.Error) as err:
        violations.append(
            Violation(
                file_path.name,
                spec.name,
                None,
                None,
                None,
                "table-unreadable",
                f"cannot read {file_path.name}: {type(err).__name__}: {_first_line(err)}",
            )
        )
        return None
    if frame is None:
        return None
    return RawTable(spec=spec, file=file_path.name, frame=frame)


def _field_count_violation(file: str, table: str, err: pd.errors.ParserError) -> Violation:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if found is None:
        return Violation(
            file, table, None, None, None, "table-unreadable", f"cannot read {file}: {_first_line(err)}"
        )
    expected, line, saw = (int(group) for group in found.groups())
    return Violation(
        file,
        table,
        line - 1,
        None,
        None,
        "table-unreadable",
        f"row has {saw} fields but the header has {expected}",
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else ""


def _read_csv_as_text(file_path: Path, spec: TableSpec, violations: list[Violation]) -> pd.DataFrame | None:
    with file_path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        violations.append(
            Violation(
                file_path.name,
                spec.name,
                None,
                None,
                None,
                "table-unreadable",
                f"{file_path.name} is empty: expected a header row",
            )
        )
        return None
    header = [name.strip() for name in header]
    unnamed = [position for position, name in enumerate(header, start=1) if not name]
    for position in unnamed:
        violations.append(
            Violation(
                file_path.name,
                spec.name,
                None,
                None,
                None,
                "column-unnamed",
                f"header cell {position} is empty: every column needs a name",
            )
        )
    duplicated = [name for name, count in Counter(header).items() if count > 1]
    for name in duplicated:
        violations.append(
            Violation(
                file_path.name,
                spec.name,
                None,
                name,
                None,
                "column-duplicate",
                f"column {name!r} appears {header.count(name)} times in the header",
            )
        )
    if duplicated or unnamed:
        return None
    frame = pd.read_csv(
        file_path,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        encoding="utf-8",
        header=0,
        names=header,
        on_bad_lines="error",
        engine="c",
    )
    return frame.apply(lambda column: column.str.strip())


def _read_parquet_as_text(file_path: Path) -> pd.DataFrame:
    table = pq.read_table(file_path)
    columns = {name: _arrow_column_as_text(table.column(name)) for name in table.column_names}
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _arrow_column_as_text(column: pa.ChunkedArray) -> np.ndarray:
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        values = pd.Series(column.to_pandas(), dtype="datetime64[ns]" if pa.types.is_date(kind) else None)
        text = pd.to_datetime(values).dt.strftime("%Y-%m-%d")
    elif pa.types.is_boolean(kind):
        text = column.to_pandas().map({True: "true", False: "false"})
    elif pa.types.is_integer(kind):
        text = column.to_pandas().astype("Int64").astype("string")
    elif pa.types.is_floating(kind):
        text = column.to_pandas().map(lambda value: "" if pd.isna(value) else repr(float(value)))
    else:
        text = column.to_pandas().astype("string")
    return text.fillna("").astype(str).str.strip().to_numpy(dtype=object)
