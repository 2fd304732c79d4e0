"""Rules across rows and tables: keys, line numbering, and time (vectorised).

These run on typed columns from :mod:`linewise.features.cell_checks`; a cell that was invalid there is
missing here and is skipped, so one mistake is reported once. Dates are never shown: a time
violation says how many days separate the two dates it compared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from linewise.features.errors import SHOWN_PER_RULE, WITHHELD, Omitted, Violation
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


#: A message: the same for every row, or built from the position ``k`` in the rows reported (only
#: for the violations kept).
Message = str | Callable[[int], str]


@dataclass
class Findings:
    """The violations found across rows, at most :data:`SHOWN_PER_RULE` per table and rule, and counts.

    A million orphan rows cost a count, not a million violations: past the bound of its table and
    rule a violation is counted and never built.
    """

    violations: list[Violation] = field(default_factory=list)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(
        self, table: ParsedTable, rows: np.ndarray, column: str | None, rule: str, message: Message
    ) -> None:
        """Report a violation of ``rule`` at each of ``rows`` (0-based, in file order) of ``table``.

        Parameters
        ----------
        table : ParsedTable
            Where the rows are.
        rows : ndarray of int
            The rows that break the rule.
        column : str or None
            The column the violation is reported at (a ``patient_id`` is never shown).
        rule : str
            The rule broken.
        message : str or callable
            The message, or a function of the position ``k`` in ``rows`` that builds it.
        """
        where = (table.file, rule)
        before = self.counts.get(where, 0)
        self.counts[where] = before + len(rows)
        value = WITHHELD if column == "patient_id" else None
        for k in range(min(max(SHOWN_PER_RULE - before, 0), len(rows))):
            text = message if isinstance(message, str) else message(k)
            self.violations.append(
                Violation(table.file, table.name, int(rows[k]) + 1, column, value, rule, text)
            )

    def omitted(self) -> list[Omitted]:
        """Return the counts of the violations found and not kept, per file and rule."""
        return [
            Omitted(file, rule, count - SHOWN_PER_RULE)
            for (file, rule), count in self.counts.items()
            if count > SHOWN_PER_RULE
        ]


def check_records(
    tables: dict[str, ParsedTable], lock_date: dt.date | None, overlap_tolerance_days: int
) -> Findings:
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
    Findings
        The first :data:`SHOWN_PER_RULE` violations of each table and rule, grouped by rule, and how
        many more there are.
    """
    found = Findings()
    # one integer per distinct patient_id across the tables (-1 where it is missing)
    codes = dict(
        zip(tables, _patient_codes([table.columns["patient_id"] for table in tables.values()]), strict=True)
    )
    patients = tables.get("patients")
    known_ids: np.ndarray | None = None
    if patients is not None:
        _duplicate_patients(found, patients, codes["patients"])
        known_ids = codes["patients"][codes["patients"] >= 0]
        _death_consistency(found, patients)
    limit = None if lock_date is None else np.datetime64(lock_date, "D")
    for name, table in tables.items():
        if name != "patients" and known_ids is not None:
            _orphans(found, table, codes[name], known_ids)
        if limit is not None:
            _after_lock_date(found, table, limit)
    if patients is not None:
        death_of = _death_by_code(patients, codes["patients"], 1 + sum(len(c) for c in codes.values()))
        for name, table in tables.items():
            if name != "patients":
                _after_death(found, table, codes[name], death_of)
    lines = tables.get("lines")
    if lines is not None:
        _line_keys(found, lines, codes["lines"])
        _line_times(found, lines, codes["lines"], overlap_tolerance_days)
        progressions = tables.get("progressions")
        if progressions is not None:
            _progressions_within_lines(found, progressions, codes["progressions"], lines, codes["lines"])
    return found


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


def _days(delta: np.timedelta64) -> str:
    days = int(delta.astype("timedelta64[D]").astype(np.int64))
    return f"{days} day{'s' if abs(days) != 1 else ''}"


def _days_between(
    later: np.ndarray, earlier: np.ndarray, rows: np.ndarray, template: str
) -> Callable[[int], str]:
    """Return the message at position ``k`` of ``rows``: ``template`` with the days from earlier to later."""
    return lambda k: template.format(_days(later[rows[k]] - earlier[rows[k]]))


def _with_invalid(table: ParsedTable, codes: np.ndarray, columns: list[str]) -> np.ndarray:
    """Return the codes of the patients with an invalid cell in ``columns`` (rules across rows skip them)."""
    bad = np.zeros(len(codes), dtype=bool)
    for column in columns:
        bad |= table.invalid[column]
    return codes[bad & (codes >= 0)]


