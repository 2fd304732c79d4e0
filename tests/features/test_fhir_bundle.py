"""FHIR Bundles of one patient: every simulated patient reads back to its own document, and every
corruption is named by entry, resource, element and rule, without a value."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.features.fhir import (
    BUNDLE_RULES,
    FhirBundleError,
    bundle_from_document,
    load_bundle_patient,
    read_bundle,
)
from linewise.features.fhir.codes import MCODE
from linewise.features.patient import export_patients, load_patient
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

from ..fhir_bundles import entry_index as _entry

KEY = b"fhir-bundle-test-key-0123"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fhir")
    simulate_lock(300, 5, folder / "lock", folder / "truth", load_config())
    return folder / "lock"


@pytest.fixture(scope="module")
def documents(simulated: Path) -> dict[str, dict[str, Any]]:
    return export_patients(simulated, KEY)


def test_every_simulated_patient_reads_back_to_its_document(documents: dict[str, dict[str, Any]]) -> None:
    for document in documents.values():
        bundle = bundle_from_document(document)
        assert read_bundle(bundle).document == document


def test_the_example_lock_reads_back_too(lock: Path, key: bytes) -> None:
    # the bundled example has what the simulator leaves out: samples, methods, lobular histology
    documents = export_patients(lock, key)
    for document in documents.values():
        assert read_bundle(bundle_from_document(document)).document == document
    samples = {b["sample"] for d in documents.values() for b in d["biomarkers"]}
    methods = {p["method"] for d in documents.values() for p in d["progressions"]}
    assert {"tissue", "ctdna"} <= samples and {"radiological", "clinical"} <= methods


def test_a_bundle_gives_the_decision_rows_of_its_document(
    simulated: Path, documents: dict[str, dict[str, Any]]
) -> None:
    batch = build_examples(load_lock(simulated, KEY))
    single = pd.concat(
        [build_examples(load_bundle_patient(bundle_from_document(d))) for d in documents.values()]
    )
    order = ["patient_key", "line_number", "decision_day"]
    pd.testing.assert_frame_equal(
        batch.sort_values(order, ignore_index=True), single.sort_values(order, ignore_index=True)
    )


def test_the_bundle_is_r4_and_declares_mcode_profiles(documents: dict[str, dict[str, Any]]) -> None:
    document = max(documents.values(), key=lambda d: len(d["biomarkers"]) + len(d["lines"]))
    bundle = bundle_from_document(document)
    Bundle.model_validate(bundle)  # raises when it is not FHIR R4
    profiles = {
        profile
        for entry in bundle["entry"]
        for profile in entry["resource"].get("meta", {}).get("profile", [])
    }
    for name in ("cancer-patient", "primary-cancer-condition", "secondary-cancer-condition"):
        assert f"{MCODE}mcode-{name}" in profiles
    assert f"{MCODE}mcode-cancer-related-medication-administration" in profiles
    assert f"{MCODE}mcode-cancer-disease-status" in profiles or not document["progressions"]
    # the raw identifier is nowhere: the Patient is identified by the pseudonym alone
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert [i["value"] for i in patient["identifier"]] == [document["patient_key"]]


def _sample(documents: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    document = next(d for d in documents.values() if d["progressions"] and d["performance_status"])
    return document, bundle_from_document(document)


def _error(bundle: dict[str, Any]) -> FhirBundleError:
    with pytest.raises(FhirBundleError) as caught:
        load_bundle_patient(bundle, "patient-bundle.json")
    return caught.value


def _leaks(error: FhirBundleError, document: dict[str, Any]) -> list[str]:
    text = str(error)
    dates = {document["as_of"], document["patient"]["metastatic_dx_date"]}
    dates |= {r["date"] for r in document["progressions"]}
    return [value for value in (document["patient_key"], *dates) if value and value in text]


def test_a_bundle_without_its_patient(documents: dict[str, dict[str, Any]]) -> None:
    document, bundle = _sample(documents)
    del bundle["entry"][_entry(bundle, "Patient")]
    error = _error(bundle)
    assert [(p.resource, p.rule) for p in error.problems] == [("Patient", "fhir-patient")]
    assert _leaks(error, document) == []


def test_an_unknown_observation_code(documents: dict[str, dict[str, Any]]) -> None:
    _, bundle = _sample(documents)
    index = _entry(bundle, "Observation", "89247-1")
    bundle["entry"][index]["resource"]["code"] = {
        "coding": [{"system": "http://loinc.org", "code": "0000-0"}]
    }
    error = _error(bundle)
    assert [(p.entry, p.resource, p.element, p.rule) for p in error.problems] == [
        (index, "Observation", "code", "fhir-code")
    ]


def test_an_impossible_date(documents: dict[str, dict[str, Any]]) -> None:
    document, bundle = _sample(documents)
    index = _entry(bundle, "Condition", "128462008")
    bundle["entry"][index]["resource"]["onsetDateTime"] = "2021-02-30"
    error = _error(bundle)
    assert [(p.entry, p.resource, p.element) for p in error.problems] == [
        (index, "Condition", "onsetDateTime")
    ]
    assert "2021-02-30" not in str(error) and _leaks(error, document) == []


def test_a_medication_without_its_line(documents: dict[str, dict[str, Any]]) -> None:
    _, bundle = _sample(documents)
    index = _entry(bundle, "MedicationAdministration")
    del bundle["entry"][index]["resource"]["extension"]
    error = _error(bundle)
    assert [(p.entry, p.rule) for p in error.problems] == [(index, "fhir-line")]


def test_administrations_of_one_line_that_disagree(documents: dict[str, dict[str, Any]]) -> None:
    document = next(d for d in documents.values() if any("+" in line["drugs"] for line in d["lines"]))
    bundle = bundle_from_document(document)
    index = _entry(bundle, "MedicationAdministration")
    bundle["entry"][index]["resource"]["effectivePeriod"]["start"] = "2001-01-01"
    error = _error(bundle)
    assert [(p.resource, p.element, p.rule) for p in error.problems] == [
        ("MedicationAdministration", "effectivePeriod", "fhir-line")
    ]


def test_a_contract_violation_is_named_by_its_entry(documents: dict[str, dict[str, Any]]) -> None:
    document, bundle = _sample(documents)
    index = _entry(bundle, "Observation", "89247-1")
    bundle["entry"][index]["resource"]["valueInteger"] = 7
    error = _error(bundle)
    assert [(p.entry, p.resource, p.element) for p in error.problems] == [
        (index, "Observation", "valueInteger")
    ]
    assert error.problems[0].rule.startswith("patient-file:")
    assert _leaks(error, document) == []
    # the same document as JSON breaks the same rule
    with pytest.raises(Exception) as plain:
        changed = copy.deepcopy(document)
        changed["performance_status"][0]["ecog"] = 7
        load_patient(changed)
    assert error.problems[0].rule.removeprefix("patient-file:") in str(plain.value)


def test_a_subject_that_is_not_the_patient(documents: dict[str, dict[str, Any]]) -> None:
    _, bundle = _sample(documents)
    index = (
        _entry(bundle, "Procedure")
        if any(e["resource"]["resourceType"] == "Procedure" for e in bundle["entry"])
        else _entry(bundle, "Observation", "89247-1")
    )
    bundle["entry"][index]["resource"]["subject"] = {"reference": "urn:uuid:someone-else"}
    error = _error(bundle)
    assert [(p.entry, p.element, p.rule) for p in error.problems] == [(index, "subject", "fhir-reference")]


def test_a_status_other_than_progression_is_not_a_progression(documents: dict[str, dict[str, Any]]) -> None:
    document, bundle = _sample(documents)
    index = _entry(bundle, "Observation", "97509-4")
    bundle["entry"][index]["resource"]["valueCodeableConcept"] = {
        "coding": [{"system": "http://snomed.info/sct", "code": "359746009"}]
    }
    assert len(read_bundle(bundle).document["progressions"]) == len(document["progressions"]) - 1


def test_not_a_bundle_at_all() -> None:
    with pytest.raises(FhirBundleError) as caught:
        read_bundle(["not", "an", "object"])
    assert caught.value.problems[0].rule == "fhir-json"
    with pytest.raises(FhirBundleError) as caught:
        read_bundle(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Nonsense"}}],
            }
        )
    assert [(p.entry, p.rule) for p in caught.value.problems] == [(0, "fhir-resource")]
    with pytest.raises(FhirBundleError) as caught:
        read_bundle({"resourceType": "Bundle", "type": "no-such-type"})
    assert [(p.element, p.rule) for p in caught.value.problems] == [("type", "fhir-structure")]


def test_as_of_comes_from_the_timestamp(documents: dict[str, dict[str, Any]]) -> None:
    document, bundle = _sample(documents)
    assert read_bundle(bundle).document["as_of"] == document["as_of"]
    assert dt.date.fromisoformat(bundle["timestamp"][:10]).isoformat() == document["as_of"]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place of a JSON tree: its objects' keys and its lists' items, down to the leaves."""
    if isinstance(node, dict):
        return [path] + [p for key, value in node.items() for p in _leaves(value, (*path, key))]
    if isinstance(node, list):
        return [path] + [p for index, value in enumerate(node) for p in _leaves(value, (*path, index))]
    return [path]


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["2021-02-30", "0000-01-01", "9999-12-31T25:00:00Z", "Bundle", "Patient", "urn:uuid:x"]),
    st.lists(st.integers(max_value=5), max_size=2),
    st.dictionaries(
        st.sampled_from(["reference", "system", "code", "value"]), st.text(max_size=5), max_size=2
    ),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corruption_of_a_bundle_is_refused_cleanly_or_read(
    documents: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    document, bundle = _sample(documents)
    places = _leaves(bundle)[1:]
    change = st.tuples(st.integers(min_value=0, max_value=len(places) - 1), st.booleans(), _JUNK)
    for number, delete, value in data.draw(st.lists(change, min_size=1, max_size=3), label="changes"):
        *steps, last = places[number]
        parent: Any = bundle
        for step in steps:  # an earlier change may have removed or replaced the way there
            found = isinstance(parent, dict) and step in parent
            found |= isinstance(parent, list) and isinstance(step, int) and step < len(parent)
            parent = parent[step] if found else None
        in_list = isinstance(parent, list) and isinstance(last, int) and last < len(parent)
        if (isinstance(parent, dict) and last in parent) or in_list:
            if delete:
                del parent[last]
            else:
                parent[last] = value
    try:
        load_bundle_patient(bundle, "patient-bundle.json")
    except FhirBundleError as error:  # the only way a Bundle is refused: one error, no value in it
        assert error.problems and _leaks(error, document) == []
        assert all(p.rule in BUNDLE_RULES or p.rule.startswith("patient-file:") for p in error.problems)


def test_every_element_of_every_entry_removed_or_spoilt(documents: dict[str, dict[str, Any]]) -> None:
    # exhaustive where the property test above samples: each element of each resource, one at a time
    document, bundle = _sample(documents)
    crashes = []
    for index, entry in enumerate(bundle["entry"]):
        for element in entry["resource"]:
            for spoil in ("delete", "null", "text", "empty"):
                changed = copy.deepcopy(bundle)
                resource = changed["entry"][index]["resource"]
                if spoil == "delete":
                    del resource[element]
                else:
                    resource[element] = {"null": None, "text": "x", "empty": {}}[spoil]
                try:
                    load_bundle_patient(changed, "patient-bundle.json")
                except FhirBundleError as error:
                    assert _leaks(error, document) == [], (index, element, spoil)
                except Exception as error:  # any other exception is the failure
                    crashes.append((index, element, spoil, type(error).__name__))
    assert crashes == []


def _drop_linewise_codings(node: Any) -> int:
    """Remove the linewise coding wherever a standard coding stands beside it; return how many."""
    dropped = 0
    if isinstance(node, dict):
        codings = node.get("coding")
        if isinstance(codings, list) and len(codings) > 1:
            standard = [c for c in codings if not str(c.get("system", "")).startswith("urn:linewise:")]
            dropped += len(codings) - len(standard)
            node["coding"] = standard
        dropped += sum(_drop_linewise_codings(value) for value in node.values())
    elif isinstance(node, list):
        dropped += sum(_drop_linewise_codings(value) for value in node)
    return dropped


def test_standard_codes_alone_read_the_same(lock: Path, key: bytes, documents: dict[str, Any]) -> None:
    # a Bundle from another system may carry only the standard coding where docs/fhir.md lists one
    every = [*export_patients(lock, key).values(), *documents.values()]
    dropped = 0
    for document in every:
        bundle = bundle_from_document(document)
        dropped += _drop_linewise_codings(bundle)
        assert read_bundle(bundle).document == document
    assert dropped > len(every)  # sites, genes, variant answers and radiotherapy were all tried


def _resource(bundle: dict[str, Any], kind: str, code: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][_entry(bundle, kind, code)]["resource"]
    return resource


def _first_line(bundle: dict[str, Any]) -> dict[str, Any]:
    return _resource(bundle, "MedicationAdministration")


def _er(bundle: dict[str, Any]) -> dict[str, Any]:
    return _resource(bundle, "Observation", "85337-4")


CHANGES = {
    # change -> (resource type of the entry named, element, rule)
    "a-client-key-name": (
        lambda b: _resource(b, "Patient").update({"JohnSmith_1970": 1}),
        ("Patient", "<unknown element>", "fhir-structure"),
    ),
    "an-unknown-end-reason": (
        lambda b: _first_line(b).update(
            {"statusReason": [{"coding": [{"system": "http://snomed.info/sct", "code": "266721009"}]}]}
        ),
        ("MedicationAdministration", "statusReason", "fhir-code"),
    ),
    "entered-in-error": (
        lambda b: _resource(b, "Observation", "89247-1").update({"status": "entered-in-error"}),
        ("Observation", "status", "fhir-status"),
    ),
    "not-done": (
        lambda b: _first_line(b).update({"status": "not-done"}),
        ("MedicationAdministration", "status", "fhir-status"),
    ),
    "a-modifier-extension": (
        lambda b: _first_line(b).update({"modifierExtension": [{"url": "urn:x", "valueBoolean": True}]}),
        ("MedicationAdministration", "modifierExtension", "fhir-status"),
    ),
    "a-refuted-metastasis": (
        lambda b: _resource(b, "Condition", "128462008").update(
            {
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "refuted",
                        }
                    ]
                }
            }
        ),
        ("Condition", "verificationStatus", "fhir-status"),
    ),
    "a-fraction-for-a-percentage": (
        lambda b: _er(b)["valueQuantity"].update({"unit": "1", "code": "1"}),
        ("Observation", "valueQuantity", "fhir-value"),
    ),
    "a-comparator": (
        lambda b: _er(b)["valueQuantity"].update({"comparator": "<"}),
        ("Observation", "valueQuantity", "fhir-value"),
    ),
    "a-partial-date": (
        lambda b: _resource(b, "Condition", "128462008").update({"onsetDateTime": "2019"}),
        ("Condition", "onsetDateTime", "fhir-value"),
    ),
    "a-dangling-focus": (
        lambda b: _er(b).update({"focus": [{"reference": "urn:uuid:missing"}]}),
        ("Observation", "focus", "fhir-reference"),
    ),
    "two-end-reasons": (
        lambda b: _first_line(b).update({"statusReason": _first_line(b).get("statusReason", []) * 2}),
        ("MedicationAdministration", "statusReason", "fhir-value"),
    ),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_what_would_misread_silently_is_refused(documents: dict[str, dict[str, Any]], change: str) -> None:
    document = next(
        d
        for d in documents.values()
        if d["progressions"] and d["performance_status"] and any(x["end_reason"] for x in d["lines"])
    )
    bundle = bundle_from_document(document)
    spoil, (resource, element, rule) = CHANGES[change]
    spoil(bundle)
    error = _error(bundle)
    assert (resource, element, rule) in [(p.resource, p.element, p.rule) for p in error.problems]
    assert "JohnSmith" not in str(error) and _leaks(error, document) == []


