"""What can be wrong with a FHIR Bundle of one patient: the rules, one problem, the error that lists them.

A problem names the entry (its position in ``Bundle.entry``), the resource type, the element and the
rule (``docs/fhir.md``); it never shows a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Final

#: Rule id -> what the rule requires. ``docs/fhir.md`` repeats this table.
BUNDLE_RULES: Final = MappingProxyType(
    {
        "fhir-json": "the file holds one JSON object",
        "fhir-structure": "the Bundle parses with the FHIR R4B models (the element is named)",
        "fhir-patient": "the Bundle holds exactly one Patient, identified by its linewise pseudonym",
        "fhir-resource": "every entry is a resource linewise reads (Patient, Organization, Condition, "
        "Observation, MedicationAdministration, Procedure, Specimen)",
        "fhir-code": "a coded element has a coding linewise knows "
        "(a linewise code or a listed standard code)",
        "fhir-reference": "a reference points at a resource of the Bundle, and subject at its Patient",
        "fhir-line": "a medication administration has a line number, and those of one line agree on "
        "their period and end reason",
        "fhir-value": "an element that linewise reads has a value of the type its profile gives "
        "(a full date; a percentage in %, an age in years, no comparator; one value where the "
        "document holds one)",
        "fhir-status": "a resource is not entered in error, cancelled, not done or refuted, "
        "and has no modifier extension",
    }
)
#: The message of a problem whose own message could show a value.
GENERIC_MESSAGE: Final = "invalid value"


@dataclass(frozen=True)
class BundleProblem:
    """One place of a Bundle that cannot become part of the patient document.

    Attributes
    ----------
    entry : int or None
        Position in ``Bundle.entry`` (from 0); None for the Bundle itself.
    resource : str or None
        The entry's resource type.
    element : str or None
        The element (``effectiveDateTime``, ``extension``).
    rule : str
        A key of :data:`BUNDLE_RULES`, or ``patient-file:<rule>`` for a rule of the patient-file
        contract.
    message : str
        What was expected; never a value.
    """

    entry: int | None
    resource: str | None
    element: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = "Bundle" if self.entry is None else f"entry {self.entry}"
        if self.resource is not None:
            where += f" ({self.resource})"
        if self.element is not None:
            where += f", element {self.element}"
        return f"{where}: {self.message} [rule {self.rule}]"

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready dict."""
        return asdict(self)


class FhirBundleError(ValueError):
    """A Bundle cannot be read as a patient: every problem, named by entry, resource and element.

    Parameters
    ----------
    source : str
        The Bundle's name in messages (a file name, or ``bundle``).
    problems : sequence of BundleProblem
    """

    def __init__(self, source: str, problems: Sequence[BundleProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"FHIR Bundle {source}: {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))
