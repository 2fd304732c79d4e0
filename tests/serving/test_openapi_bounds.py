"""The OpenAPI document bounds every field of a patient document that the loader bounds."""

from __future__ import annotations

from typing import Any

import pytest

from linewise.serving.app import create_app

from .conftest import Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, open_patient


def _properties(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]["properties"]


def test_schema_version_and_patient_key_are_bounded_in_the_schema() -> None:
    document = create_app(CHAMPION, version=VERSION, token=TOKEN).openapi()
    patient = _properties(document, "PatientDocument")
    assert (patient["schema_version"]["minimum"], patient["schema_version"]["maximum"]) == (1, 1)
    assert (patient["patient_key"]["minLength"], patient["patient_key"]["maxLength"]) == (16, 16)
    drugs = _properties(document, "LineRecord")["drugs"]["anyOf"][0]
    assert drugs["maxLength"] == 1000


@pytest.mark.parametrize(
    ("field", "value"),
    [("schema_version", 2), ("patient_key", "0" * 17), ("patient_key", "0" * 15)],
    ids=["schema-version-2", "key-too-long", "key-too-short"],
)
def test_an_out_of_bounds_field_is_a_422_naming_it(served: Served, field: str, value: Any) -> None:
    document = open_patient(served) | {field: value}
    app = create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0.0, model=served.model)
    with TestClient(app) as client:
        response = client.post("/v1/score", json={"patient": document}, headers=AUTH)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "patient", field]]
    assert not isinstance(value, str) or value not in response.text  # the value is never echoed