def test_a_second_baseline_result_is_refused_not_overwritten(documents: dict[str, dict[str, Any]]) -> None:
    _, bundle = _sample(documents)
    index = _entry(bundle, "Observation", "85337-4")
    second = copy.deepcopy(bundle["entry"][index])
    second["fullUrl"] = "urn:uuid:00000000-0000-0000-0000-000000000001"
    second["resource"]["valueQuantity"]["value"] = 5
    bundle["entry"].append(second)
    error = _error(bundle)
    assert [(p.entry, p.element, p.rule) for p in error.problems] == [
        (len(bundle["entry"]) - 1, "valueQuantity", "fhir-value")
    ]


@pytest.mark.parametrize(
    ("change", "element"),
    [("no-timestamp", "timestamp"), ("history", "type"), ("duplicate-full-url", "fullUrl")],
)
def test_a_bundle_that_is_ambiguous_is_refused(
    documents: dict[str, dict[str, Any]], change: str, element: str
) -> None:
    document, bundle = _sample(documents)
    if change == "no-timestamp":
        del bundle["timestamp"]
    elif change == "history":
        bundle["type"] = "history"
    else:
        bundle["entry"][2]["fullUrl"] = bundle["entry"][1]["fullUrl"]
    error = _error(bundle)
    assert [(p.entry, p.element) for p in error.problems][:1] == [(None, element)]
    assert _leaks(error, document) == []


def test_a_patient_without_a_full_url_is_refused(documents: dict[str, dict[str, Any]]) -> None:
    _, bundle = _sample(documents)
    index = _entry(bundle, "Patient")
    del bundle["entry"][index]["fullUrl"]
    for entry in bundle["entry"]:
        if "subject" in entry["resource"]:
            entry["resource"]["subject"] = {"reference": "None"}  # what str(None) would have matched
    assert [(p.entry, p.element, p.rule) for p in _error(bundle).problems] == [
        (index, "fullUrl", "fhir-reference")
    ]


def test_a_deeply_nested_bundle_is_refused_not_a_crash() -> None:
    patient: dict[str, Any] = {"resourceType": "Patient"}
    node = patient
    for _ in range(400):
        node["extension"] = [{"url": "urn:x"}]
        node = node["extension"][0]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}
    with pytest.raises(FhirBundleError, match="fhir-structure"):
        read_bundle(bundle)
