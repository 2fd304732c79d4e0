"""One patient document written as an R4 FHIR Bundle profiled by mCODE STU4 (``docs/fhir.md``).

The Bundle is built as plain JSON and validated by ``fhir.resources`` (its R4B models) before it is
returned, so every Bundle linewise writes parses as FHIR. It holds the patient's pseudonym, never the
raw identifier, and the records of the document, no more.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

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
    PROFILES,
    SECONDARY_MALIGNANCY,
    SITE_STRUCTURES,
    UCUM,
    WORSENED,
    code_system,
    extension_url,
)
from linewise.features.vocabulary import GENOMIC_MARKERS, PERCENT_MARKERS

_NAMESPACE = uuid.UUID("5f0b6a8e-2c1d-4c4e-9a57-3f6d1b2e7a90")


def _concept(vocabulary: str, code: str, standard: tuple[str, str] | None = None) -> dict[str, Any]:
    coding = [{"system": code_system(vocabulary), "code": code}]
    if standard is not None:
        coding.append({"system": standard[0], "code": standard[1]})
    return {"coding": coding}


def _standard(pair: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": pair[0], "code": pair[1]}]}


def _observation_code(kind: str) -> dict[str, Any]:
    return _standard(OBSERVATION_CODES[kind])


class _Writer:
    """Collects the entries of one Bundle."""

    def __init__(self, patient_key: str) -> None:
        self.patient_key = patient_key
        self.entries: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any], profile: str | None = None) -> str:
        full_url = f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.patient_key}/{len(self.entries)}')}"
        if profile is not None:
            resource = {"meta": {"profile": [PROFILES[profile]]}, **resource}
        self.entries.append({"fullUrl": full_url, "resource": resource})
        return full_url


def bundle_from_document(document: dict[str, Any]) -> dict[str, Any]:
    """Return the FHIR Bundle (R4, mCODE STU4 profiles) of a patient document.

    Parameters
    ----------
    document : dict
        A patient document (:func:`linewise.features.patient.export_patients`), valid by the
        patient-file contract.

    Returns
    -------
    dict
        The Bundle as JSON, ``type`` ``collection``, ``timestamp`` the document's ``as_of``.
    """
    key = str(document["patient_key"])
    writer = _Writer(key)
    patient_record = document["patient"]
    subject = {"reference": f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{key}/0')}"}
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": PATIENT_KEY_SYSTEM, "value": key}],
    }
    if patient_record.get("last_contact_date") is not None:
        patient["extension"] = [
            {"url": extension_url("last-contact-date"), "valueDate": patient_record["last_contact_date"]}
        ]
    vital = patient_record.get("vital_status")
    if patient_record.get("death_date") is not None:
        patient["deceasedDateTime"] = patient_record["death_date"]
    elif vital is not None:
        patient["deceasedBoolean"] = vital == "dead"
    writer.add(patient, "patient")
    if patient_record.get("center_id") is not None:
        organization = writer.add(
            {
                "resourceType": "Organization",
                "identifier": [{"system": CENTER_SYSTEM, "value": patient_record["center_id"]}],
            }
        )
        writer.entries[0]["resource"]["managingOrganization"] = {"reference": organization}
    primary_url = _primary(writer, patient_record, subject)
    focus = [{"reference": primary_url}]
    _patient_observations(writer, patient_record, subject, focus)
    for record in document.get("metastases", []):
        _metastasis(writer, record, subject)
    for record in document.get("lines", []):
        _line(writer, record, subject)
    for record in document.get("progressions", []):
        _progression(writer, record, subject, focus)
    for record in document.get("local_therapies", []):
        _local_therapy(writer, record, subject)
    for record in document.get("biomarkers", []):
        _biomarker(writer, record, subject)
    for record in document.get("performance_status", []):
        _ecog(writer, record, subject)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": f"{document['as_of']}T00:00:00Z",
        "entry": writer.entries,
    }
    content: dict[str, Any] = json.loads(Bundle.model_validate(bundle).model_dump_json())
    return content


def _primary(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> str:
    extensions = []
    if record.get("histology") is not None:
        extensions.append(
            {
                "url": extension_url("histology"),
                "valueCodeableConcept": _concept("histology", record["histology"]),
            }
        )
    if record.get("de_novo") is not None:
        extensions.append({"url": extension_url("de-novo"), "valueBoolean": record["de_novo"]})
    if record.get("metastatic_dx_date") is not None:
        extensions.append(
            {"url": extension_url("metastatic-diagnosis-date"), "valueDate": record["metastatic_dx_date"]}
        )
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "code": _standard(PRIMARY_BREAST_CANCER),
        "subject": subject,
    }
    if extensions:
        condition["extension"] = extensions
    return writer.add(condition, "primary")


def _observation(
    kind: str, subject: dict[str, Any], date: str | None = None, focus: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": _observation_code(kind),
        "subject": subject,
    }
    if focus is not None:
        observation["focus"] = focus
    if date is not None:
        observation["effectiveDateTime"] = date
    return observation


def _percent(value: float | int) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": "%", "system": UCUM, "code": "%"}}


def _patient_observations(
    writer: _Writer, record: dict[str, Any], subject: dict[str, Any], focus: list[dict[str, Any]]
) -> None:
    if record.get("age_at_metastatic_dx") is not None:
        age = _observation("age", subject, record.get("metastatic_dx_date"), focus)
        age["valueQuantity"] = {
            "value": record["age_at_metastatic_dx"],
            "unit": "a",
            "system": UCUM,
            "code": "a",
        }
        writer.add(age)
    if record.get("menopausal_status") is not None:
        status = _observation("menopausal_status", subject, None, focus)
        status["valueCodeableConcept"] = _concept("menopausal_status", record["menopausal_status"])
        writer.add(status)
    for marker, column in (("er", "er_percent"), ("pgr", "pgr_percent"), ("ki67", "ki67_percent")):
        if record.get(column) is not None:
            writer.add(
                {**_observation(marker, subject, None, focus), **_percent(record[column])}, "tumor_marker"
            )
    if record.get("her2_ihc") is not None:
        her2 = _observation("her2_ihc", subject, None, focus)
        her2["valueCodeableConcept"] = _concept("her2_ihc", record["her2_ihc"])
        writer.add(her2, "tumor_marker")
    if record.get("grade") is not None:
        grade = _observation("grade", subject, None, focus)
        grade["valueInteger"] = record["grade"]
        writer.add(grade)


def _site(site: str) -> dict[str, Any]:
    return _concept("site", site, SITE_STRUCTURES.get(site))


def _metastasis(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> None:
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "code": _standard(SECONDARY_MALIGNANCY),
        "subject": subject,
    }
    if record.get("site") is not None:
        condition["bodySite"] = [_site(record["site"])]
    if record.get("date_detected") is not None:
        condition["onsetDateTime"] = record["date_detected"]
    writer.add(condition, "secondary")


def _line(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> None:
    drugs = str(record.get("drugs") or "").split("+")
    period = {
        k: record[c] for k, c in (("start", "start_date"), ("end", "end_date")) if record.get(c) is not None
    }
    for drug in drugs:
        administration: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "status": "completed" if record.get("end_date") is not None else "in-progress",
            "medicationCodeableConcept": _concept("drug", drug) if drug else {"text": "no drug recorded"},
            "subject": subject,
            "effectivePeriod": period,
        }
        if record.get("line_number") is not None:
            administration["extension"] = [
                {"url": extension_url("line-number"), "valueInteger": record["line_number"]}
            ]
        if record.get("end_reason") is not None:
            administration["statusReason"] = [_concept("end_reason", record["end_reason"])]
        writer.add(administration, "medication")


def _progression(
    writer: _Writer, record: dict[str, Any], subject: dict[str, Any], focus: list[dict[str, Any]]
) -> None:
    status = _observation("disease_status", subject, record.get("date"), focus)
    status["valueCodeableConcept"] = _standard(WORSENED)
    extensions = []
    if record.get("line_number") is not None:
        extensions.append({"url": extension_url("line-number"), "valueInteger": record["line_number"]})
    if record.get("pattern") is not None:
        extensions.append(
            {
                "url": extension_url("progression-pattern"),
                "valueCodeableConcept": _concept("pattern", record["pattern"]),
            }
        )
    if record.get("method") is not None:
        extensions.append(
            {
                "url": extension_url("progression-method"),
                "valueCodeableConcept": _concept("method", record["method"]),
            }
        )
    for site in str(record.get("new_sites") or "").split("+"):
        if site:
            extensions.append({"url": extension_url("new-site"), "valueCodeableConcept": _site(site)})
    if extensions:
        status["extension"] = extensions
    writer.add(status, "disease_status")


def _local_therapy(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> None:
    kind = record.get("type")
    procedure: dict[str, Any] = {"resourceType": "Procedure", "status": "completed", "subject": subject}
    if kind is not None:
        procedure["code"] = _concept("local_therapy_type", kind, PROCEDURES.get(kind))
    if record.get("date") is not None:
        procedure["performedDateTime"] = record["date"]
    if record.get("site") is not None:
        procedure["bodySite"] = [_site(record["site"])]
    profile = kind if kind in ("radiotherapy", "surgery") else None
    writer.add(procedure, profile)


def _biomarker(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> None:
    marker, value = record.get("marker"), record.get("value")
    if marker in GENOMIC_MARKERS:
        observation = _observation("genomic_variant", subject, record.get("date"))
        observation["component"] = [
            {
                "code": _standard(GENE_STUDIED),
                "valueCodeableConcept": _concept("marker", str(marker), GENES[str(marker)]),
            }
        ]
        profile = "genomic_variant"
    else:
        observation = _observation(str(marker), subject, record.get("date"))
        profile = "tumor_marker"
    if value is not None:
        if marker in PERCENT_MARKERS:
            observation.update(_percent(float(value)))
        else:
            answer = GENOMIC_ANSWERS.get(str(value)) if marker in GENOMIC_MARKERS else None
            observation["valueCodeableConcept"] = _concept("biomarker_value", str(value), answer)
    if record.get("sample") is not None:
        specimen = writer.add(
            {"resourceType": "Specimen", "type": _concept("sample", record["sample"]), "subject": subject}
        )
        observation["specimen"] = {"reference": specimen}
    writer.add(observation, profile)


def _ecog(writer: _Writer, record: dict[str, Any], subject: dict[str, Any]) -> None:
    observation = _observation("ecog", subject, record.get("date"))
    if record.get("ecog") is not None:
        observation["valueInteger"] = record["ecog"]
    writer.add(observation, "ecog")
