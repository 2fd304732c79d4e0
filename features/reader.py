"""Read a lock folder into text frames, before any rule is checked.

Every cell is read as text (stripped of surrounding spaces; an empty cell is ``""``), whatever the
format, so that CSV and Parquet locks go through the same checks. Problems that stop a file from
being read at all are returned as violations, never raised one at a time.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linewise.features.errors import Violation
from linewise.features.schema import MANIFEST_FILE, TABLE_SUFFIXES, TABLES, TableSpec


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
    outside = [name for name in _names_of_lock_files() if _links_outside(path, path / name)]
    if outside:
        return RawLock(name=path.name, manifest=None, violations=[_outside_lock(name) for name in outside])
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


def _names_of_lock_files() -> list[str]:
    return [MANIFEST_FILE] + [f"{spec.name}{suffix}" for spec in TABLES for suffix in TABLE_SUFFIXES]


def _links_outside(folder: Path, file_path: Path) -> bool:
    """Whether a file of the lock is a link that resolves outside the lock folder."""
    if not file_path.is_symlink():
        return False
    return not file_path.resolve().is_relative_to(folder.resolve())


def _outside_lock(name: str) -> Violation:
    table = None if name == MANIFEST_FILE else name.rsplit(".", 1)[0]
    return Violation(
        name,
        table,
        None,
        None,
        None,
        "outside-lock",
        f"{name} is a link to a file outside the lock folder; copy the file into the lock, so that the "
        "lock is one folder that can be checked and archived as a whole",
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"key {repeated[0]!r} appears more than once")
    return dict(pairs)


def _manifest_violation(message: str) -> Violation:
    return Violation(MANIFEST_FILE, None, None, None, None, "manifest", message)


def _read_manifest(folder: Path, violations: list[Violation]) -> dict[str, Any] | None:
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        violations.append(_manifest_violation("manifest.json is missing"))
        return None
    try:
        content = json.loads(manifest_path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        violations.append(_manifest_violation(f"manifest.json is not valid JSON: {_first_line(err)}"))
        return None
    if not isinstance(content, dict):
        violations.append(_manifest_violation("manifest.json must hold a JSON object"))
        return None
    return content


def _unreadable(file: str, table: str, message: str, row: int | None = None) -> Violation:
    return Violation(file, table, row, None, None, "table-unreadable", message)


def _read_table(file_path: Path, spec: TableSpec, violations: list[Violation]) -> RawTable | None:
    try:
        if file_path.suffix == ".csv":
            frame = _read_csv_as_text(file_path, spec, violations)
        else:
            frame = _read_parquet_as_text(file_path)
    except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException, csv.Error) as err:
        violations.append(
            _unreadable(
                file_path.name,
                spec.name,
                f"cannot read {file_path.name}: {type(err).__name__}: {_first_line(err)}",
            )
        )
        return None
    if frame is None:
        return None
    if not _header_is_valid(list(frame.columns), file_path.name, spec, violations):
        return None
    return RawTable(spec=spec, file=file_path.name, frame=frame)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else ""


def _header_is_valid(header: list[str], file: str, spec: TableSpec, violations: list[Violation]) -> bool:
    found = []
    for position, name in enumerate(header, start=1):
        if not name:
            found.append(
                Violation(
                    file,
                    spec.name,
                    None,
                    None,
                    None,
                    "column-unnamed",
                    f"header cell {position} is empty: every column needs a name",
                )
            )
    for name, count in Counter(header).items():
        if name and count > 1:
            found.append(
                Violation(
                    file,
                    spec.name,
                    None,
                    name,
                    None,
                    "column-duplicate",
                    f"column {name!r} appears {count} times in the header",
                )
            )
    violations.extend(found)
    return not found


def _read_csv_as_text(file_path: Path, spec: TableSpec, violations: list[Violation]) -> pd.DataFrame | None:
    """Read a CSV as text: Arrow's reader when the file is well formed, the csv module to say why not."""
    try:
        with file_path.open(encoding="utf-8-sig", newline="") as handle:
            first = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error):
        first = None  # the slow path below says where
    header = [name.strip() for name in first] if first else []
    if header and all(header) and len(set(header)) == len(header):
        try:
            return _read_csv_with_arrow(file_path, header)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            pass  # malformed: the slow path below finds the rows and says what is wrong
    return _read_csv_with_csv_module(file_path, spec, violations)


