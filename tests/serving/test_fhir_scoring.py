"""A FHIR Bundle scores as its JSON document, through ``linewise score``/``report`` and the service.

Every patient of a simulated lock is exported twice (``export-patient`` JSON and ``--format fhir``) and
scored both ways; the answers must be equal, byte for byte once parsed. A Bundle that cannot be read,
or whose document breaks the contract, is a 422 (or exit 2) naming the entry and element, no value.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linewise.cli import app as cli
from linewise.features.fhir import bundle_from_document
from linewise.features.patient import export_patients
from linewise.serving.app import create_app
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

from ..conftest import TEST_KEY
from ..fhir_bundles import entry_index as _entry
from .conftest import Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, open_patient

FHIR = {**AUTH, "Content-Type": "application/fhir+json"}
STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\+00:00")  # when a report page was made


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every patient of a simulated lock that the served model did not learn from."""
    root = tmp_path_factory.mktemp("fhir-scoring")
    simulate_lock(120, 11, root / "lock", root / "truth", load_config(), lock_id="sim-11-120")
    return export_patients(root / "lock", TEST_KEY.encode("utf-8"))


@pytest.fixture(scope="module")
def client(served: Served) -> Any:
    service = create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0.0, model=served.model)
    with TestClient(service) as test_client:
        yield test_client


