"""The resources of a parsed Bundle read into one patient's document (``docs/fhir.md``).

:class:`BundleRecords` reads the Patient (and its Organization), the primary and secondary cancer
Conditions, the Observations (baseline tumour markers, biomarkers, genomic variants, ECOG, disease
status), the radiotherapy Procedures and the MedicationAdministrations of each line into the records
of :mod:`linewise.features.patient`, and remembers for each record and column the entry and element
it came from, so that a contract violation of the document can be located in the Bundle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle

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
    WORSENED,
)
from linewise.features.fhir.elements import ElementReader, coding_pairs, plain_number
from linewise.features.patient import PATIENT_SCHEMA_VERSION
from linewise.features.schema import TABLES, Kind

#: Where a record's column came from: ``(table, record number from 1 or None, column or None)`` ->
#: ``(entry, resource type, element)``.
Origins = dict[tuple[str, int | None, str | None], tuple[int, str, str | None]]


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


class BundleRecords(ElementReader):
    """Read a parsed Bundle's resources into one patient's records.

    Parameters
    ----------
    bundle : fhir.resources.R4B.bundle.Bundle
        Parsed by :func:`linewise.features.fhir.structure.parse_bundle`.

    Attributes
    ----------
    problems : list of BundleProblem
        Every problem found by :meth:`read`.
    origins : dict
        Where each record and column came from (:data:`Origins`).
    """

    def __init__(self, bundle: Bundle) -> None:
        super().__init__()
        self.bundle = bundle
        self.origins: Origins = {}
        self.patient: dict[str, Any] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.patient_key: str | None = None
        self.as_of: str | None = None

    def read(self) -> None:
        """Read every entry; the problems found are left in :attr:`problems`."""
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

    def _add(
        self, table: str, record: dict[str, Any], entry: int, resource: str, elements: Mapping[str, str]
    ) -> None:
        rows = self.records.setdefault(table, [])
        rows.append(record)
        row = len(rows)
        self.origins[(table, row, None)] = (entry, resource, None)
        for column, element in elements.items():
            self.origins[(table, row, column)] = (entry, resource, element)

    def _set_patient(self, column: str, value: Any, entry: int, resource: str, element: str) -> None:
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
            self._set_patient(
                "last_contact_date",
                self.day((index, "Patient", "extension"), last),
                index,
                "Patient",
                "extension",
            )
        if resource.deceasedDateTime is not None:
            self._set_patient(
                "death_date",
                self.day((index, "Patient", "deceasedDateTime"), resource.deceasedDateTime),
                index,
                "Patient",
                "deceasedDateTime",
            )
            self._set_patient("vital_status", "dead", index, "Patient", "deceasedDateTime")
        elif resource.deceasedBoolean is not None:
            self._set_patient(
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
                self._set_patient("center_id", str(centers[0]), target, "Organization", "identifier")

    def _condition(self, index: int, resource: Any, primary: str | None) -> str | None:
        codes = set(coding_pairs(resource.code))
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
                self._set_patient(column, value, index, "Condition", "extension")
            return f"entry:{index}"
        if SECONDARY_MALIGNANCY in codes:
            at = (index, "Condition", "bodySite")
            site = self.code_at(at, self.single(at, resource.bodySite or []), "site", _SITES)
            date = self.day((index, "Condition", "onsetDateTime"), resource.onsetDateTime)
            record = {"site": site, "date_detected": date}
            self._add(
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
        kinds = [_OBSERVATION_KINDS.get(pair) for pair in coding_pairs(resource.code)]
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
            self._add(
                "performance_status",
                {"date": date, "ecog": plain_number(resource.valueInteger)},
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
            value, element = plain_number(resource.valueInteger), "valueInteger"
        else:
            element = "valueCodeableConcept"
            value = self.coded(resource.valueCodeableConcept, kind)
            if value is None:
                self.problem(index, "Observation", element, "fhir-code")
        if value is None and element != "valueCodeableConcept":
            self.problem(index, "Observation", element, "fhir-value")
        self._set_patient(column, value, index, "Observation", element)

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
            genes = [c for c in (resource.component or []) if GENE_STUDIED in coding_pairs(c.code)]
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
        self._add(
            "biomarkers",
            {"date": date, "marker": marker, "value": value, "sample": sample},
            index,
            "Observation",
            {"date": "effectiveDateTime", "marker": "code", "value": element, "sample": "specimen"},
        )

    def _progression(self, index: int, resource: Any, date: str | None) -> None:
        answer = set(coding_pairs(resource.valueCodeableConcept))
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
            "line_number": plain_number(number.valueInteger) if number is not None else None,
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
        self._add("progressions", record, index, "Observation", elements)

    def _procedure(self, index: int, resource: Any) -> None:
        kind = self.coded(resource.code, "local_therapy_type", _PROCEDURES)
        if kind is None:
            self.problem(index, "Procedure", "code", "fhir-code")
        at = (index, "Procedure", "bodySite")
        site = self.code_at(at, self.single(at, resource.bodySite or []), "site", _SITES)
        date = self.day((index, "Procedure", "performedDateTime"), resource.performedDateTime)
        record = {"date": date, "type": kind, "site": site}
        self._add(
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
        self._add("lines", record, first_index, "MedicationAdministration", elements)

    def document(self) -> dict[str, Any]:
        """Return the patient document of the records read."""
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
