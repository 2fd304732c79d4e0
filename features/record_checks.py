"""Rules across rows and tables: keys, line numbering, and time (vectorised).

These run on typed columns from :mod:`linewise.features.cell_checks`; a cell that was invalid there is
missing here and is skipped, so one mistake is reported once. Dates are never shown: a time
violation says how many days separate the two dates it compared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linewise.features.errors import WITHHELD, Violation
from linewise.features.joins import key_codes, positions_of, take
from linewise.features.schema import TABLES_BY_NAME, Kind

_NAT = np.datetime64("NaT", "D")


@dataclass(frozen=True)
class ParsedTable:
    """A typed table, the file it came from, and which cells already failed a cell rule.

    ``columns`` and ``invalid`` are as returned by :func:`linewise.features.cell_checks.parse_table`.
    """

    name: str
    file: str
    columns: Mapping[str, np.ndarray]
    invalid: Mapping[str, np.ndarray]


def check_records(
    tables: dict[str, ParsedTable], lock_date: dt.date | None, overlap_tolerance_days: int
) -> list[Violation]:
    """Check keys and time rules across the typed tables of one lock.

    Parameters
    ----------
    tables : dict of str to ParsedTable
        The tables that could be read, by name.
    lock_date : date or None
        The manifest's lock date (None when the manifest was invalid: date-after-lock is skipped).
    overlap_tolerance_days : int
        How many days a line may start before the previous line's end.

    Returns
    -------
    list of Violation
        Every violation, grouped by rule.
    """
    violations: list[Violation] = []
    # one integer per distinct patient_id across the tables (-1 where it is missing)
    codes = dict(
        zip(tables, _patient_codes([table.columns["patient_id"] for table in tables.values()]), strict=True)
    )
    patients = tables.get("patients")
    known_ids: np.ndarray | None = None
    if patients is not None:
        violations += _duplicate_patients(patients, codes["patients"])
        known_ids = codes["patients"][codes["patients"] >= 0]
        violations += _death_consistency(patients)
    limit = None if lock_date is None else np.datetime64(lock_date, "D")
    for name, table in tables.items():
        if name != "patients" and known_ids is not None:
            violations += _orphans(table, codes[name], known_ids)
        if limit is not None:
            violations += _after_lock_date(table, limit)
    if patients is not None:
        death_of = _death_by_code(patients, codes["patients"], 1 + sum(len(c) for c in codes.values()))
        for name, table in tables.items():
            if name != "patients":
                violations += _after_death(table, codes[name], death_of)
    lines = tables.get("lines")
    if lines is not None:
        violations += _line_keys(lines, codes["lines"])
        violations += _line_times(lines, codes["lines"], overlap_tolerance_days)
        progressions = tables.get("progressions")
        if progressions is not None:
            violations += _progressions_within_lines(
                progressions, codes["progressions"], lines, codes["lines"]
            )
    return violations


def _patient_codes(ids: list[np.ndarray]) -> list[np.ndarray]:
    if not ids:
        return []
    codes = key_codes(*([column] for column in ids))
    # key_codes gives a missing id a code of its own: make it -1, which matches nothing
    missing = [pd.isna(column) for column in ids]
    return [np.where(gap, -1, code) for code, gap in zip(codes, missing, strict=True)]


def _previous(values: np.ndarray, first: object) -> np.ndarray:
    """Return the values shifted down by one row, ``first`` in the first row."""
    shifted = np.empty_like(values)
    shifted[:1] = first
    shifted[1:] = values[:-1]
    return shifted


def _same_as_previous(values: np.ndarray) -> np.ndarray:
    same = np.zeros(len(values), dtype=bool)
    same[1:] = values[1:] == values[:-1]
    return same


def _row_violation(
    table: ParsedTable, index: int | np.integer, column: str | None, rule: str, message: str
) -> Violation:
    value = WITHHELD if column == "patient_id" else None
    return Violation(table.file, table.name, int(index) + 1, column, value, rule, message)


def _days(delta: np.timedelta64) -> str:
    days = int(delta.astype("timedelta64[D]").astype(np.int64))
    return f"{days} day{'s' if abs(days) != 1 else ''}"


def _with_invalid(table: ParsedTable, codes: np.ndarray, columns: list[str]) -> np.ndarray:
    """Return the codes of the patients with an invalid cell in ``columns`` (rules across rows skip them)."""
    bad = np.zeros(len(codes), dtype=bool)
    for column in columns:
        bad |= table.invalid[column]
    return codes[bad & (codes >= 0)]


def _duplicate_patients(patients: ParsedTable, codes: np.ndarray) -> list[Violation]:
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    first_row = first[inverse.reshape(-1)]
    duplicated = (codes >= 0) & (first_row != np.arange(len(codes)))
    return [
        _row_violation(
            patients,
            i,
            "patient_id",
            "patient-duplicate",
            f"patient_id already used in row {int(first_row[i]) + 1}",
        )
        for i in np.flatnonzero(duplicated)
    ]


def _orphans(table: ParsedTable, codes: np.ndarray, known_ids: np.ndarray) -> list[Violation]:
    orphan = (codes >= 0) & ~np.isin(codes, known_ids)
    return [
        _row_violation(table, i, "patient_id", "patient-orphan", "patient_id is not in patients")
        for i in np.flatnonzero(orphan)
    ]


def _date_columns(table: ParsedTable) -> list[str]:
    spec = TABLES_BY_NAME[table.name]
    return [c.name for c in spec.columns if c.kind is Kind.DATE and c.name in table.columns]


def _after_lock_date(table: ParsedTable, lock_date: np.datetime64) -> list[Violation]:
    violations = []
    for column in _date_columns(table):
        dates = table.columns[column]
        for i in np.flatnonzero(dates > lock_date):
            violations.append(
                _row_violation(
                    table,
                    i,
                    column,
                    "after-lock-date",
                    f"date is {_days(dates[i] - lock_date)} after the lock date",
                )
            )
    return violations


def _death_consistency(patients: ParsedTable) -> list[Violation]:
    columns, invalid = patients.columns, patients.invalid
    violations = []
    checkable = ~(invalid["death_date"] | invalid["vital_status"] | invalid["last_contact_date"])
    dead = np.equal(columns["vital_status"], "dead") & checkable
    alive = np.equal(columns["vital_status"], "alive") & checkable
    death = columns["death_date"]
    contact = columns["last_contact_date"]
    diagnosis = columns["metastatic_dx_date"]
    for i in np.flatnonzero(dead & np.isnat(death)):
        violations.append(
            _row_violation(
                patients,
                i,
                "death_date",
                "death-date-missing",
                "vital_status is dead but death_date is empty",
            )
        )
    for i in np.flatnonzero(alive & ~np.isnat(death)):
        violations.append(
            _row_violation(
                patients,
                i,
                "death_date",
                "death-date-missing",
                "vital_status is alive but death_date is filled",
            )
        )
    mismatch = ~np.isnat(death) & ~np.isnat(contact) & (death != contact)
    for i in np.flatnonzero(mismatch):
        violations.append(
            _row_violation(
                patients,
                i,
                "last_contact_date",
                "death-date-mismatch",
                f"last_contact_date differs from death_date by {_days(contact[i] - death[i])}",
            )
        )
    early = ~np.isnat(contact) & ~np.isnat(diagnosis) & (contact < diagnosis)
    for i in np.flatnonzero(early):
        violations.append(
            _row_violation(
                patients,
                i,
                "last_contact_date",
                "contact-before-diagnosis",
                f"last contact is {_days(diagnosis[i] - contact[i])} before metastatic diagnosis",
            )
        )
    return violations


def _death_by_code(patients: ParsedTable, codes: np.ndarray, size: int) -> np.ndarray:
    """Return the death date of each patient code (the first row's with a death date), NaT if none."""
    death = patients.columns["death_date"]
    rows = np.flatnonzero(~np.isnat(death) & (codes >= 0))
    _, first = np.unique(codes[rows], return_index=True)
    death_of = np.full(size, _NAT)
    death_of[codes[rows[first]]] = death[rows[first]]
    return death_of


def _after_death(table: ParsedTable, codes: np.ndarray, death_of: np.ndarray) -> list[Violation]:
    death = take(death_of, codes, _NAT)
    violations = []
    for column in _date_columns(table):
        dates = table.columns[column]
        for i in np.flatnonzero(dates > death):
            violations.append(
                _row_violation(
                    table,
                    i,
                    column,
                    "after-death",
                    f"date is {_days(dates[i] - death[i])} after the patient's death",
                )
            )
    return violations


def _line_order(codes: np.ndarray, numbers: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return ``rows`` without repeated (patient, line) pairs, sorted by patient then line number."""
    key = codes[rows] * 128 + numbers[rows].astype(np.int64)  # line numbers are 1 to 99
    _, first = np.unique(key, return_index=True)  # sorted by key, each key at its first row
    return rows[first]


def _line_keys(lines: ParsedTable, codes: np.ndarray) -> list[Violation]:
    numbers = lines.columns["line_number"]
    unclear = _with_invalid(lines, codes, ["line_number"])
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isin(codes, unclear))
    unique = _line_order(codes, numbers, rows)
    violations = []
    for i in np.setdiff1d(rows, unique):
        violations.append(
            _row_violation(
                lines,
                i,
                "line_number",
                "line-duplicate",
                f"line {int(numbers[i])} appears twice for this patient",
            )
        )
    same_patient = _same_as_previous(codes[unique])
    starts = np.flatnonzero(~same_patient)
    expected = np.arange(len(unique)) - np.repeat(starts, np.diff(np.r_[starts, len(unique)])) + 1
    gap = numbers[unique] != expected
    first_gap = gap & ~(same_patient & _previous(gap, False))
    for position in np.flatnonzero(first_gap):
        i = unique[position]
        violations.append(
            _row_violation(
                lines,
                i,
                "line_number",
                "line-numbering",
                f"line {int(numbers[i])} follows a gap: expected line {int(expected[position])}",
            )
        )
    return violations


def _line_times(lines: ParsedTable, codes: np.ndarray, tolerance_days: int) -> list[Violation]:
    columns = lines.columns
    start, end, numbers = columns["start_date"], columns["end_date"], columns["line_number"]
    violations = [
        _row_violation(
            lines,
            i,
            "end_date",
            "line-end-before-start",
            f"line ends {_days(start[i] - end[i])} before it starts",
        )
        for i in np.flatnonzero(end < start)
    ]
    unclear = _with_invalid(lines, codes, ["line_number", "start_date", "end_date"])
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isnat(start) & ~np.isin(codes, unclear))
    keyed = _line_order(codes, numbers, rows)
    same_patient = _same_as_previous(codes[keyed])
    previous_end = _previous(end[keyed], _NAT)
    previous_number = _previous(numbers[keyed], np.nan)
    tolerance = np.timedelta64(tolerance_days, "D")
    for position in np.flatnonzero(same_patient & np.isnat(previous_end)):
        violations.append(
            _row_violation(
                lines,
                keyed[position],
                "start_date",
                "line-overlap",
                f"line {int(previous_number[position])} has no end_date (ongoing) but a later line exists",
            )
        )
    overlap = same_patient & ~np.isnat(previous_end) & (start[keyed] < previous_end - tolerance)
    for position in np.flatnonzero(overlap):
        i = keyed[position]
        violations.append(
            _row_violation(
                lines,
                i,
                "start_date",
                "line-overlap",
                f"line starts {_days(previous_end[position] - start[i])} before line "
                f"{int(previous_number[position])} ends (tolerance {tolerance_days} days)",
            )
        )
    return violations


def _progressions_within_lines(
    progressions: ParsedTable, codes: np.ndarray, line_table: ParsedTable, line_codes: np.ndarray
) -> list[Violation]:
    lines = line_table.columns
    unclear = _with_invalid(line_table, line_codes, ["line_number", "start_date", "end_date"])
    line_rows = np.flatnonzero((line_codes >= 0) & ~np.isnan(lines["line_number"]))
    line_keys = line_codes[line_rows] * 128 + lines["line_number"][line_rows].astype(np.int64)
    numbers, dates = progressions.columns["line_number"], progressions.columns["date"]
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isin(codes, unclear))
    found = positions_of(codes[rows] * 128 + numbers[rows].astype(np.int64), line_keys)
    line_of = take(line_rows, found, -1)
    violations = []
    for i in rows[line_of < 0]:
        violations.append(
            _row_violation(
                progressions,
                i,
                "line_number",
                "progression-line-missing",
                f"the patient has no line {int(numbers[i])} in lines",
            )
        )
    start = take(lines["start_date"], line_of, _NAT)
    end = take(lines["end_date"], line_of, _NAT)
    date = dates[rows]
    for position in np.flatnonzero(date < start):
        i = rows[position]
        violations.append(
            _row_violation(
                progressions,
                i,
                "date",
                "progression-outside-line",
                f"progression is {_days(start[position] - date[position])} before "
                f"line {int(numbers[i])} starts",
            )
        )
    for position in np.flatnonzero(~np.isnat(end) & (date > end)):
        i = rows[position]
        violations.append(
            _row_violation(
                progressions,
                i,
                "date",
                "progression-outside-line",
                f"progression is {_days(date[position] - end[position])} after line {int(numbers[i])} ends",
            )
        )
    return violations