def _answer(response: Any) -> tuple[int, Any]:
    """Status and body, less the request id (a new one per request)."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, body


def _post_bundle(client: Any, path: str, bundle: Any, query: str = "") -> Any:
    return client.post(f"{path}{query}", content=json.dumps(bundle), headers=FHIR)


def test_every_patient_scores_the_same_from_its_bundle_through_the_api(
    client: Any, documents: dict[str, dict[str, Any]]
) -> None:
    scored = 0
    for document in documents.values():
        as_json = _answer(client.post("/v1/score", json={"patient": document}, headers=AUTH))
        as_bundle = _answer(_post_bundle(client, "/v1/score", bundle_from_document(document)))
        assert as_bundle == as_json
        scored += as_json[0] == 200
    # the lock holds patients with a decision to score and patients without one (both answers agree)
    assert 0 < scored < len(documents)


def test_a_bundle_reports_the_same_page_through_the_api(client: Any, served: Served) -> None:
    document = open_patient(served)
    page = client.post("/v1/report", json={"patient": document}, headers=AUTH)
    from_bundle = _post_bundle(client, "/v1/report", bundle_from_document(document))
    assert page.status_code == from_bundle.status_code == 200
    assert from_bundle.headers["content-type"].startswith("text/html")
    assert STAMP.sub("", from_bundle.text) == STAMP.sub("", page.text)


def test_as_of_in_the_query_scores_a_bundle_as_of_in_the_body(client: Any, served: Served) -> None:
    document = served.closed_patient
    cut = min(p["date"] for p in document["progressions"])
    body = client.post("/v1/score", json={"patient": document, "as_of": cut}, headers=AUTH)
    query = _post_bundle(client, "/v1/score", bundle_from_document(document), f"?as_of={cut}")
    assert body.status_code == 200 and _answer(query) == _answer(body)
    assert query.json()["as_of"] == cut


def test_as_of_in_the_query_of_a_json_request_is_refused(client: Any, served: Served) -> None:
    response = client.post("/v1/score?as_of=2024-01-01", json={"patient": open_patient(served)}, headers=AUTH)
    assert response.status_code == 422
    assert [(e["loc"], e["rule"]) for e in response.json()["errors"]] == [
        (["query", "as_of"], "as-of-in-body")
    ]


def _problems(response: Any) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.text
    return [(e["loc"], e["rule"]) for e in response.json()["errors"]]


def test_an_unknown_code_is_a_422_naming_entry_and_element(client: Any, served: Served) -> None:
    bundle = bundle_from_document(open_patient(served))
    index = _entry(bundle, "Observation", "89247-1")  # the ECOG observation
    bundle["entry"][index]["resource"]["code"] = {"coding": [{"system": "http://loinc.org", "code": "1-8"}]}
    response = _post_bundle(client, "/v1/score", bundle)
    assert _problems(response) == [(["body", "entry", index, "resource", "code"], "fhir-code")]
    assert "1-8" not in response.text
    assert response.json()["errors"][0]["message"].startswith("Observation: ")


def test_a_contract_violation_of_the_bundle_is_located_in_the_bundle(client: Any, served: Served) -> None:
    bundle = bundle_from_document(open_patient(served))
    index = _entry(bundle, "Condition", "128462008")  # a metastasis (secondary malignancy)
    bundle["entry"][index]["resource"]["onsetDateTime"] = "2099-01-01"  # after the Bundle's date
    response = _post_bundle(client, "/v1/score", bundle)
    problems = _problems(response)
    assert problems == [
        (["body", "entry", index, "resource", "onsetDateTime"], "patient-file:after-lock-date")
    ]
    assert "2099" not in response.text


def test_a_schema_bound_of_the_document_is_located_in_the_bundle(client: Any, served: Served) -> None:
    bundle = bundle_from_document(open_patient(served))
    index = _entry(bundle, "Patient")
    identifier = bundle["entry"][index]["resource"]["identifier"][0]
    identifier["value"] = identifier["value"] + "00"  # a pseudonym is 16 characters
    response = _post_bundle(client, "/v1/score", bundle)
    assert [loc for loc, _ in _problems(response)] == [["body", "entry", index, "resource", "identifier"]]
    assert identifier["value"] not in response.text


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"[]", json.dumps({"resourceType": "Patient"}).encode()],
    ids=["not-json", "not-utf8", "an-array", "not-a-bundle"],
)
def test_a_body_that_is_no_bundle_is_one_422(client: Any, body: bytes) -> None:
    response = client.post("/v1/score", content=body, headers=FHIR)
    problems = _problems(response)
    assert len(problems) == 1 and problems[0][1].startswith("fhir-")


def test_a_missing_patient_is_a_422(client: Any, served: Served) -> None:
    bundle = bundle_from_document(open_patient(served))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert _problems(_post_bundle(client, "/v1/score", bundle)) == [(["body", "entry"], "fhir-patient")]


# ---- the command line ----------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_every_patient_scores_the_same_from_its_bundle_through_the_cli(
    served: Served, store: str, tmp_path: Path, documents: dict[str, dict[str, Any]]
) -> None:
    scored = 0
    for number, document in enumerate(documents.values()):
        as_json = _write(tmp_path, f"p{number}.json", document)
        as_bundle = _write(tmp_path, f"p{number}.fhir.json", bundle_from_document(document))
        from_json = CliRunner().invoke(cli, ["score", str(as_json), "--json"])
        from_bundle = CliRunner().invoke(cli, ["score", str(as_bundle), "--json"])
        assert from_bundle.exit_code == from_json.exit_code
        if from_json.exit_code == 0:
            assert json.loads(from_bundle.stdout) == json.loads(from_json.stdout)
            scored += 1
        else:  # nothing to score: the same one message, naming the file it was given
            assert from_bundle.output.replace(as_bundle.name, as_json.name) == from_json.output
    assert 0 < scored < len(documents)


def test_the_cli_report_of_a_bundle_is_the_page_of_its_document(
    served: Served, store: str, tmp_path: Path
) -> None:
    document = open_patient(served)
    pages = []
    for name, content in (("p.json", document), ("p.fhir.json", bundle_from_document(document))):
        out = tmp_path / f"{name}.html"
        result = CliRunner().invoke(cli, ["report", str(_write(tmp_path, name, content)), "--out", str(out)])
        assert result.exit_code == 0, result.output
        pages.append(STAMP.sub("", out.read_text(encoding="utf-8")))
    assert pages[0] == pages[1]


def test_a_broken_bundle_on_the_cli_is_one_message_without_values(
    served: Served, store: str, tmp_path: Path
) -> None:
    bundle = bundle_from_document(open_patient(served))
    key = bundle["entry"][_entry(bundle, "Patient")]["resource"]["identifier"][0]["value"]
    index = _entry(bundle, "Condition", "128462008")
    bundle["entry"][index]["resource"]["onsetDateTime"] = "2099-01-01"
    original = copy.deepcopy(bundle)
    result = CliRunner().invoke(cli, ["score", str(_write(tmp_path, "broken.json", bundle))])
    assert result.exit_code == 2
    assert f"entry {index} (Condition), element onsetDateTime" in result.output
    assert "patient-file:after-lock-date" in result.output
    assert "2099" not in result.output and key not in result.output and "Traceback" not in result.output
    assert bundle == original


def test_a_refused_bundle_leaves_no_identifier_or_date_in_the_log(
    client: Any, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    document = open_patient(served)
    bundle = bundle_from_document(document)
    index = _entry(bundle, "Condition", "128462008")
    bundle["entry"][index]["resource"]["onsetDateTime"] = "2099-01-01"
    with caplog.at_level(logging.DEBUG):
        assert _post_bundle(client, "/v1/score", bundle).status_code == 422
        as_of = f"?as_of={document['as_of']}"  # the request log never shows a query
        assert _post_bundle(client, "/v1/score", bundle_from_document(document), as_of).status_code == 200
        assert _post_bundle(client, "/v1/score", {"resourceType": "Bundle", "type": 7}).status_code == 422
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("linewise"))
    assert logged.count("POST /v1/score") == 3  # the service's request log (not the test client's)
    secrets = [document["patient_key"], document["as_of"], document["patient"]["metastatic_dx_date"], "2099"]
    assert [secret for secret in secrets if secret in logged] == []


def test_the_content_type_may_carry_parameters_and_any_case(client: Any, served: Served) -> None:
    document = open_patient(served)
    expected = _answer(client.post("/v1/score", json={"patient": document}, headers=AUTH))
    headers = {**AUTH, "Content-Type": "Application/FHIR+JSON; charset=utf-8"}
    response = client.post("/v1/score", content=json.dumps(bundle_from_document(document)), headers=headers)
    assert _answer(response) == expected


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, json.dumps({"resourceType": "Bundle", "type": "collection"}).encode()],
    ids=["too-deep-for-json", "no-entries"],
)
def test_a_body_that_breaks_the_readers_is_a_422_not_a_500(client: Any, body: bytes) -> None:
    response = client.post("/v1/score", content=body, headers=FHIR)
    assert response.status_code == 422, response.text


def test_a_broken_bundle_to_the_report_is_the_422_of_the_score(client: Any, served: Served) -> None:
    bundle = bundle_from_document(open_patient(served))
    index = _entry(bundle, "Condition", "128462008")  # a metastasis (secondary malignancy)
    bundle["entry"][index]["resource"]["onsetDateTime"] = "2099-01-01"  # after the Bundle's date
    report = _post_bundle(client, "/v1/report", bundle)
    assert report.headers["content-type"].startswith("application/json")
    assert _problems(report) == [
        (["body", "entry", index, "resource", "onsetDateTime"], "patient-file:after-lock-date")
    ]
    assert _answer(report) == _answer(_post_bundle(client, "/v1/score", bundle))
    unreadable = client.post("/v1/report", content=b"{not json", headers=FHIR)
    assert _problems(unreadable) == [(["body"], "fhir-json")]
    assert "2099" not in report.text


def test_a_bundle_over_the_body_limit_is_a_413_by_length_and_while_chunked(served: Served) -> None:
    content = json.dumps(bundle_from_document(open_patient(served))).encode()

    def chunks() -> Any:
        for start in range(0, len(content), 1000):
            yield content[start : start + 1000]

    limited = create_app(
        CHAMPION,
        version=VERSION,
        token=TOKEN,
        reload_interval_s=0.0,
        model=served.model,
        max_body_bytes=len(content) - 1,
    )
    with TestClient(limited) as small:
        declared = small.post("/v1/score", content=content, headers=FHIR)
        chunked = small.post("/v1/score", content=chunks(), headers=FHIR)
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "over the limit" in response.json()["detail"]
    assert "content-length" not in {k.lower() for k in chunked.request.headers}
    exact = create_app(
        CHAMPION,
        version=VERSION,
        token=TOKEN,
        reload_interval_s=0.0,
        model=served.model,
        max_body_bytes=len(content),
    )
    with TestClient(exact) as enough:
        passed = _answer(enough.post("/v1/score", content=chunks(), headers=FHIR))
        expected = _answer(enough.post("/v1/score", json={"patient": open_patient(served)}, headers=AUTH))
    assert passed == expected and expected[0] == 200


def test_a_client_gone_in_the_middle_of_a_bundle_gets_no_answer(served: Served) -> None:
    content = json.dumps(bundle_from_document(open_patient(served))).encode()
    service = create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0.0, model=served.model)
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": content[: len(content) // 2], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(name.lower().encode(), value.encode()) for name, value in FHIR.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(service(scope, receive, send))
    # a half Bundle is neither read nor answered (a 422 for broken JSON would mean it was)
    assert sent == []
