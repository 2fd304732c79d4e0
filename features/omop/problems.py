"""What an OMOP import could not map, and the error that lists it.

A problem names the OMOP table, the row by the table's primary key (a surrogate key of the CDM, such as
``drug_exposure_id``; never ``person_source_value``), the column and the rule. It never shows a value:
no date, no identifier, no measurement. The data manager, who holds the database, finds the row by its
key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Final

#: Rule id -> what the rule requires. ``docs/omop.md`` repeats this table.
IMPORT_RULES: Final = MappingProxyType(
    {
        "person-birth": "a person has a year of birth",
        "person-center": "a person has a care site with a care_site_source_value (the centre)",
        "person-period": "a person has an observation period",
        "person-er": "a person has an estrogen-receptor result (percent of stained cells) on or before the "
        "metastatic diagnosis",
        "person-menopause": "a person has a menopausal state observed on or before the metastatic diagnosis",
        "her2-ish-missing": "a HER2 IHC score of 2+ has an ISH result of the same day",
        "drug-unknown": "a drug exposure that does not end before the metastatic diagnosis has a "
        "drug_concept_id that is a concept of the vocabulary, and not 0 (No matching concept)",
        "drug-unmapped": "a drug exposure of an antineoplastic or endocrine drug (ATC L01 or L02) has an "
        "ingredient that the mapping names, and every ingredient of it below ATC L01 or L02 is one that the "
        "mapping names",
        "condition-unknown": "a condition of a person with a primary breast cancer has a "
        "condition_concept_id that is a concept of the vocabulary, and not 0 (No matching concept)",
        "episode-drugs": "a Treatment Regimen episode is linked, in episode_event, to at least one drug "
        "exposure of a linewise drug",
        "episode-person": "a Treatment Regimen episode is linked only to drug exposures of its own person",
        "exposure-episode": "a drug exposure of a linewise drug, of a person with Treatment Regimen "
        "episodes, is linked to one of them in episode_event",
        "episode-dates": "an episode has a start date, and its end date is not before it",
        "progression-pattern": "a progression says whether it is oligo or systemic (the words oligo or "
        "systemic in episode_source_value, or in value_as_string of a progression observation)",
        "progression-line": "a progression is dated on or after the start of one of the person's lines "
        "of therapy",
        "measurement-value": "a measurement that linewise reads has a value it can read (a number, or a "
        "value concept that the mapping names)",
        "date-invalid": "a date that linewise reads is a calendar date from the year 1678 to the year 2261 "
        "(the range of pandas timestamps)",
        "exposure-dates": "a drug exposure has a start date and an end date, the end not before the start",
        "lock": "the imported lock keeps every rule of the data-lock contract (the lock rule is named)",
    }
)
#: Problems listed; the rest are counted.
SHOWN_PROBLEMS: Final = 50


@dataclass(frozen=True)
class ImportProblem:
    """One row of the CDM that cannot become part of the lock.

    Attributes
    ----------
    table : str
        The OMOP table (``drug_exposure``).
    row_id : int or None
        The row's primary key in that table (``person_id`` for ``person`` and ``death``); None for a
        table-level problem.
    column : str or None
        The OMOP column, or the lock column for a ``lock`` problem.
    rule : str
        A key of :data:`IMPORT_RULES`, or ``lock:<rule>`` for a rule of the data-lock contract.
    message : str
        What was expected; never a value of the row.
    """

    table: str
    row_id: int | None
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = self.table if self.row_id is None else f"{self.table} {_key(self.table)} {self.row_id}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message} [rule {self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready dict."""
        return asdict(self)


def _key(table: str) -> str:
    if table in {"person", "death"}:
        return "person_id"
    return "episode_id" if table == "episode_event" else f"{table}_id"


class OmopImportError(ValueError):
    """The CDM cannot be imported as a lock: every problem found, listed within bounds.

    Parameters
    ----------
    source : str
        The database as shown (URL without password).
    problems : sequence of ImportProblem
        Every problem, in table and row order.
    """

    def __init__(self, source: str, problems: Sequence[ImportProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [
            f"OMOP CDM {source}: {count} row{'s' if count != 1 else ''} cannot be imported; nothing was "
            "written:"
        ]
        lines += [f"  - {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
        if count > SHOWN_PROBLEMS:
            lines.append(f"  ... and {count - SHOWN_PROBLEMS} more (the first {SHOWN_PROBLEMS} are listed)")
        super().__init__("\n".join(lines))
