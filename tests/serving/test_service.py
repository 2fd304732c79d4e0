"""The scoring service in process: auth, the score document, limits, errors without patient data, OpenAPI.

Reloading the model and the ``linewise serve`` command are in ``test_service_reload_and_serve.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from linewise.serving.app import create_app
from linewise.serving.report import render_report
from linewise.serving.schemas import ScoreResponse

from .conftest import NAME, Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, expected_score, open_patient

PROTECTED = [
    ("post", "/v1/score"),
    ("post", "/v1/report"),
    ("get", "/v1/model"),
    ("post", "/v1/model/reload"),
]


def _app(served: Served, **kwargs: Any) -> FastAPI:
    options: dict[str, Any] = {"token": TOKEN, "reload_interval_s": 0.0, "model": served.model} | kwargs
    return create_app(CHAMPION, version=VERSION, **options)


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(_app(served)) as test_client:
        yield test_client


# --- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "wrong-token", "other-scheme"],
)
@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[p for _, p in PROTECTED])
def test_protected_endpoints_need_the_token(
    client: TestClient, served: Served, method: str, path: str, headers: dict[str, str]
) -> None:
    body = {"patient": open_patient(served)} if method == "post" else None
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "a valid bearer token is required"
    assert open_patient(served)["patient_key"] not in response.text


def test_health_is_open_and_says_only_status(client: TestClient) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_loaded": True}


def test_the_openapi_document_declares_bearer_security(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The token in LINEWISE_API_TOKEN.",
    }
    for method, path in PROTECTED:
        assert document["paths"][path][method]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/v1/health"]["get"]


def test_without_token_the_app_must_be_local_only(served: Served) -> None:
    with pytest.raises(ValueError, match="token is required unless"):
        create_app(CHAMPION, version=VERSION, token=None)
    with TestClient(_app(served, token=None, local_only=True)) as local:
        assert local.get("/v1/model").status_code == 200


def test_the_app_refuses_a_short_or_padded_token() -> None:
    with pytest.raises(ValueError, match=r"at least 32 characters \(found 31\)"):
        create_app(CHAMPION, version=VERSION, token="t" * 31)
    with pytest.raises(ValueError, match="must not start or end with white space"):
        create_app(CHAMPION, version=VERSION, token="t" * 40 + "\n")
    with pytest.raises(ValueError, match="printable ASCII"):  # a header, read as Latin-1, never matches it
        create_app(CHAMPION, version=VERSION, token="é" * 40)


# --- scoring ---------------------------------------------------------------------------------------


def test_score_gives_the_document_of_score_patient(client: TestClient, served: Served) -> None:
    documents = [*served.open_patients.values(), served.closed_patient]
    for document in documents:
        response = client.post("/v1/score", json={"patient": document}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json() == expected_score(served, document)
        described = ScoreResponse.model_validate(response.json())  # the OpenAPI document describes it
        assert described.model_dump(exclude_unset=True) == response.json()
    # the earlier date: halfway from the first progression to as_of, so there is a decision to score
    document = documents[0]
    first = min(dt.date.fromisoformat(p["date"]) for p in document["progressions"])
    earlier = first + (dt.date.fromisoformat(document["as_of"]) - first) / 2
    response = client.post(
        "/v1/score", json={"patient": document, "as_of": earlier.isoformat()}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected_score(served, document, earlier)
    assert response.json()["as_of"] == earlier.isoformat()


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    first, second = client.get("/v1/health"), client.get("/v1/health")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_model_shows_the_version_and_provenance(client: TestClient, served: Served) -> None:
    state = client.get("/v1/model", headers=AUTH).json()
    # the fixture's new store registers one version, which @champion points at
    assert state["version"] == "1"
    assert state["resolved_uri"] == f"models:/{NAME}/1"
    assert state["provenance"]["lock_id"] == "sim-5-1000"
    assert state["last_reload_check"] is None
    assert dt.datetime.fromisoformat(state["loaded_at"]) <= dt.datetime.now(dt.UTC)


def test_report_is_the_page_the_command_line_renders(client: TestClient, served: Served) -> None:
    response = client.post("/v1/report", json={"patient": open_patient(served)}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")  # when it was made
    expected = render_report(served.model, open_patient(served), source="patient")
    assert stamp.sub("<made>", response.text) == stamp.sub("<made>", expected)


# --- limits ----------------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_refused_by_content_length_and_while_chunked(served: Served) -> None:
    document = open_patient(served)
    content = json.dumps({"patient": document}).encode()
    size = len(content)
    headers = {**AUTH, "Content-Type": "application/json"}
    with TestClient(_app(served, max_body_bytes=size - 1)) as small:
        declared = small.post("/v1/score", content=content, headers=headers)
        assert declared.status_code == 413
        assert declared.request.headers["content-length"] == str(size)
        assert "over the limit" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(content), 100):
                yield content[start : start + 100]

        chunked = small.post("/v1/score", content=chunks(), headers=headers)
        assert chunked.status_code == 413
        assert "content-length" not in {k.lower() for k in chunked.request.headers}
    with TestClient(_app(served, max_body_bytes=size)) as exact:
        passed = exact.post("/v1/score", content=chunks(), headers=headers)
        assert passed.status_code == 200
        assert passed.json() == expected_score(served, document)


# --- errors ----------------------------------------------------------------------------------------


def _with(document: dict[str, Any], table: str, field: str, value: Any, row: int = 0) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    if table == "patient":
        changed["patient"][field] = value
    elif table == "":
        changed[field] = value
    else:
        changed[table][row][field] = value
    return changed


@pytest.mark.parametrize(
    ("table", "field", "value", "loc", "rule"),
    [
        ("lines", "start_date", "2021-02-30", ["lines", 0, "start_date"], "type-date"),
        ("lines", "line_number", "one", ["lines", 0, "line_number"], "int_type"),
        ("lines", "start_date", "30/01/2021", ["lines", 0, "start_date"], "string_pattern_mismatch"),
        ("patient", "histology", "xq-not-a-code", ["patient", "histology"], "code"),
        ("patient", "age_at_metastatic_dx", 7.25, ["patient", "age_at_metastatic_dx"], "range"),
        ("lines", "nickname", "xq-marker", ["lines", 0, "<unknown field>"], "extra_forbidden"),
        ("", "patient_key", "SIM-000123", ["patient_key"], "string_too_short"),
        ("", "schema_version", 1234567, ["schema_version"], "less_than_equal"),
    ],
    ids=[
        "impossible-date",
        "text-as-integer",
        "date-format",
        "unknown-code",
        "out-of-range",
        "unknown-field",
        "raw-identifier",
        "schema-version",
    ],
)
def test_invalid_documents_get_field_level_422_without_their_values(
    client: TestClient, served: Served, table: str, field: str, value: Any, loc: list[Any], rule: str
) -> None:
    bad = _with(open_patient(served), table, field, value)
    response = client.post("/v1/score", json={"patient": bad}, headers=AUTH)
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"detail", "request_id", "errors"}
    assert {"loc": ["body", "patient", *loc], "rule": rule} in [
        {"loc": e["loc"], "rule": e["rule"]} for e in body["errors"]
    ]
    assert str(value) not in response.text
    assert bad["patient_key"] not in response.text


def test_a_body_that_is_no_json_gets_422(client: TestClient) -> None:
    response = client.post(
        "/v1/score", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "json_invalid"


def test_unscorable_patients_get_422_without_their_key(client: TestClient, served: Served) -> None:
    undecided = served.undecided_patient
    response = client.post("/v1/score", json={"patient": undecided}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["rule"] == "not-scorable"
    assert undecided["patient_key"] not in response.text
    document = open_patient(served)
    late = (dt.date.fromisoformat(document["as_of"]) + dt.timedelta(days=1)).isoformat()
    response = client.post("/v1/score", json={"patient": document, "as_of": late}, headers=AUTH)
    assert response.status_code == 422
    assert document["patient_key"] not in response.text
    assert late not in response.text and document["as_of"] not in response.text


def _places(document: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every (table, field, row) of a document where a value can be put (the top level as table '')."""
    places = [("", name, 0) for name in ("patient_key", "as_of", "schema_version", "extra_field")]
    places += [("patient", name, 0) for name in [*document["patient"], "extra_field"]]
    for table in (
        "metastases",
        "lines",
        "progressions",
        "local_therapies",
        "biomarkers",
        "performance_status",
    ):
        for row, record in enumerate(document[table]):
            places += [(table, name, row) for name in [*record, "extra_field"]]
    return places