def _read_csv_with_arrow(file_path: Path, header: list[str]) -> pd.DataFrame:
    table = pacsv.read_csv(
        file_path,
        read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    columns = {name: pc.utf8_trim_whitespace(table.column(name)) for name in header}
    return pd.DataFrame({name: pd.Series(column, dtype=_TEXT) for name, column in columns.items()})


def _read_csv_with_csv_module(
    file_path: Path, spec: TableSpec, violations: list[Violation]
) -> pd.DataFrame | None:
    records = _csv_records(file_path, spec, violations)
    if records is None:
        return None
    if not records:
        violations.append(
            _unreadable(file_path.name, spec.name, f"{file_path.name} is empty: expected a header row")
        )
        return None
    header = [name.strip() for name in records[0]]
    if not any(header):
        violations.append(
            _unreadable(file_path.name, spec.name, "the first line is empty: expected a header row")
        )
        return None
    if not _header_is_valid(header, file_path.name, spec, violations):
        return None
    rows = records[1:]
    width = len(header)
    misshapen = [(number, len(row)) for number, row in enumerate(rows, start=1) if len(row) != width]
    if misshapen and misshapen[-1] == (len(rows), 0):  # a lone blank line at the very end
        misshapen.pop()
        rows = rows[:-1]
    for number, fields in misshapen:
        violations.append(
            _unreadable(
                file_path.name, spec.name, f"row has {fields} fields but the header has {width}", row=number
            )
        )
    if misshapen:
        return None
    frame = (
        pd.DataFrame(rows, columns=header, dtype=object)
        if rows
        else pd.DataFrame(columns=header, dtype=object)
    )
    return frame.apply(lambda column: column.astype(str).str.strip()).astype(_TEXT)


#: Where UTF-8 decoding with ``surrogateescape`` kept a byte it could not decode.
_UNDECODED = re.compile("[\udc80-\udcff]")


def _csv_records(file_path: Path, spec: TableSpec, violations: list[Violation]) -> list[list[str]] | None:
    """Parse a CSV with the csv module, or record one violation and return None.

    A byte that is not UTF-8, or a cell over the csv module's size limit, is one violation naming its
    row (and column), never its text.
    """
    text = file_path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[list[str]] = []
    try:
        records.extend(reader)
    except csv.Error as err:
        row = reader.line_num - 1 if reader.line_num > 1 else None
        violations.append(
            _unreadable(file_path.name, spec.name, f"cannot read the row: {_first_line(err)}", row)
        )
        return None
    header = [name.strip() for name in records[0]] if records else []
    for number, record in enumerate(records):
        for position, cell in enumerate(record):
            if _UNDECODED.search(cell):
                column = header[position] if number and position < len(header) else None
                where = f"the header of {file_path.name}" if number == 0 else "the cell"
                message = (
                    f"{where} is not UTF-8 text (a byte such as Latin-1 or Windows-1252 exports write); "
                    "save the file as UTF-8"
                )
                violations.append(
                    Violation(
                        file_path.name, spec.name, number or None, column, None, "table-unreadable", message
                    )
                )
                return None
    return records


def _read_parquet_as_text(file_path: Path) -> pd.DataFrame:
    names = [str(name) for name in pq.read_schema(file_path).names]
    if len(set(names)) != len(names):  # Arrow cannot read repeated names: the header check reports them
        return pd.DataFrame(columns=names)
    table = pq.read_table(file_path)
    columns = {name: _arrow_column_as_text(table.column(index)) for index, name in enumerate(names)}
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows)).astype(_TEXT)


def _arrow_column_as_text(column: pa.ChunkedArray) -> np.ndarray:
    """Cast a column to text with Arrow itself (no nanosecond limits, no integer overflow)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.date32(), safe=False)
    elif pa.types.is_floating(kind):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, kind), column)  # NaN is a missing value
        present = pc.drop_null(column)
        small_whole = pc.and_(pc.equal(pc.floor(present), present), pc.less(pc.abs(present), 2.0**53))
        if pc.all(small_whole).as_py() is not False:  # whole numbers are written without ".0"
            column = pc.cast(column, pa.int64(), safe=False)
    text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
    return np.asarray(text.to_pandas().fillna("").astype(str).str.strip().to_numpy(dtype=object))


#: Text columns are Arrow-backed strings: vectorised string checks without Python objects.
_TEXT = pd.ArrowDtype(pa.string())
