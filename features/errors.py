"""Violations of the data-lock contract, the error that carries them, and the rule catalogue.

A violation names the file, the table, the row as counted in the file (1-based after the header),
the column, the offending value and the rule. Values that are patient data are never shown as
written: a patient identifier is withheld, and a date is shown by its shape (digits as ``9``) or,
for time rules, by its distance in days from the date it was compared with. The row number is
enough for the data manager, who holds the file, to find the cell.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import Any, Final

#: Rule id -> what the rule requires. ``docs/data-lock.md`` repeats this table.
RULES: Final = MappingProxyType(
    {
        "lock-folder": "the lock is an existing folder",
        "manifest": "manifest.json exists, is a JSON object with lock_id, lock_date (YYYY-MM-DD), "
        "schema_version 1 and source",
        "table-missing": "every table exists as <table>.csv or <table>.parquet",
        "table-ambiguous": "a table is given in one format only, not both CSV and Parquet",
        "table-unreadable": "the file can be read as UTF-8 CSV with a header, or as Parquet",
        "column-missing": "every required column is present",
        "column-unnamed": "every header cell has a name",
        "column-duplicate": "no column name appears twice in a header",
        "value-missing": "required cells are filled",
        "type-number": "a number (decimals allowed)",
        "type-integer": "a whole number",
        "type-date": "an ISO date YYYY-MM-DD that exists in the calendar",
        "type-boolean": "true/false in any case, or 1/0",
        "range": "numbers inside the documented range (percentages 0-100, ECOG 0-4, age 18-110, ...)",
        "code": "a code from the documented vocabulary of the column",
        "drug-code": "every '+'-joined drug code is known",
        "her2-negative": "the population is HER2-negative: HER2 3+ or 2+ ISH-positive is rejected",
        "patient-duplicate": "patient_id is unique in patients",
        "patient-orphan": "every row's patient_id exists in patients",
        "line-duplicate": "(patient_id, line_number) is unique in lines",
        "line-numbering": "a patient's lines are numbered 1..n without gaps",
        "after-lock-date": "no date is after the manifest's lock_date",
        "line-end-before-start": "a line ends on or after its start",
        "line-overlap": "a line starts no earlier than the end of the previous line minus the tolerance, "
        "and only the last line may be ongoing",
        "progression-line-missing": "a progression's (patient_id, line_number) exists in lines",
        "progression-outside-line": "a progression lies within its line: start <= date <= end, or ongoing",
        "death-date-missing": "a dead patient has a death_date; an alive one has none",
        "death-date-mismatch": "death_date equals last_contact_date",
        "after-death": "no record is dated after the patient's death",
        "contact-before-diagnosis": "last_contact_date is on or after metastatic_dx_date",
        "patients-empty": "the patients table has at least one row",
        "patient-file": "a patient JSON file is an object with schema_version 1, a 16-character patient_key, "
        "as_of, patient, and lists of records with known fields",
    }
)

_VALUE_LIMIT: Final = 40


@dataclass(frozen=True)
class Violation:
    """One broken rule at one place in a lock.

    Attributes
    ----------
    file : str
        File name inside the lock folder (``lines.csv``), or the folder for a missing table.
    table : str or None
        Table name, None for the manifest.
    row : int or None
        Row as counted in the file, 1-based after the header; None for file-level problems.
    column : str or None
        Column name, None for row- or file-level problems.
    value : str or None
        The offending value, redacted when it is patient data.
    rule : str
        Rule id, a key of :data:`RULES`.
    message : str
        What was expected and what was found.
    """

    file: str
    table: str | None
    row: int | None
    column: str | None
    value: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column is not None:
            where += f", column {self.column}"
        shown = "" if self.value is None else f" (value {self.value!r})"
        return f"{where}: {self.message}{shown} [rule {self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        """Return the violation as a JSON-ready dict."""
        return asdict(self)


class LockValidationError(ValueError):
    """A data lock broke one or more rules of the contract; all violations are listed.

    Parameters
    ----------
    lock_name : str
        The lock folder's name (not its full path).
    violations : sequence of Violation
        Every violation found, in file order.
    """

    def __init__(self, lock_name: str, violations: list[Violation]) -> None:
        self.lock_name = lock_name
        self.violations = tuple(violations)
        count = len(self.violations)
        lines = [f"data lock {lock_name!r} has {count} violation{'s' if count != 1 else ''} of the contract:"]
        lines += [f"  - {violation}" for violation in self.violations]
        super().__init__("\n".join(lines))


class LockWarning(UserWarning):
    """Something in a lock that is kept but deserves attention (an unknown column)."""


_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_QUOTED = re.compile(r"'([^']*)'")
_WITHHELD = "<patient_id withheld>"


def _mask_dates(text: str) -> str:
    return _DATE_LIKE.sub(lambda match: re.sub(r"\d", "9", match.group(0)), text)


def _mask_ids(text: str, raw_ids: frozenset[str]) -> str:
    if text.strip() in raw_ids:
        return _WITHHELD
    parts = re.split(r"([+,;\s])", text)
    return "".join(_WITHHELD if part.strip() in raw_ids else part for part in parts)


def redact(violations: list[Violation], raw_ids: frozenset[str]) -> list[Violation]:
    """Return the violations with every raw patient id and every date-like text masked.

    A value can hold patient data in any column (a patient id or a date typed into the wrong
    column), and messages quote values, so both are scanned: a cell or quoted word equal to a
    raw patient id becomes ``<patient_id withheld>``; anything shaped like a date keeps only its
    shape (digits as ``9``).

    Parameters
    ----------
    violations : list of Violation
        As found by the checks.
    raw_ids : frozenset of str
        Every patient_id written anywhere in the lock.

    Returns
    -------
    list of Violation
        The same violations, safe to print.
    """
    safe = []
    for violation in violations:
        value = violation.value
        if value is not None and value != _WITHHELD:
            value = _mask_dates(_mask_ids(value, raw_ids))
        message = _QUOTED.sub(lambda m: "'" + _mask_ids(m.group(1), raw_ids) + "'", violation.message)
        safe.append(replace(violation, value=value, message=_mask_dates(message)))
    return safe


def shown_value(raw: str, *, is_patient_id: bool = False, is_date: bool = False) -> str:
    """Return ``raw`` as it may appear in an error message.

    Parameters
    ----------
    raw : str
        The cell as written.
    is_patient_id : bool
        Withhold the value entirely.
    is_date : bool
        Show only the value's shape: each digit becomes ``9``.

    Returns
    -------
    str
        A value safe to print: never an identifier or a date.
    """
    if is_patient_id:
        return "<patient_id withheld>"
    if is_date:
        return re.sub(r"\d", "9", raw[:_VALUE_LIMIT])
    if len(raw) > _VALUE_LIMIT:
        return raw[:_VALUE_LIMIT] + "..."
    return raw