MARKERS = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=6, max_size=12).map(lambda s: f"zqx{s}"),
    st.dates(dt.date(1901, 1, 1), dt.date(1949, 12, 31)).map(dt.date.isoformat),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), marker=MARKERS, in_as_of=st.booleans())
def test_no_marker_is_echoed_or_logged_and_nothing_is_a_server_error(
    client: TestClient,
    served: Served,
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    marker: str,
    in_as_of: bool,
) -> None:
    document = open_patient(served)
    table, field, row = data.draw(st.sampled_from(_places(document)), label="place")
    bad = _with(document, table, field, marker, row)
    body: dict[str, Any] = {"patient": bad}
    if in_as_of:
        body["as_of"] = marker
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        response = client.post("/v1/score", json=body, headers=AUTH)
    assert response.status_code in (200, 422), response.text
    echoed_by_design = response.status_code == 200 and (table, field) in {("", "as_of"), ("", "patient_key")}
    if not echoed_by_design:
        assert marker not in response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert marker not in logged
    assert bad["patient_key"] not in logged
    assert f"/v1/score {response.status_code}" in logged


def test_one_log_line_per_request_without_patient_data(
    client: TestClient, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    document = open_patient(served)
    with caplog.at_level(logging.INFO, logger="linewise.serve"):
        client.post("/v1/score", json={"patient": document}, headers=AUTH)
        client.get("/v1/patients/" + document["patient_key"], headers=AUTH)
    lines = [r.getMessage() for r in caplog.records if r.name == "linewise.serve"]
    assert len(lines) == 2
    assert " POST /v1/score 200 " in lines[0] and lines[0].endswith(" ms")
    assert " GET <other> 404 " in lines[1]
    text = "\n".join(lines)
    assert document["patient_key"] not in text and document["as_of"] not in text


def test_an_unexpected_error_is_a_500_with_only_the_request_id(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    document = open_patient(served)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"boom {document['patient_key']}")

    monkeypatch.setattr("linewise.serving.app.score_patient", broken)
    with TestClient(_app(served)) as broken_client, caplog.at_level(logging.INFO, logger="linewise.serve"):
        response = broken_client.post("/v1/score", json={"patient": document}, headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error",
        "request_id": response.headers["x-request-id"],
        "errors": [],
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged and document["patient_key"] not in logged


# --- schemathesis ----------------------------------------------------------------------------------


# Built at import (schemathesis parametrizes at collection); its model is set by the fixture below
# before the first request starts the app. The reload endpoint is left out: it reads the registry.
SCHEMA_APP = create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0)
schema = schemathesis.openapi.from_dict(SCHEMA_APP.openapi()).exclude(path="/v1/model/reload")
schema.app = SCHEMA_APP


@pytest.fixture
def schema_model(served: Served) -> None:
    SCHEMA_APP.state.holder.set(served.model)


@pytest.mark.slow
@pytest.mark.usefixtures("schema_model")
@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_openapi_document_holds_no_server_errors(case: Any) -> None:
    case.call_and_validate(
        headers=AUTH,
        checks=[
            not_a_server_error,
            ignored_auth,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