def _duplicate_patients(found: Findings, patients: ParsedTable, codes: np.ndarray) -> None:
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    first_row = first[inverse.reshape(-1)]
    rows = np.flatnonzero((codes >= 0) & (first_row != np.arange(len(codes))))
    found.add(
        patients,
        rows,
        "patient_id",
        "patient-duplicate",
        lambda k: f"patient_id already used in row {int(first_row[rows[k]]) + 1}",
    )


def _orphans(found: Findings, table: ParsedTable, codes: np.ndarray, known_ids: np.ndarray) -> None:
    orphan = (codes >= 0) & ~np.isin(codes, known_ids)
    found.add(table, np.flatnonzero(orphan), "patient_id", "patient-orphan", "patient_id is not in patients")


def _date_columns(table: ParsedTable) -> list[str]:
    spec = TABLES_BY_NAME[table.name]
    return [c.name for c in spec.columns if c.kind is Kind.DATE and c.name in table.columns]


def _after_lock_date(found: Findings, table: ParsedTable, lock_date: np.datetime64) -> None:
    for column in _date_columns(table):
        dates = table.columns[column]
        rows = np.flatnonzero(dates > lock_date)
        found.add(
            table,
            rows,
            column,
            "after-lock-date",
            _days_between(
                dates, np.broadcast_to(lock_date, dates.shape), rows, "date is {} after the lock date"
            ),
        )


def _death_consistency(found: Findings, patients: ParsedTable) -> None:
    columns, invalid = patients.columns, patients.invalid
    checkable = ~(invalid["death_date"] | invalid["vital_status"] | invalid["last_contact_date"])
    dead = np.equal(columns["vital_status"], "dead") & checkable
    alive = np.equal(columns["vital_status"], "alive") & checkable
    death = columns["death_date"]
    contact = columns["last_contact_date"]
    diagnosis = columns["metastatic_dx_date"]
    found.add(
        patients,
        np.flatnonzero(dead & np.isnat(death)),
        "death_date",
        "death-date-missing",
        "vital_status is dead but death_date is empty",
    )
    found.add(
        patients,
        np.flatnonzero(alive & ~np.isnat(death)),
        "death_date",
        "death-date-missing",
        "vital_status is alive but death_date is filled",
    )
    mismatch = np.flatnonzero(~np.isnat(death) & ~np.isnat(contact) & (death != contact))
    found.add(
        patients,
        mismatch,
        "last_contact_date",
        "death-date-mismatch",
        lambda k: (
            f"last_contact_date differs from death_date by {_days(contact[mismatch[k]] - death[mismatch[k]])}"
        ),
    )
    early = np.flatnonzero(~np.isnat(contact) & ~np.isnat(diagnosis) & (contact < diagnosis))
    found.add(
        patients,
        early,
        "last_contact_date",
        "contact-before-diagnosis",
        lambda k: (
            f"last contact is {_days(diagnosis[early[k]] - contact[early[k]])} before metastatic diagnosis"
        ),
    )


def _death_by_code(patients: ParsedTable, codes: np.ndarray, size: int) -> np.ndarray:
    """Return the death date of each patient code (the first row's with a death date), NaT if none."""
    death = patients.columns["death_date"]
    rows = np.flatnonzero(~np.isnat(death) & (codes >= 0))
    _, first = np.unique(codes[rows], return_index=True)
    death_of = np.full(size, _NAT)
    death_of[codes[rows[first]]] = death[rows[first]]
    return death_of


def _after_death(found: Findings, table: ParsedTable, codes: np.ndarray, death_of: np.ndarray) -> None:
    death = take(death_of, codes, _NAT)
    for column in _date_columns(table):
        dates = table.columns[column]
        rows = np.flatnonzero(dates > death)
        found.add(
            table,
            rows,
            column,
            "after-death",
            _days_between(dates, death, rows, "date is {} after the patient's death"),
        )


