"""Rules across rows and tables: keys, line numbering, and time (vectorised).

These run on typed frames from :mod:`features.cell_checks`; a cell that was invalid there is NA
here and is skipped, so one mistake is reported once. Dates are never shown: a time violation
says how many days separate the two dates it compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.errors import Violation
from features.schema import TABLES_BY_NAME, Kind

_WITHHELD = "<patient_id withheld>"


@dataclass(frozen=True)
class ParsedTable:
    """A typed table, the file it came from, and which cells already failed a cell rule."""

    name: str
    file: str
    frame: pd.DataFrame
    invalid: pd.DataFrame

    def patients_with_invalid(self, columns: list[str]) -> pd.Series:
        """Return the patient ids with an invalid cell in ``columns`` (rules across rows skip them)."""
        bad = self.invalid[columns].any(axis=1)
        return self.frame.loc[bad, "patient_id"].dropna()


def check_records(
    tables: dict[str, ParsedTable], lock_date: pd.Timestamp | None, overlap_tolerance_days: int
) -> list[Violation]:
    """Check keys and time rules across the typed tables of one lock.

    Parameters
    ----------
    tables : dict of str to ParsedTable
        The tables that could be read, by name.
    lock_date : Timestamp or None
        The manifest's lock date (None when the manifest was invalid: date-after-lock is skipped).
    overlap_tolerance_days : int
        How many days a line may start before the previous line's end.

    Returns
    -------
    list of Violation
        Every violation, grouped by rule.
    """
    violations: list[Violation] = []
    patients = tables.get("patients")
    known_ids: pd.Series | None = None
    if patients is not None:
        violations += _duplicate_patients(patients)
        known_ids = patients.frame["patient_id"].dropna()
        violations += _death_consistency(patients)
    for name, table in tables.items():
        if name != "patients" and known_ids is not None:
            violations += _orphans(table, known_ids)
        if lock_date is not None:
            violations += _after_lock_date(table, lock_date)
    if patients is not None:
        for name, table in tables.items():
            if name != "patients":
                violations += _after_death(table, patients.frame)
    lines = tables.get("lines")
    if lines is not None:
        violations += _line_keys(lines)
        violations += _line_times(lines, overlap_tolerance_days)
        progressions = tables.get("progressions")
        if progressions is not None:
            violations += _progressions_within_lines(progressions, lines)
    return violations


def _row_violation(table: ParsedTable, index: int, column: str | None, rule: str, message: str) -> Violation:
    value = _WITHHELD if column == "patient_id" else None
    return Violation(table.file, table.name, int(index) + 1, column, value, rule, message)


def _days(delta: pd.Timedelta) -> str:
    days = int(delta / pd.Timedelta(days=1))
    return f"{days} day{'s' if abs(days) != 1 else ''}"


def _duplicate_patients(patients: ParsedTable) -> list[Violation]:
    ids = patients.frame["patient_id"]
    first_row = pd.Series(ids.index, index=ids.index).groupby(ids, dropna=True).transform("min")
    duplicated = ids.notna() & ids.duplicated(keep="first")
    return [
        _row_violation(
            patients,
            i,
            "patient_id",
            "patient-duplicate",
            f"patient_id already used in row {int(first_row[i]) + 1}",
        )
        for i in ids.index[duplicated]
    ]


def _orphans(table: ParsedTable, known_ids: pd.Series) -> list[Violation]:
    ids = table.frame["patient_id"]
    orphan = ids.notna() & ~ids.isin(known_ids)
    return [
        _row_violation(table, i, "patient_id", "patient-orphan", "patient_id is not in patients")
        for i in ids.index[orphan]
    ]


def _date_columns(table: ParsedTable) -> list[str]:
    spec = TABLES_BY_NAME[table.name]
    return [c.name for c in spec.columns if c.kind is Kind.DATE and c.name in table.frame.columns]


def _after_lock_date(table: ParsedTable, lock_date: pd.Timestamp) -> list[Violation]:
    violations = []
    for column in _date_columns(table):
        dates = pd.to_datetime(table.frame[column])
        for i in dates.index[dates > lock_date]:
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
    frame = patients.frame
    violations = []
    checkable = ~patients.invalid[["death_date", "vital_status", "last_contact_date"]].any(axis=1)
    dead = (frame["vital_status"] == "dead") & checkable
    alive = (frame["vital_status"] == "alive") & checkable
    death = pd.to_datetime(frame["death_date"])
    contact = pd.to_datetime(frame["last_contact_date"])
    diagnosis = pd.to_datetime(frame["metastatic_dx_date"])
    for i in frame.index[dead & death.isna()]:
        violations.append(
            _row_violation(
                patients,
                i,
                "death_date",
                "death-date-missing",
                "vital_status is dead but death_date is empty",
            )
        )
    for i in frame.index[alive & death.notna()]:
        violations.append(
            _row_violation(
                patients,
                i,
                "death_date",
                "death-date-missing",
                "vital_status is alive but death_date is filled",
            )
        )
    mismatch = death.notna() & contact.notna() & (death != contact)
    for i in frame.index[mismatch]:
        violations.append(
            _row_violation(
                patients,
                i,
                "last_contact_date",
                "death-date-mismatch",
                f"last_contact_date differs from death_date by {_days(contact[i] - death[i])}",
            )
        )
    early = contact.notna() & diagnosis.notna() & (contact < diagnosis)
    for i in frame.index[early]:
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


def _after_death(table: ParsedTable, patients: pd.DataFrame) -> list[Violation]:
    deaths = (
        patients.loc[
            patients["death_date"].notna() & patients["patient_id"].notna(), ["patient_id", "death_date"]
        ]
        .drop_duplicates("patient_id")
        .set_index("patient_id")["death_date"]
    )
    death = pd.to_datetime(table.frame["patient_id"].map(deaths))
    violations = []
    for column in _date_columns(table):
        dates = pd.to_datetime(table.frame[column])
        for i in dates.index[dates > death]:
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


def _line_keys(lines: ParsedTable) -> list[Violation]:
    unclear = lines.patients_with_invalid(["line_number"])
    frame = lines.frame[["patient_id", "line_number"]].dropna()
    frame = frame[~frame["patient_id"].isin(unclear)]
    violations = []
    duplicated = frame.duplicated(keep="first")
    for i in frame.index[duplicated]:
        violations.append(
            _row_violation(
                lines,
                i,
                "line_number",
                "line-duplicate",
                f"line {int(frame.at[i, 'line_number'])} appears twice for this patient",
            )
        )
    unique = frame[~duplicated].sort_values(["patient_id", "line_number"], kind="stable")
    expected = unique.groupby("patient_id").cumcount() + 1
    gap = unique["line_number"] != expected
    first_gap = gap & ~gap.groupby(unique["patient_id"]).shift(1, fill_value=False).astype(bool)
    for i in unique.index[first_gap]:
        violations.append(
            _row_violation(
                lines,
                i,
                "line_number",
                "line-numbering",
                f"line {int(unique.at[i, 'line_number'])} follows a gap: expected line {int(expected[i])}",
            )
        )
    return violations


def _line_times(lines: ParsedTable, tolerance_days: int) -> list[Violation]:
    frame = lines.frame
    start = pd.to_datetime(frame["start_date"])
    end = pd.to_datetime(frame["end_date"])
    violations = [
        _row_violation(
            lines,
            i,
            "end_date",
            "line-end-before-start",
            f"line ends {_days(start[i] - end[i])} before it starts",
        )
        for i in frame.index[end < start]
    ]
    unclear = lines.patients_with_invalid(["line_number", "start_date", "end_date"])
    keyed = frame[["patient_id", "line_number"]].assign(start=start, end=end)
    keyed = keyed[~keyed["patient_id"].isin(unclear)]
    keyed = keyed.dropna(subset=["patient_id", "line_number", "start"])
    keyed = keyed[~keyed.duplicated(["patient_id", "line_number"])]
    keyed = keyed.sort_values(["patient_id", "line_number"], kind="stable")
    same_patient = keyed["patient_id"].eq(keyed["patient_id"].shift(1))
    previous_end = keyed["end"].shift(1)
    previous_number = keyed["line_number"].shift(1)
    tolerance = pd.Timedelta(days=tolerance_days)
    ongoing_before = same_patient & previous_end.isna()
    for i in keyed.index[ongoing_before]:
        violations.append(
            _row_violation(
                lines,
                i,
                "start_date",
                "line-overlap",
                f"line {int(previous_number[i])} has no end_date (ongoing) but a later line exists",
            )
        )
    overlap = same_patient & previous_end.notna() & (keyed["start"] < previous_end - tolerance)
    for i in keyed.index[overlap]:
        violations.append(
            _row_violation(
                lines,
                i,
                "start_date",
                "line-overlap",
                f"line starts {_days(previous_end[i] - keyed.at[i, 'start'])} before line "
                f"{int(previous_number[i])} ends (tolerance {tolerance_days} days)",
            )
        )
    return violations


def _progressions_within_lines(progressions: ParsedTable, line_table: ParsedTable) -> list[Violation]:
    lines = line_table.frame
    unclear = line_table.patients_with_invalid(["line_number", "start_date", "end_date"])
    line_spans = (
        lines[["patient_id", "line_number"]]
        .assign(start=pd.to_datetime(lines["start_date"]), end=pd.to_datetime(lines["end_date"]))
        .dropna(subset=["patient_id", "line_number"])
        .drop_duplicates(["patient_id", "line_number"])
    )
    frame = progressions.frame
    keyed = frame[["patient_id", "line_number"]].assign(date=pd.to_datetime(frame["date"]), row=frame.index)
    keyed = keyed.dropna(subset=["patient_id", "line_number"])
    keyed = keyed[~keyed["patient_id"].isin(unclear)]
    merged = keyed.merge(line_spans, on=["patient_id", "line_number"], how="left", indicator=True)
    merged = merged.set_index("row")
    violations = []
    for i in merged.index[merged["_merge"] == "left_only"]:
        violations.append(
            _row_violation(
                progressions,
                i,
                "line_number",
                "progression-line-missing",
                f"the patient has no line {int(merged.at[i, 'line_number'])} in lines",
            )
        )
    before = merged["date"] < merged["start"]
    after = merged["end"].notna() & (merged["date"] > merged["end"])
    for i in merged.index[before]:
        violations.append(
            _row_violation(
                progressions,
                i,
                "date",
                "progression-outside-line",
                f"progression is {_days(merged.at[i, 'start'] - merged.at[i, 'date'])} before "
                f"line {int(merged.at[i, 'line_number'])} starts",
            )
        )
    for i in merged.index[after]:
        violations.append(
            _row_violation(
                progressions,
                i,
                "date",
                "progression-outside-line",
                f"progression is {_days(merged.at[i, 'date'] - merged.at[i, 'end'])} after "
                f"line {int(merged.at[i, 'line_number'])} ends",
            )
        )
    return violations
