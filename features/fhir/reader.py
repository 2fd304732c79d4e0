"""A FHIR Bundle of one patient read back into the patient document (``docs/fhir.md``).

The Bundle is parsed by fhir.resources' R4B models (:mod:`linewise.features.fhir.structure`); its
resources are then read into the patient document of :mod:`linewise.features.patient`
(:mod:`linewise.features.fhir.resources`), which goes through the same checks as any patient file.
A problem names the entry (its position in ``Bundle.entry``), the resource type, the element and the
rule; it never shows a value. A contract violation of the document is reported against the entry and
element the record came from (:meth:`BundlePatient.problems_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from linewise.features.errors import RULES, LockValidationError
from linewise.features.fhir.problems import GENERIC_MESSAGE, BundleProblem, FhirBundleError
from linewise.features.fhir.resources import BundleRecords
from linewise.features.fhir.structure import parse_bundle
from linewise.features.loader import DataLock
from linewise.features.patient import load_patient


@dataclass(frozen=True)
class BundlePatient:
    """The patient document read from a Bundle, and where each of its records came from.

    Attributes
    ----------
    document : dict
        The patient document.
    origins : mapping
        ``(table, record number from 1 or None, column or None)`` -> ``(entry, resource, element)``.
    """

    document: dict[str, Any]
    origins: Mapping[tuple[str, int | None, str | None], tuple[int, str, str | None]]

    def origin(
        self, table: str | None, row: int | None, column: str | None
    ) -> tuple[int | None, str | None, str | None]:
        """Return the entry, resource type and element a place of the document came from.

        Parameters
        ----------
        table : str or None
            A table of the document (``patients`` for the patient record); None for the document's
            own fields (``patient_key``, ``as_of``).
        row : int or None
            The record's number, from 1.
        column : str or None
            The column, or None for the whole record.

        Returns
        -------
        tuple
            ``(entry, resource, element)``; ``(None, None, None)`` for a place no entry gave.
        """
        row = 1 if table == "patients" else row
        found = self.origins.get((table or "", row, column)) or self.origins.get((table or "", row, None))
        return found if found is not None else (None, None, None)

    def problems_of(self, error: LockValidationError, source: str = "bundle") -> FhirBundleError:
        """Return the document's contract violations as problems of the Bundle's entries."""
        problems = []
        for violation in error.violations:
            entry, resource, element = self.origin(violation.table, violation.row, violation.column)
            problems.append(
                BundleProblem(
                    entry,
                    resource,
                    element,
                    f"patient-file:{violation.rule}",
                    RULES.get(violation.rule, GENERIC_MESSAGE),
                )
            )
        return FhirBundleError(source, problems)


def read_bundle(content: object, source: str = "bundle") -> BundlePatient:
    """Read a FHIR Bundle of one patient into the patient document.

    Parameters
    ----------
    content : object
        The parsed JSON.
    source : str
        The Bundle's name in messages.

    Returns
    -------
    BundlePatient

    Raises
    ------
    FhirBundleError
        Listing every problem found.
    """
    bundle = parse_bundle(content, source)
    records = BundleRecords(bundle)
    records.read()
    if records.problems:
        raise FhirBundleError(source, records.problems)
    return BundlePatient(records.document(), MappingProxyType(dict(records.origins)))


def load_bundle_patient(content: object, source: str = "bundle") -> DataLock:
    """Read a Bundle and check its patient document like any patient file.

    Parameters
    ----------
    content : object
        The parsed JSON of the Bundle.
    source : str
        The Bundle's name in messages.

    Returns
    -------
    DataLock
        The one-patient lock of :func:`linewise.features.patient.load_patient`.

    Raises
    ------
    FhirBundleError
        For a Bundle that cannot be read, and for a document that breaks the patient-file contract
        (each violation named by the entry and element it came from).
    """
    patient = read_bundle(content, source)
    try:
        return load_patient(patient.document, source)
    except LockValidationError as err:
        raise patient.problems_of(err, source) from None
