"""Load a data lock: read, check every rule, pseudonymise, and turn dates into day offsets.

This is the only module that sees raw patient identifiers and calendar dates. What it returns
carries ``patient_key`` (the keyed pseudonym of :mod:`linewise.features.pseudonym`) instead of
``patient_id``, and each date as whole days from the patient's metastatic diagnosis
(``date`` -> ``day``, ``start_date`` -> ``start_day``, ...). The year of metastatic diagnosis is
kept with its month (``metastatic_dx_year``, ``metastatic_dx_month``) for temporal splits and
testing-era effects, and ``lock_day`` gives
each patient's administrative censoring day.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from pandas.arrays import BooleanArray, FloatingArray, IntegerArray, StringArray

from linewise.features.cell_checks import FIRST_YEAR, LAST_YEAR, parse_table
from linewise.features.errors import (
    PATIENT_ID_MAX,
    RULES,
    IdentifierMask,
    LockValidationError,
    LockWarning,
    Omitted,
    Violation,
    bound_violations,
    redact,
    shown_value,
)
from linewise.features.joins import key_codes, positions_of
from linewise.features.pseudonym import pseudonymize
from linewise.features.reader import RawLock, read_lock_folder
from linewise.features.record_checks import ParsedTable, check_records
from linewise.features.schema import (
    MANIFEST_FILE,
    MANIFEST_KEYS,
    SCHEMA_VERSION,
    TABLES,
    TABLES_BY_NAME,
    Kind,
)

#: Default number of days a line may start before the previous line's recorded end (drug washout,
#: last injection recorded after the next line's first dose).
DEFAULT_OVERLAP_TOLERANCE_DAYS: Final = 14
#: The earliest lock_date accepted: the first approval of a CDK4/6 inhibitor (palbociclib, FDA,
#: 2015-02-03); no lock of patients treated with one in first line can be older.
EARLIEST_LOCK_DATE: Final = dt.date(2015, 2, 3)
#: Longest lock_id accepted (it is printed and logged).
LOCK_ID_MAX: Final = 200


@dataclass(frozen=True)
class LockManifest:
    """The manifest of a lock: its id, cut-off date, schema version and source."""

    lock_id: str
    lock_date: dt.date
    schema_version: int
    source: str


@dataclass(frozen=True)
class DataLock:
    """A validated, pseudonymised lock: one typed frame per table.

    Every frame has ``patient_key`` and ``source_row`` (the row in the lock's file, 1-based after
    the header) and day offsets from metastatic diagnosis in place of dates.
    """

    manifest: LockManifest
    patients: pd.DataFrame
    metastases: pd.DataFrame
    lines: pd.DataFrame
    progressions: pd.DataFrame
    local_therapies: pd.DataFrame
    biomarkers: pd.DataFrame
    performance_status: pd.DataFrame

    def table(self, name: str) -> pd.DataFrame:
        """Return the frame of table ``name``."""
        if name not in TABLES_BY_NAME:
            raise KeyError(f"unknown table {name!r}")
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def summary(self) -> dict[str, Any]:
        """Return counts that describe the lock without showing any row.

        Returns
        -------
        dict
            ``lock_id``, ``lock_date``, ``patients``, ``centres``, ``deaths``, ``lines``,
            ``progressions`` and the row count of each table (``rows``).
        """
        return {
            "lock_id": self.manifest.lock_id,
            "lock_date": self.manifest.lock_date.isoformat(),
            "schema_version": self.manifest.schema_version,
            "patients": len(self.patients),
            "centres": int(self.patients["center_id"].nunique()),
            "deaths": int((self.patients["vital_status"] == "dead").sum()),
            "lines": len(self.lines),
            "progressions": len(self.progressions),
            "rows": {spec.name: len(self.table(spec.name)) for spec in TABLES},
        }


def load_lock(
    path: Path | str,
    key: bytes,
    *,
    overlap_tolerance_days: int = DEFAULT_OVERLAP_TOLERANCE_DAYS,
    today: dt.date | None = None,
) -> DataLock:
    """Read and check a lock folder and return its pseudonymised, typed tables.

    Parameters
    ----------
    path : Path or str
        The lock folder, holding ``manifest.json`` and one CSV or Parquet file per table.
    key : bytes
        The pseudonym key (:func:`linewise.features.pseudonym.resolve_key`).
    overlap_tolerance_days : int
        Days a line may start before the previous one's end without a ``line-overlap`` violation.
    today : date, optional
        The day the lock is read (default: the machine's date); ``lock_date`` may not be after it
        (rule ``lock-date``).

    Returns
    -------
    DataLock
        The typed tables.

    Raises
    ------
    LockValidationError
        Listing every violation, if any rule is broken. Nothing is returned or written then.

    Warns
    -----
    LockWarning
        For each column that the contract does not declare (it is kept, as text).
    """
    if overlap_tolerance_days < 0:
        raise ValueError(f"overlap_tolerance_days must be >= 0, found {overlap_tolerance_days}")
    folder = Path(path)
    if not folder.is_dir():
        violation = Violation(
            folder.name, None, None, None, None, "lock-folder", "the lock folder does not exist"
        )
        raise LockValidationError(folder.name, [violation])
    raw = read_lock_folder(folder)
    return load_raw_lock(
        raw,
        lambda raw_id: pseudonymize(raw_id, key),
        overlap_tolerance_days=overlap_tolerance_days,
        read_on=dt.date.today() if today is None else today,
    )


def load_raw_lock(
    raw: RawLock,
    to_key: Callable[[str], str],
    *,
    overlap_tolerance_days: int = DEFAULT_OVERLAP_TOLERANCE_DAYS,
    identifiers_are_pseudonyms: bool = False,
    read_on: dt.date | None = None,
) -> DataLock:
    """Check text tables already read and return the typed lock (the path shared by locks and patients).

    Parameters
    ----------
    raw : RawLock
        Text tables and manifest, from a lock folder or one patient's JSON.
    to_key : callable
        Maps a ``patient_id`` cell to its ``patient_key``.
    overlap_tolerance_days : int
        As for :func:`load_lock`.
    identifiers_are_pseudonyms : bool
        True when the ``patient_id`` cells already hold pseudonyms (a patient file): they may then
        appear in error messages.
    read_on : date, optional
        The day a lock folder is read: its ``lock_date`` must lie between :data:`EARLIEST_LOCK_DATE`
        and this day (rule ``lock-date``). None for a patient file, whose ``as_of`` is its own.

    Returns
    -------
    DataLock
        The typed tables.

    Raises
    ------
    LockValidationError
        Listing every violation.
    """
    violations = list(raw.violations)
    manifest = _check_manifest(raw.manifest, violations, read_on) if raw.manifest is not None else None
    parsed: dict[str, ParsedTable] = {}
    counted: list[Omitted] = []
    for name, table in raw.tables.items():
        columns, invalid, found, omitted = parse_table(table)
        violations += found
        counted += omitted
        parsed[name] = ParsedTable(name, table.file, columns, invalid)
    if "patients" in raw.tables and raw.tables["patients"].frame.empty:
        violations.append(
            Violation(
                raw.tables["patients"].file,
                "patients",
                None,
                None,
                None,
                "patients-empty",
                "the patients table has no rows",
            )
        )
    lock_date = manifest.lock_date if manifest is not None else None
    across_rows = check_records(parsed, lock_date, overlap_tolerance_days)
    violations += across_rows.violations
    counted += across_rows.omitted()
    if violations:
        mask = IdentifierMask(() if identifiers_are_pseudonyms else _raw_ids(raw, parsed))
        shown, omitted = bound_violations(_in_file_order(violations), counted)
        raise LockValidationError(raw.name, redact(shown, mask), omitted)
    assert manifest is not None  # no violation means the manifest was read and checked
    _warn_unknown_columns(raw)
    return _typed_lock(manifest, parsed, to_key)


def _raw_ids(raw: RawLock, parsed: dict[str, ParsedTable]) -> Iterator[str | None]:
    """Yield every patient_id written in the lock (repeated, None where empty).

    The parsed cells are yielded, which are the strings already held (one per distinct cell), then
    the cells too long to be parsed, from the text as read.
    """
    for name, table in raw.tables.items():
        if "patient_id" in table.frame.columns:
            yield from parsed[name].columns["patient_id"]
            cells = table.frame["patient_id"]
            yield from cells[cells.str.len() > PATIENT_ID_MAX]


def _in_file_order(violations: list[Violation]) -> list[Violation]:
    order = {MANIFEST_FILE: -1} | {spec.name: index for index, spec in enumerate(TABLES)}
    return sorted(violations, key=lambda v: (order.get(v.table or MANIFEST_FILE, len(order)), v.row or 0))


def _check_manifest(
    content: dict[str, Any], violations: list[Violation], read_on: dt.date | None
) -> LockManifest | None:
    def fail(key: str, message: str, value: Any = None) -> None:
        shown = None if value is None else shown_value(str(value))
        violations.append(Violation(MANIFEST_FILE, None, None, key, shown, "manifest", message))

    for key in MANIFEST_KEYS:
        if key not in content:
            fail(key, f"manifest.json has no {key}")
    lock_id, lock_date, version, source = (content.get(key) for key in MANIFEST_KEYS)
    parsed_date: dt.date | None = None
    if "lock_id" in content and (not isinstance(lock_id, str) or not lock_id.strip()):
        fail("lock_id", "lock_id must be a non-empty string", lock_id)
    elif isinstance(lock_id, str) and len(lock_id.strip()) > LOCK_ID_MAX:
        fail("lock_id", f"lock_id must be at most {LOCK_ID_MAX} characters", lock_id)
    if "lock_date" in content:
        if isinstance(lock_date, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", lock_date):
            try:
                parsed_date = dt.date.fromisoformat(lock_date)
            except ValueError:
                parsed_date = None
            if parsed_date is not None and not FIRST_YEAR <= parsed_date.year <= LAST_YEAR:
                parsed_date = None
        if parsed_date is None:
            fail(
                "lock_date",
                f"lock_date must be a date YYYY-MM-DD between {FIRST_YEAR} and {LAST_YEAR}",
                lock_date,
            )
    if parsed_date is not None and read_on is not None and not EARLIEST_LOCK_DATE <= parsed_date <= read_on:
        violations.append(
            Violation(MANIFEST_FILE, None, None, "lock_date", lock_date, "lock-date", RULES["lock-date"])
        )
        parsed_date = None
    if "schema_version" in content and (isinstance(version, bool) or version != SCHEMA_VERSION):
        fail("schema_version", f"schema_version must be {SCHEMA_VERSION}", version)
    if "source" in content and not isinstance(source, str):
        fail("source", "source must be a string", source)
    if any(v.file == MANIFEST_FILE for v in violations) or parsed_date is None:
        return None
    if not isinstance(lock_id, str) or not isinstance(source, str):
        return None
    return LockManifest(
        lock_id=lock_id.strip(), lock_date=parsed_date, schema_version=SCHEMA_VERSION, source=source
    )


def _warn_unknown_columns(raw: RawLock) -> None:
    for table in raw.tables.values():
        declared = table.spec.column_names
        for name in table.frame.columns:
            if name not in declared:
                warnings.warn(
                    f"{table.file}: column {name!r} is not in the data-lock contract; it is kept as text",
                    LockWarning,
                    stacklevel=3,
                )


def _day_name(column: str) -> str:
    if column == "date":
        return "day"
    if column == "date_detected":
        return "day_detected"
    return column.removesuffix("_date") + "_day"


def _typed_lock(
    manifest: LockManifest, parsed: dict[str, ParsedTable], to_key: Callable[[str], str]
) -> DataLock:
    patients = parsed["patients"].columns
    keys = np.array([to_key(str(raw_id)) for raw_id in patients["patient_id"]], dtype=object)
    diagnosis = patients["metastatic_dx_date"]
    # the patients' ids are unique and every other row's id is among them (both were checked)
    rows_of = key_codes(*([table.columns["patient_id"]] for table in parsed.values()))
    patient_row = dict(zip(parsed, rows_of, strict=True))
    first = patient_row["patients"]
    frames: dict[str, pd.DataFrame] = {}
    for spec in TABLES:
        columns = parsed[spec.name].columns
        row = positions_of(patient_row[spec.name], first)
        dx = diagnosis[row]
        typed: dict[str, Any] = {
            "patient_key": _strings(keys[row]),
            "source_row": np.arange(1, len(row) + 1, dtype=np.int64),
        }
        for column in spec.columns:
            values = columns[column.name]
            if column.kind is Kind.PATIENT_ID:
                continue
            if column.kind is Kind.DATE:
                if column.name == "metastatic_dx_date":
                    typed["metastatic_dx_year"] = _integers(values.astype("datetime64[Y]"), 1970)
                    typed["metastatic_dx_month"] = _integers(values.astype("datetime64[M]"), 0, months=True)
                    continue
                typed[_day_name(column.name)] = _integers(values - dx)
            elif column.kind is Kind.INTEGER:
                typed[column.name] = IntegerArray(np.nan_to_num(values).astype(np.int64), np.isnan(values))
            elif column.kind is Kind.NUMBER:
                typed[column.name] = FloatingArray(values, np.isnan(values))
            elif column.kind is Kind.BOOLEAN:
                typed[column.name] = BooleanArray(np.equal(values, True), pd.isna(values))
            else:
                typed[column.name] = _strings(values)
        if spec.name == "patients":
            typed["lock_day"] = _integers(np.datetime64(manifest.lock_date, "D") - dx)
        declared = spec.column_names
        for extra in columns:
            if extra not in declared:
                typed[extra] = _strings(columns[extra])
        frames[spec.name] = pd.DataFrame(typed)
    return DataLock(manifest=manifest, **frames)


def _strings(values: np.ndarray) -> StringArray:
    """Text as pandas strings, NA where missing."""
    return StringArray(np.where(pd.isna(values), pd.NA, values))


def _integers(values: np.ndarray, offset: int = 0, *, months: bool = False) -> IntegerArray:
    """Whole days (``timedelta64[D]``), years or months (``datetime64[Y]`` or ``[M]``) as Int64, NA at NaT."""
    missing = np.isnat(values)
    numbers = np.where(missing, 0, values.astype(np.int64))
    if months:
        numbers = numbers % 12 + 1
    return IntegerArray(numbers + offset, missing)
