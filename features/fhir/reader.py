"""A FHIR Bundle of one patient read back into the patient document (``docs/fhir.md``).

The Bundle is parsed by ``fhir.resources`` (its R4B models); what it says is then turned into the
patient document of :mod:`linewise.features.patient`, which goes through the same checks as any
patient file. A problem names the entry (its position in ``Bundle.entry``), the resource type, the
element and the rule; it never shows a value. A contract violation of the document is reported
against the entry and element the record came from (:meth:`BundlePatient.problems_of`).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ValidationError

from linewise.features.errors import RULES, LockValidationError
from linewise.features.fhir.codes import (
    CENTER_SYSTEM,
    GENE_STUDIED,
    GENES,
    GENOMIC_ANSWERS,
    OBSERVATION_CODES,
    PATIENT_KEY_SYSTEM,
    PRIMARY_BREAST_CANCER,
    PROCEDURES,
    SECONDARY_MALIGNANCY,
    SITE_STRUCTURES,
    UCUM,
    WORSENED,
    code_system,
    extension_url,
)
from linewise.features.loader import DataLock
from linewise.features.patient import PATIENT_SCHEMA_VERSION, load_patient
from linewise.features.schema import TABLES, Kind

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
_GENERIC: Final = "invalid value"
#: Shown instead of an element name that no FHIR R4B resource declares (a key could carry anything).
UNKNOWN_ELEMENT: Final = "<unknown element>"
#: The fhir.resources R4B modules whose element names an error may show: the resources read and the
#: data types they use.
_NAMED_MODULES: Final = [
    "bundle",
    "patient",
    "organization",
    "condition",
    "observation",
    "medicationadministration",
    "procedure",
    "specimen",
    "codeableconcept",
    "coding",
    "reference",
    "extension",
    "identifier",
    "period",
    "quantity",
    "meta",
    "narrative",
    "annotation",
    "humanname",
    "contactpoint",
    "address",
    "attachment",
    "range",
    "ratio",
    "sampleddata",
    "timing",
    "age",
    "duration",
    "resource",
    "domainresource",
    "element",
    "backboneelement",
    "fhirprimitiveextension",
]


def _element_names() -> frozenset[str]:
    names = {"root", "resourceType"}
    for name in _NAMED_MODULES:
        module = importlib.import_module(f"fhir.resources.R4B.{name}")
        for model in vars(module).values():
            if isinstance(model, type) and issubclass(model, BaseModel):
                for field_name, info in model.model_fields.items():
                    names |= {field_name, info.alias or field_name}
    return frozenset(names)


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
                    RULES.get(violation.rule, _GENERIC),
                )
            )
        return FhirBundleError(source, problems)


def is_bundle(content: object) -> bool:
    """Whether parsed JSON is a FHIR Bundle (rather than a linewise patient document)."""
    return isinstance(content, dict) and content.get("resourceType") == "Bundle"


def _structure_problems(error: ValidationError, content: dict[str, Any]) -> list[BundleProblem]:
    problems = []
    listed = content.get("entry")
    entries: list[Any] = listed if isinstance(listed, list) else []
    known = _element_names()  # only on this error path: it imports some thirty model modules
    for item in error.errors():
        loc = list(item.get("loc", ()))
        entry = loc[1] if len(loc) > 1 and loc[0] == "entry" and isinstance(loc[1], int) else None
        resource = None
        if entry is not None and entry < len(entries) and isinstance(entries[entry], dict):
            found = entries[entry].get("resource")
            kind = found.get("resourceType") if isinstance(found, dict) else None
            resource = kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 64 else None
        path = loc[3:] if entry is not None and len(loc) > 2 and loc[2] == "resource" else loc
        names = [p for p in path if isinstance(p, str)]
        element = ".".join(n if n in known else UNKNOWN_ELEMENT for n in names) or None
        message = str(item.get("msg", _GENERIC))
        value = item.get("input")
        if value is not None and not isinstance(value, dict | list) and str(value) and str(value) in message:
            message = _GENERIC
        problems.append(BundleProblem(entry, resource, element, "fhir-structure", message))
    return problems


#: The ``Bundle.type`` codes read: a history or a response Bundle is refused (it may hold a resource twice).
BUNDLE_TYPES: Final = frozenset(
    {
        "document",
        "message",
        "transaction",
        "batch",
        "searchset",
        "collection",
    }
)
#: The resource types linewise reads; any other entry is refused (rule ``fhir-resource``).
READ_TYPES: Final = frozenset(
    {
        "Patient",
        "Organization",
        "Condition",
        "Observation",
        "MedicationAdministration",
        "Procedure",
        "Specimen",
    }
)


def _unread_entries(content: dict[str, Any]) -> list[BundleProblem]:
    """Entries whose resource type linewise does not read (checked before parsing, which would fail)."""
    entries = content.get("entry")
    if not isinstance(entries, list):
        return []
    problems = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(resource, dict) and not (isinstance(kind, str) and kind in READ_TYPES):
            problems.append(
                BundleProblem(index, None, "resourceType", "fhir-resource", BUNDLE_RULES["fhir-resource"])
            )
    return problems


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
    if not isinstance(content, dict):
        raise FhirBundleError(
            source, [BundleProblem(None, None, None, "fhir-json", BUNDLE_RULES["fhir-json"])]
        )
    unread = _unread_entries(content)
    if unread:
        raise FhirBundleError(source, unread)
    try:
        bundle = Bundle.model_validate(content)
    except ValidationError as err:
        raise FhirBundleError(source, _structure_problems(err, content)) from None
    except (KeyError, TypeError, ValueError, RecursionError):  # fhir.resources on malformed input
        raise FhirBundleError(
            source, [BundleProblem(None, "Bundle", None, "fhir-structure", BUNDLE_RULES["fhir-structure"])]
        ) from None
    if bundle.type not in BUNDLE_TYPES:  # fhir.resources does not check required code bindings
        message = "type is one of " + ", ".join(sorted(BUNDLE_TYPES))
        raise FhirBundleError(source, [BundleProblem(None, "Bundle", "type", "fhir-structure", message)])
    reader = _Reader(bundle)
    reader.read()
    if reader.problems:
        raise FhirBundleError(source, reader.problems)
    return BundlePatient(reader.document(), MappingProxyType(dict(reader.origins)))


def _reverse(table: Mapping[str, tuple[str, str]]) -> dict[tuple[str, str], str]:
    return {pair: key for key, pair in table.items()}


_OBSERVATION_KINDS: Final = _reverse(OBSERVATION_CODES)
_SITES: Final = _reverse(SITE_STRUCTURES)
_GENES: Final = _reverse(GENES)
_ANSWERS: Final = _reverse(GENOMIC_ANSWERS)
_PROCEDURES: Final = _reverse(PROCEDURES)
_PATIENT_COLUMNS: Final = tuple(
    c.name for t in TABLES if t.name == "patients" for c in t.columns if c.kind is not Kind.PATIENT_ID
)
_BASELINE: Final = {
    "age": "age_at_metastatic_dx",
    "menopausal_status": "menopausal_status",
    "er": "er_percent",
    "pgr": "pgr_percent",
    "ki67": "ki67_percent",
    "her2_ihc": "her2_ihc",
    "grade": "grade",
}


def _number(value: object) -> int | float | None:
    if value is None:
        return None
    number = float(value) if isinstance(value, Decimal | int | float) else None
    if number is None:
        return None
    return int(number) if number.is_integer() else number


#: Statuses of a resource that did not happen or is withdrawn (Observation, MedicationAdministration,
#: Procedure ``status``; Condition ``verificationStatus``).
_WITHDRAWN: Final = frozenset({"entered-in-error", "cancelled", "not-done", "refuted"})


def _pairs(concept: Any) -> list[tuple[str, str]]:
    """Return the ``(system, code)`` of every coding of a CodeableConcept (none for a missing one)."""
    codings = (getattr(concept, "coding", None) or []) if concept is not None else []
    return [(str(c.system), str(c.code)) for c in codings]


def _date(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


@dataclass
class _Reader:
    bundle: Bundle
    problems: list[BundleProblem] = field(default_factory=list)
    origins: dict[tuple[str, int | None, str | None], tuple[int, str, str | None]] = field(
        default_factory=dict
    )
    patient: dict[str, Any] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    patient_key: str | None = None
    as_of: str | None = None

    def problem(self, entry: int | None, resource: str | None, element: str | None, rule: str) -> None:
        self.problems.append(BundleProblem(entry, resource, element, rule, BUNDLE_RULES[rule]))

    def coded(
        self, concept: Any, vocabulary: str, standard: Mapping[tuple[str, str], str] | None = None
    ) -> str | None:
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
        return _number(quantity.value)

    def single(self, at: tuple[int, str, str], found: list[Any]) -> Any:
        """Return the one item of ``found`` (None for none); more than one is ``fhir-value``."""
        if len(found) > 1:
            self.problem(*at, "fhir-value")
        return found[0] if found else None

    def extensions(self, resource: Any, name: str) -> list[Any]:
        return [e for e in (resource.extension or []) if e.url == extension_url(name)]

    def refused_status(self, index: int, kind: str, resource: Any) -> bool:
        """Whether a resource is withdrawn (entered in error, not done, refuted) or modified."""
        element = "status"
        withdrawn = str(getattr(resource, "status", None)) in _WITHDRAWN
        if kind == "Condition":
            element = "verificationStatus"
            withdrawn = bool({code for _, code in _pairs(resource.verificationStatus)} & _WITHDRAWN)
        if getattr(resource, "modifierExtension", None):
            element, withdrawn = "modifierExtension", True
        if withdrawn:
            self.problem(index, kind, element, "fhir-status")
        return withdrawn

    def read(self) -> None:
        entries = self.bundle.entry or []
        urls = {str(e.fullUrl): i for i, e in enumerate(entries) if e.fullUrl}
        if len(urls) != sum(1 for e in entries if e.fullUrl):
            self.problem(None, "Bundle", "fullUrl", "fhir-reference")  # a reference would be ambiguous
        if self.bundle.timestamp is None:
            self.problem(None, "Bundle", "timestamp", "fhir-value")
        self.as_of = self.day((None, "Bundle", "timestamp"), self.bundle.timestamp)
        patients = [
            i
            for i, e in enumerate(entries)
            if e.resource is not None and e.resource.get_resource_type() == "Patient"
        ]
        if len(patients) != 1:
            self.problem(None, "Patient", "entry", "fhir-patient")
            return
        patient_entry = patients[0]
        if not entries[patient_entry].fullUrl:
            self.problem(patient_entry, "Patient", "fullUrl", "fhir-reference")
            return
        patient_url = str(entries[patient_entry].fullUrl)
        self._patient(patient_entry, entries[patient_entry].resource, entries, urls)
        primary = None
        withdrawn: set[int] = set()
        for index, entry in enumerate(entries):
            resource = entry.resource
            kind = None if resource is None else resource.get_resource_type()
            if kind in ("Patient", "Organization", "Specimen"):
                continue
            if kind not in ("Condition", "Observation", "MedicationAdministration", "Procedure"):
                self.problem(index, kind, "resource", "fhir-resource")
                continue
            subject = getattr(resource, "subject", None)
            if subject is None or subject.reference != patient_url:
                self.problem(index, kind, "subject", "fhir-reference")
                continue
            if self.refused_status(index, kind, resource):
                withdrawn.add(index)
                continue
            if kind == "Condition":
                primary = self._condition(index, resource, primary)
        lines: dict[int, list[tuple[int, Any]]] = {}
        for index, entry in enumerate(entries):
            resource = entry.resource
            kind = None if resource is None else resource.get_resource_type()
            subject = getattr(resource, "subject", None)
            if subject is None or subject.reference != patient_url:
                continue
            if index in withdrawn:
                continue
            if kind == "Observation":
                self._observation(index, resource, primary, urls, entries)
            elif kind == "MedicationAdministration":
                numbers = self.extensions(resource, "line-number")
                if len(numbers) != 1 or numbers[0].valueInteger is None:
                    self.problem(index, kind, "extension", "fhir-line")
                    continue
                lines.setdefault(int(numbers[0].valueInteger), []).append((index, resource))
            elif kind == "Procedure":
                self._procedure(index, resource)
        for line_number, parts in lines.items():
            self._line(line_number, parts)

    def add(
        self, table: str, record: dict[str, Any], entry: int, resource: str, elements: Mapping[str, str]
    ) -> None:
        rows = self.records.setdefault(table, [])
        rows.append(record)
        row = len(rows)
        self.origins[(table, row, None)] = (entry, resource, None)
        for column, element in elements.items():
            self.origins[(table, row, column)] = (entry, resource, element)

    def set_patient(self, column: str, value: Any, entry: int, resource: str, element: str) -> None:
        earlier = self.origins.get(("patients", 1, column))
        if earlier is not None and earlier[0] != entry:  # the patient record holds one value
            self.problem(entry, resource, element, "fhir-value")
            return
        self.patient[column] = value
        self.origins[("patients", 1, column)] = (entry, resource, element)

    def _patient(self, index: int, resource: Any, entries: Sequence[Any], urls: Mapping[str, int]) -> None:
        keys = [i.value for i in (resource.identifier or []) if i.system == PATIENT_KEY_SYSTEM]
        if len(keys) != 1 or not keys[0]:
            self.problem(index, "Patient", "identifier", "fhir-patient")
        else:
            self.patient_key = str(keys[0])
        self.origins[("", None, "patient_key")] = (index, "Patient", "identifier")
        self.origins[("patients", 1, None)] = (index, "Patient", None)
        contact = self.extensions(resource, "last-contact-date")
        if contact:
            last = self.single((index, "Patient", "extension"), contact).valueDate
            self.set_patient(
                "last_contact_date",
                self.day((index, "Patient", "extension"), last),
                index,
                "Patient",
                "extension",
            )
        if resource.deceasedDateTime is not None:
            self.set_patient(
                "death_date",
                self.day((index, "Patient", "deceasedDateTime"), resource.deceasedDateTime),
                index,
                "Patient",
                "deceasedDateTime",
            )
            self.set_patient("vital_status", "dead", index, "Patient", "deceasedDateTime")
        elif resource.deceasedBoolean is not None:
            self.set_patient(
                "vital_status",
                "dead" if resource.deceasedBoolean else "alive",
                index,
                "Patient",
                "deceasedBoolean",
            )
        organization = resource.managingOrganization
        if organization is not None:
            target = urls.get(str(organization.reference))
            found = entries[target].resource if target is not None else None
            if target is None or found is None or found.get_resource_type() != "Organization":
                self.problem(index, "Patient", "managingOrganization", "fhir-reference")
                return
            centers = [i.value for i in (found.identifier or []) if i.system == CENTER_SYSTEM]
            if centers:
                self.set_patient("center_id", str(centers[0]), target, "Organization", "identifier")

    def _condition(self, index: int, resource: Any, primary: str | None) -> str | None:
        codes = set(_pairs(resource.code))
        if PRIMARY_BREAST_CANCER in codes:
            if primary is not None:
                self.problem(index, "Condition", "code", "fhir-patient")
                return primary
            for name, column, attribute in (
                ("histology", "histology", "valueCodeableConcept"),
                ("de-novo", "de_novo", "valueBoolean"),
                ("metastatic-diagnosis-date", "metastatic_dx_date", "valueDate"),
            ):
                at = (index, "Condition", "extension")
                found = self.single(at, self.extensions(resource, name))
                if found is None:
                    continue
                value = getattr(found, attribute)
                if column == "histology":
                    value = self.code_at(at, value, "histology")
                elif column == "metastatic_dx_date":
                    value = self.day(at, value)
                self.set_patient(column, value, index, "Condition", "extension")
            return f"entry:{index}"
        if SECONDARY_MALIGNANCY in codes:
            at = (index, "Condition", "bodySite")
            site = self.code_at(at, self.single(at, resource.bodySite or []), "site", _SITES)
            date = self.day((index, "Condition", "onsetDateTime"), resource.onsetDateTime)
            record = {"site": site, "date_detected": date}
            self.add(
                "metastases",
                record,
                index,
                "Condition",
                {"site": "bodySite", "date_detected": "onsetDateTime"},
            )
            return primary
        self.problem(index, "Condition", "code", "fhir-code")
        return primary

    def _observation(
        self, index: int, resource: Any, primary: str | None, urls: Mapping[str, int], entries: Sequence[Any]
    ) -> None:
        kinds = [_OBSERVATION_KINDS.get(pair) for pair in _pairs(resource.code)]
        kind = next((k for k in kinds if k is not None), None)
        if kind is None:
            self.problem(index, "Observation", "code", "fhir-code")
            return
        focus = [urls.get(str(f.reference)) for f in (resource.focus or [])]
        if len(focus) > 1 or None in focus:  # a focus is the primary condition, and only it
            self.problem(index, "Observation", "focus", "fhir-reference")
            return
        on_primary = primary is not None and f"entry:{focus[0]}" == primary if focus else False
        if focus and not on_primary:
            self.problem(index, "Observation", "focus", "fhir-reference")
            return
        date = self.day((index, "Observation", "effectiveDateTime"), resource.effectiveDateTime)
        if kind in _BASELINE and on_primary:
            self._baseline(index, resource, kind)
        elif kind in ("er", "pgr", "ki67", "her2_ihc", "genomic_variant"):
            self._biomarker(index, resource, kind, date, entries, urls)
        elif kind == "ecog":
            self.add(
                "performance_status",
                {"date": date, "ecog": _number(resource.valueInteger)},
                index,
                "Observation",
                {"date": "effectiveDateTime", "ecog": "valueInteger"},
            )
        elif kind == "disease_status":
            self._progression(index, resource, date)
        else:
            self.problem(index, "Observation", "focus", "fhir-reference")

    def _baseline(self, index: int, resource: Any, kind: str) -> None:
        column = _BASELINE[kind]
        value: int | float | str | None
        if kind in ("age", "er", "pgr", "ki67"):
            element = "valueQuantity"
            unit = "a" if kind == "age" else "%"
            value = self.quantity((index, "Observation", element), resource.valueQuantity, unit)
        elif kind == "grade":
            value, element = _number(resource.valueInteger), "valueInteger"
        else:
            element = "valueCodeableConcept"
            value = self.coded(resource.valueCodeableConcept, kind)
            if value is None:
                self.problem(index, "Observation", element, "fhir-code")
        if value is None and element != "valueCodeableConcept":
            self.problem(index, "Observation", element, "fhir-value")
        self.set_patient(column, value, index, "Observation", element)

    def _biomarker(
        self,
        index: int,
        resource: Any,
        kind: str,
        date: str | None,
        entries: Sequence[Any],
        urls: Mapping[str, int],
    ) -> None:
        value: Any
        if kind == "genomic_variant":
            at = (index, "Observation", "component")
            genes = [c for c in (resource.component or []) if GENE_STUDIED in _pairs(c.code)]
            gene = self.single(at, genes)
            marker = self.coded(gene.valueCodeableConcept, "marker", _GENES) if gene is not None else None
            if marker is None:
                self.problem(*at, "fhir-code")
            value = self.code_at(
                (index, "Observation", "valueCodeableConcept"),
                resource.valueCodeableConcept,
                "biomarker_value",
                _ANSWERS,
            )
        elif kind in ("er", "pgr", "ki67"):
            marker = kind
            number = self.quantity((index, "Observation", "valueQuantity"), resource.valueQuantity, "%")
            value = None if number is None else str(number)  # the lock's biomarker value is text
        else:
            marker = kind
            value = self.code_at(
                (index, "Observation", "valueCodeableConcept"),
                resource.valueCodeableConcept,
                "biomarker_value",
            )
        sample = None
        if resource.specimen is not None:
            target = urls.get(str(resource.specimen.reference))
            found = entries[target].resource if target is not None else None
            if found is None or found.get_resource_type() != "Specimen":
                self.problem(index, "Observation", "specimen", "fhir-reference")
            elif getattr(found.subject, "reference", None) != str(resource.subject.reference):
                self.problem(target, "Specimen", "subject", "fhir-reference")
            else:
                sample = self.coded(found.type, "sample")
                if sample is None:
                    self.problem(target, "Specimen", "type", "fhir-code")
        element = "valueQuantity" if kind in ("er", "pgr", "ki67") else "valueCodeableConcept"
        self.add(
            "biomarkers",
            {"date": date, "marker": marker, "value": value, "sample": sample},
            index,
            "Observation",
            {"date": "effectiveDateTime", "marker": "code", "value": element, "sample": "specimen"},
        )

    def _progression(self, index: int, resource: Any, date: str | None) -> None:
        answer = set(_pairs(resource.valueCodeableConcept))
        if WORSENED not in answer:
            return  # a status that is not progression (stable, improved) is no progression record
        at = (index, "Observation", "extension")
        number = self.single(at, self.extensions(resource, "line-number"))
        pattern = self.single(at, self.extensions(resource, "progression-pattern"))
        method = self.single(at, self.extensions(resource, "progression-method"))
        sites = [
            self.code_at(at, e.valueCodeableConcept, "site", _SITES)
            for e in self.extensions(resource, "new-site")
        ]
        record = {
            "date": date,
            "line_number": _number(number.valueInteger) if number is not None else None,
            "pattern": self.code_at(at, pattern.valueCodeableConcept, "pattern") if pattern else None,
            "new_sites": "+".join(s for s in sites if s) or None,
            "method": self.code_at(at, method.valueCodeableConcept, "method") if method else None,
        }
        elements = {
            "date": "effectiveDateTime",
            "line_number": "extension",
            "pattern": "extension",
            "new_sites": "extension",
            "method": "extension",
        }
        self.add("progressions", record, index, "Observation", elements)

    def _procedure(self, index: int, resource: Any) -> None:
        kind = self.coded(resource.code, "local_therapy_type", _PROCEDURES)
        if kind is None:
            self.problem(index, "Procedure", "code", "fhir-code")
        at = (index, "Procedure", "bodySite")
        site = self.code_at(at, self.single(at, resource.bodySite or []), "site", _SITES)
        date = self.day((index, "Procedure", "performedDateTime"), resource.performedDateTime)
        record = {"date": date, "type": kind, "site": site}
        self.add(
            "local_therapies",
            record,
            index,
            "Procedure",
            {"date": "performedDateTime", "type": "code", "site": "bodySite"},
        )

    def _line(self, number: int, parts: list[tuple[int, Any]]) -> None:
        first_index = parts[0][0]
        drugs = []
        shapes = set()
        for index, resource in parts:
            drug = self.coded(resource.medicationCodeableConcept, "drug")
            if drug is None:
                self.problem(index, "MedicationAdministration", "medicationCodeableConcept", "fhir-code")
            else:
                drugs.append(drug)
            period = resource.effectivePeriod
            at = (index, "MedicationAdministration", "statusReason")
            reason = self.code_at(at, self.single(at, resource.statusReason or []), "end_reason")
            at = (index, "MedicationAdministration", "effectivePeriod")
            dates = None if period is None else (self.day(at, period.start), self.day(at, period.end))
            shapes.add((dates, reason))
        if len(shapes) != 1:
            self.problem(parts[-1][0], "MedicationAdministration", "effectivePeriod", "fhir-line")
            return
        ((period_dates, reason),) = shapes
        start, end = period_dates if period_dates is not None else (None, None)
        record = {
            "line_number": number,
            "start_date": start,
            "end_date": end,
            "drugs": "+".join(drugs) or None,
            "end_reason": reason,
        }
        elements = {
            "line_number": "extension",
            "start_date": "effectivePeriod",
            "end_date": "effectivePeriod",
            "drugs": "medicationCodeableConcept",
            "end_reason": "statusReason",
        }
        self.add("lines", record, first_index, "MedicationAdministration", elements)

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema_version": PATIENT_SCHEMA_VERSION,
            "patient_key": self.patient_key,
            "as_of": self.as_of,
            "patient": {column: self.patient.get(column) for column in _PATIENT_COLUMNS},
        }
        for table in TABLES:
            if table.name != "patients":
                document[table.name] = self.records.get(table.name, [])
        return document


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
