"""The service authenticates before it reads a body, and never redirects to a client's Host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linewise.serving.app import create_app

from .conftest import Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, open_patient

UNAUTHORIZED = "a valid bearer token is required"


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    app = create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0.0, model=served.model)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"patient": 1}', b"\xff\xfe", b""],
    ids=["malformed-json", "wrong-shape", "not-utf8", "empty"],
)
@pytest.mark.parametrize("path", ["/v1/score", "/v1/report"])
def test_a_bad_body_with_a_wrong_token_gets_401_not_its_validation(
    client: TestClient, path: str, body: bytes
) -> None:
    response = client.post(
        path,
        content=body,
        headers={"Authorization": "Bearer " + "w" * 40, "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "detail": UNAUTHORIZED,
        "request_id": response.headers["x-request-id"],
        "errors": [],
    }


def test_the_same_bad_body_with_the_token_gets_its_validation(client: TestClient) -> None:
    response = client.post(
        "/v1/score", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_an_unknown_path_needs_the_token_too(client: TestClient) -> None:
    assert client.get("/v1/patients").status_code == 401
    assert client.get("/v1/patients", headers=AUTH).status_code == 404
    assert client.get("/v1/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_trailing_slash_is_not_redirected_to_the_clients_host(client: TestClient, served: Served) -> None:
    response = client.post(
        "/v1/score/",
        json={"patient": open_patient(served)},
        headers={**AUTH, "Host": "attacker.example"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers
