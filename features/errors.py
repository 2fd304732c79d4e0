"""Violations of the data-lock contract, the error that carries them, and the rule catalogue.

A violation names the file, the table, the row as counted in the file (1-based after the header),
the column, the offending value and the rule. Values that are patient data are never shown as
written: a patient identifier is withheld, and a date is shown by its shape (digits as ``9``) or,
for time rules, by its distance in days from the date it was compared with. The row number is
enough for the data manager, who holds the file, to find the cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import Any, Final

#: Rule id -> what the rule requires. ``docs/data-lock.md`` repeats this table.
RULES: Final = MappingProxyType(
    {
        "lock-folder": "the lock is an existing folder",
        "manifest": "manifest.json exists, is a JSON object with lock_id (at most 200 characters), "
        "lock_date (YYYY-MM-DD), "
        "schema_version 1 and source",
        "lock-date": "lock_date is not after the day the lock is read, nor before 3 February 2015 "
        "(the first approval of a CDK4/6 inhibitor, palbociclib)",
        "table-missing": "every table exists as <table>.csv or <table>.parquet",
        "table-ambiguous": "a table is given in one format only, not both CSV and Parquet",
        "table-unreadable": "the file can be read as UTF-8 CSV with a header, or as Parquet",
        "outside-lock": "the manifest and every table are files inside the lock folder, not links to files "
        "elsewhere",
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
        "patient-id": "a patient_id is at most 64 characters",
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

#: Characters of a value shown in a violation (after masking), and of a message.
VALUE_LIMIT: Final = 40
MESSAGE_LIMIT: Final = 300
#: Longest patient_id accepted (rule ``patient-id``).
PATIENT_ID_MAX: Final = 64
#: Characters of a cell kept in a violation until it is masked. Each identifier withheld is shown as
#: ``<patient_id withheld>`` (21 characters), so the first VALUE_LIMIT characters shown come from at
#: most VALUE_LIMIT // 21 + 1 identifiers and VALUE_LIMIT other characters: an identifier of at most
#: PATIENT_ID_MAX characters that starts within them always ends inside the kept text.
_KEPT_LIMIT: Final = VALUE_LIMIT + PATIENT_ID_MAX * (VALUE_LIMIT // 21 + 2)


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


#: Violations listed per file and rule; the rest are counted (:class:`Omitted`).
SHOWN_PER_RULE: Final = 20


@dataclass(frozen=True)
class Omitted:
    """Violations of one rule in one file that are counted but not listed."""

    file: str
    rule: str
    count: int

    def __str__(self) -> str:
        return (
            f"... and {self.count} more violation{'s' if self.count != 1 else ''} of rule {self.rule} in "
            f"{self.file} (the first {SHOWN_PER_RULE} are listed)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the count as a JSON-ready dict."""
        return asdict(self)


def bound_violations(
    violations: Iterable[Violation], counted: Iterable[Omitted] = (), per_rule: int = SHOWN_PER_RULE
) -> tuple[list[Violation], list[Omitted]]:
    """Keep the first ``per_rule`` violations of each file and rule, in order, and count the rest.

    Parameters
    ----------
    violations : iterable of Violation
        In file order.
    counted : iterable of Omitted
        Violations already counted and not kept by the checks (past the bound of their column).
    per_rule : int
        How many of one file and rule are kept.

    Returns
    -------
    shown : list of Violation
        The violations kept, in their order.
    omitted : list of Omitted
        One per file and rule with more than ``per_rule``, in order of first appearance.
    """
    seen: dict[tuple[str, str], int] = {}
    shown = []
    for violation in violations:
        where = (violation.file, violation.rule)
        seen[where] = seen.get(where, 0) + 1
        if seen[where] <= per_rule:
            shown.append(violation)
    for extra in counted:
        where = (extra.file, extra.rule)
        seen[where] = seen.get(where, 0) + extra.count
    omitted = [
        Omitted(file, rule, count - per_rule) for (file, rule), count in seen.items() if count > per_rule
    ]
    return shown, omitted


class LockValidationError(ValueError):
    """A data lock broke one or more rules of the contract; the violations are listed, within bounds.

    Parameters
    ----------
    lock_name : str
        The lock folder's name (not its full path).
    violations : sequence of Violation
        The violations listed, in file order (at most :data:`SHOWN_PER_RULE` per file and rule when
        they come through :func:`bound_violations`).
    omitted : sequence of Omitted, optional
        The counts of the violations not listed.
    """

    def __init__(
        self, lock_name: str, violations: list[Violation], omitted: list[Omitted] | None = None
    ) -> None:
        self.lock_name = lock_name
        self.violations = tuple(violations)
        self.omitted = tuple(omitted or ())
        count = self.total
        lines = [f"data lock {lock_name!r} has {count} violation{'s' if count != 1 else ''} of the contract:"]
        lines += [f"  - {violation}" for violation in self.violations]
        lines += [f"  {omitted}" for omitted in self.omitted]
        super().__init__("\n".join(lines))

    @property
    def total(self) -> int:
        """Every violation found: the listed ones and the counted ones."""
        return len(self.violations) + sum(omitted.count for omitted in self.omitted)


class LockWarning(UserWarning):
    """Something in a lock that is kept but deserves attention (an unknown column)."""


_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
WITHHELD: Final = "<patient_id withheld>"


def _mask_dates(text: str) -> str:
    return _DATE_LIKE.sub(lambda match: re.sub(r"\d", "9", match.group(0)), text)


class IdentifierMask:
    """Replace every occurrence of a lock's patient identifiers, anywhere in a text.

    The identifiers themselves are matched, as substrings, not words of a tokenised cell: an
    identifier inside ``post (SIM-000002)`` or ``SIM-000005:1+`` is withheld as well. At each
    position the longest identifier that starts there is replaced by ``<patient_id withheld>``.

    Parameters
    ----------
    identifiers : iterable of str or None
        Every patient identifier written in the lock, repeats allowed (empty ones and None are ignored).
    """

    def __init__(self, identifiers: Iterable[str | None]) -> None:
        self._identifiers = frozenset(i for i in identifiers if i)
        self._lengths = sorted({len(i) for i in self._identifiers}, reverse=True)

    def __call__(self, text: str, limit: int | None = None) -> str:
        """Return ``text`` with every identifier withheld, cut after ``limit`` characters (``...``).

        The text is read from its start and only as far as ``limit`` needs, so the work is bounded by
        ``limit`` (times the number of identifier lengths), not by the length of ``text``; an
        identifier is always withheld whole, never cut.
        """
        out: list[str] = []
        written = 0
        position = 0
        while position < len(text):
            if limit is not None and written >= limit:
                out.append("...")
                break
            for length in self._lengths:
                if text[position : position + length] in self._identifiers:
                    out.append(WITHHELD)
                    written += len(WITHHELD)
                    position += length
                    break
            else:
                out.append(text[position])
                written += 1
                position += 1
        return "".join(out)


def redact(violations: Iterable[Violation], mask: IdentifierMask) -> list[Violation]:
    """Return the violations with every raw patient id and every date-like text masked.

    A value can hold patient data in any column (a patient id or a date typed into the wrong
    column), and messages quote values, so both are scanned: every occurrence of a raw patient id
    becomes ``<patient_id withheld>`` (:class:`IdentifierMask`); anything shaped like a date keeps
    only its shape (digits as ``9``). Values are then cut to :data:`VALUE_LIMIT` characters and
    messages to :data:`MESSAGE_LIMIT`.

    Parameters
    ----------
    violations : iterable of Violation
        As found by the checks.
    mask : IdentifierMask
        Built from every patient_id written anywhere in the lock.

    Returns
    -------
    list of Violation
        The same violations, safe to print.
    """
    safe = []
    for violation in violations:
        value = violation.value
        if value is not None and value != WITHHELD:
            value = _cut(_mask_dates(mask(value, 2 * VALUE_LIMIT)), VALUE_LIMIT)
        message = _cut(_mask_dates(mask(violation.message, 2 * MESSAGE_LIMIT)), MESSAGE_LIMIT)
        safe.append(replace(violation, value=value, message=message))
    return safe


def _cut(text: str, limit: int) -> str:
    """Cut masked text after ``limit`` characters (``...``), never inside ``<patient_id withheld>``."""
    if len(text.removesuffix("...")) <= limit:
        return text
    start = text.rfind(WITHHELD, 0, limit + len(WITHHELD) - 1)  # the last one starting before the cut
    end = start + len(WITHHELD) if start != -1 and start + len(WITHHELD) > limit else limit
    return text if end >= len(text) else text[:end] + "..."


def shown_value(raw: str, *, is_patient_id: bool = False, is_date: bool = False) -> str:
    """Return ``raw`` as a violation keeps it until :func:`redact` masks and cuts it.

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
        Never a date; other text is kept (bounded) so that an identifier inside it can be found whole.
    """
    if is_patient_id:
        return WITHHELD
    if is_date:
        return re.sub(r"\d", "9", raw[:VALUE_LIMIT])
    return raw[:_KEPT_LIMIT]
