"""The elements of one resource read into the patient document's values, each problem noted.

:class:`ElementReader` reads a coded element (a linewise code or a listed standard code), a full date,
a Quantity in one UCUM unit, one value where the document holds one, and a resource's status; what it
cannot read becomes a :class:`~linewise.features.fhir.problems.BundleProblem` at the entry and element,
never showing the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from linewise.features.fhir.codes import UCUM, code_system, extension_url
from linewise.features.fhir.problems import BUNDLE_RULES, BundleProblem


def plain_number(value: object) -> int | float | None:
    """Return a FHIR number as an int when it is whole, else a float; None for no number."""
    if value is None:
        return None
    number = float(value) if isinstance(value, Decimal | int | float) else None
    if number is None:
        return None
    return int(number) if number.is_integer() else number


#: Statuses of a resource that did not happen or is withdrawn (Observation, MedicationAdministration,
#: Procedure ``status``; Condition ``verificationStatus``).
_WITHDRAWN: Final = frozenset({"entered-in-error", "cancelled", "not-done", "refuted"})


def coding_pairs(concept: Any) -> list[tuple[str, str]]:
    """Return the ``(system, code)`` of every coding of a CodeableConcept (none for a missing one)."""
    codings = (getattr(concept, "coding", None) or []) if concept is not None else []
    return [(str(c.system), str(c.code)) for c in codings]


def _date(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


class ElementReader:
    """Read elements of a Bundle's resources, keeping every problem found.

    Attributes
    ----------
    problems : list of BundleProblem
        In the order found.
    """

    def __init__(self) -> None:
        self.problems: list[BundleProblem] = []

    def problem(self, entry: int | None, resource: str | None, element: str | None, rule: str) -> None:
        """Note that the element of an entry breaks ``rule`` (a key of :data:`BUNDLE_RULES`)."""
        self.problems.append(BundleProblem(entry, resource, element, rule, BUNDLE_RULES[rule]))

    def coded(
        self, concept: Any, vocabulary: str, standard: Mapping[tuple[str, str], str] | None = None
    ) -> str | None:
        """Return the code of ``vocabulary`` a CodeableConcept carries, or a standard code's meaning.

        A coding in linewise's own system of ``vocabulary`` wins; else the first coding found in
        ``standard`` (``(system, code)`` -> linewise code); else None.
        """
        if concept is None:
            return None
        found = None
        for coding in concept.coding or []:
            if coding.system == code_system(vocabulary) and coding.code:
                return str(coding.code)
            if standard is not None and found is None:
                found = standard.get((str(coding.system), str(coding.code)))
        return found

    def code_at(
        self,
        at: tuple[int, str, str],
        concept: Any,
        vocabulary: str,
        standard: Mapping[tuple[str, str], str] | None = None,
    ) -> str | None:
        """Return :meth:`coded`; ``fhir-code`` at ``at`` for a concept none of whose codings is known."""
        value = self.coded(concept, vocabulary, standard)
        if concept is not None and value is None:
            self.problem(*at, "fhir-code")
        return value

    def day(self, at: tuple[int | None, str, str], value: object) -> str | None:
        """Return a date element as ``YYYY-MM-DD``; a partial date (a year, a month) is ``fhir-value``."""
        found = _date(value)
        if value is not None and found is None:
            self.problem(*at, "fhir-value")
        return found

    def quantity(self, at: tuple[int, str, str], quantity: Any, unit: str) -> int | float | None:
        """Return a Quantity's value in UCUM ``unit``; another unit or a comparator is ``fhir-value``."""
        if quantity is None:
            return None
        if quantity.comparator is not None or (str(quantity.system), str(quantity.code)) != (UCUM, unit):
            self.problem(*at, "fhir-value")
            return None
        return plain_number(quantity.value)

    def single(self, at: tuple[int, str, str], found: list[Any]) -> Any:
        """Return the one item of ``found`` (None for none); more than one is ``fhir-value``."""
        if len(found) > 1:
            self.problem(*at, "fhir-value")
        return found[0] if found else None

    def extensions(self, resource: Any, name: str) -> list[Any]:
        """Return a resource's extensions of linewise's extension ``name``."""
        return [e for e in (resource.extension or []) if e.url == extension_url(name)]

    def refused_status(self, index: int, kind: str, resource: Any) -> bool:
        """Whether a resource is withdrawn (entered in error, not done, refuted) or modified."""
        element = "status"
        withdrawn = str(getattr(resource, "status", None)) in _WITHDRAWN
        if kind == "Condition":
            element = "verificationStatus"
            withdrawn = bool({code for _, code in coding_pairs(resource.verificationStatus)} & _WITHDRAWN)
        if getattr(resource, "modifierExtension", None):
            element, withdrawn = "modifierExtension", True
        if withdrawn:
            self.problem(index, kind, element, "fhir-status")
        return withdrawn