def _line_order(codes: np.ndarray, numbers: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return ``rows`` without repeated (patient, line) pairs, sorted by patient then line number."""
    key = codes[rows] * 128 + numbers[rows].astype(np.int64)  # line numbers are 1 to 99
    _, first = np.unique(key, return_index=True)  # sorted by key, each key at its first row
    return rows[first]


def _line_keys(found: Findings, lines: ParsedTable, codes: np.ndarray) -> None:
    numbers = lines.columns["line_number"]
    unclear = _with_invalid(lines, codes, ["line_number"])
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isin(codes, unclear))
    unique = _line_order(codes, numbers, rows)
    repeated = np.setdiff1d(rows, unique)
    found.add(
        lines,
        repeated,
        "line_number",
        "line-duplicate",
        lambda k: f"line {int(numbers[repeated[k]])} appears twice for this patient",
    )
    same_patient = _same_as_previous(codes[unique])
    starts = np.flatnonzero(~same_patient)
    expected = np.arange(len(unique)) - np.repeat(starts, np.diff(np.r_[starts, len(unique)])) + 1
    gap = numbers[unique] != expected
    first_gap = np.flatnonzero(gap & ~(same_patient & _previous(gap, False)))
    found.add(
        lines,
        unique[first_gap],
        "line_number",
        "line-numbering",
        lambda k: (
            f"line {int(numbers[unique[first_gap[k]]])} follows a gap: "
            f"expected line {int(expected[first_gap[k]])}"
        ),
    )


def _line_times(found: Findings, lines: ParsedTable, codes: np.ndarray, tolerance_days: int) -> None:
    columns = lines.columns
    start, end, numbers = columns["start_date"], columns["end_date"], columns["line_number"]
    backwards = np.flatnonzero(end < start)
    found.add(
        lines,
        backwards,
        "end_date",
        "line-end-before-start",
        lambda k: f"line ends {_days(start[backwards[k]] - end[backwards[k]])} before it starts",
    )
    unclear = _with_invalid(lines, codes, ["line_number", "start_date", "end_date"])
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isnat(start) & ~np.isin(codes, unclear))
    keyed = _line_order(codes, numbers, rows)
    same_patient = _same_as_previous(codes[keyed])
    previous_end = _previous(end[keyed], _NAT)
    previous_number = _previous(numbers[keyed], np.nan)
    tolerance = np.timedelta64(tolerance_days, "D")
    ongoing = np.flatnonzero(same_patient & np.isnat(previous_end))
    found.add(
        lines,
        keyed[ongoing],
        "start_date",
        "line-overlap",
        lambda k: (
            f"line {int(previous_number[ongoing[k]])} has no end_date (ongoing) but a later line exists"
        ),
    )
    overlap = np.flatnonzero(
        same_patient & ~np.isnat(previous_end) & (start[keyed] < previous_end - tolerance)
    )
    found.add(
        lines,
        keyed[overlap],
        "start_date",
        "line-overlap",
        lambda k: (
            f"line starts {_days(previous_end[overlap[k]] - start[keyed[overlap[k]]])} before line "
            f"{int(previous_number[overlap[k]])} ends (tolerance {tolerance_days} days)"
        ),
    )


def _progressions_within_lines(
    found: Findings,
    progressions: ParsedTable,
    codes: np.ndarray,
    line_table: ParsedTable,
    line_codes: np.ndarray,
) -> None:
    lines = line_table.columns
    unclear = _with_invalid(line_table, line_codes, ["line_number", "start_date", "end_date"])
    line_rows = np.flatnonzero((line_codes >= 0) & ~np.isnan(lines["line_number"]))
    line_keys = line_codes[line_rows] * 128 + lines["line_number"][line_rows].astype(np.int64)
    numbers, dates = progressions.columns["line_number"], progressions.columns["date"]
    rows = np.flatnonzero((codes >= 0) & ~np.isnan(numbers) & ~np.isin(codes, unclear))
    found_at = positions_of(codes[rows] * 128 + numbers[rows].astype(np.int64), line_keys)
    line_of = take(line_rows, found_at, -1)
    missing = rows[line_of < 0]
    found.add(
        progressions,
        missing,
        "line_number",
        "progression-line-missing",
        lambda k: f"the patient has no line {int(numbers[missing[k]])} in lines",
    )
    start = take(lines["start_date"], line_of, _NAT)
    end = take(lines["end_date"], line_of, _NAT)
    date = dates[rows]
    early = np.flatnonzero(date < start)
    found.add(
        progressions,
        rows[early],
        "date",
        "progression-outside-line",
        lambda k: (
            f"progression is {_days(start[early[k]] - date[early[k]])} before "
            f"line {int(numbers[rows[early[k]]])} starts"
        ),
    )
    late = np.flatnonzero(~np.isnat(end) & (date > end))
    found.add(
        progressions,
        rows[late],
        "date",
        "progression-outside-line",
        lambda k: (
            f"progression is {_days(date[late[k]] - end[late[k]])} after "
            f"line {int(numbers[rows[late[k]]])} ends"
        ),
    )
