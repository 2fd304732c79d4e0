"""The scoring service over time and as a process: reloading follows the champion alias, and
``linewise serve`` refuses to start unsafely, exits 2 without a model and answers over HTTP.

The service's requests in process (auth, scoring, limits, errors, OpenAPI) are in ``test_service.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import mlflow
import pytest

from linewise.model_input_example import synthetic_input_example
from linewise.serving.app import create_app
from linewise.training.pyfunc import log_recommender

from ..servers import free_port, stop
from .conftest import NAME, SQLALCHEMY_NOLOAD, Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, expected_score, open_patient

# --- reload ----------------------------------------------------------------------------------------


def _register_again(served: Served) -> str:
    """Log the served recommender again as a new version of the registered model; return it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SQLALCHEMY_NOLOAD)
        metadata = {"lock_id": "sim-5-1000-b", "lock_date": "2025-01-31", "lock_digest": "1" * 64}
        experiment = mlflow.MlflowClient().get_experiment_by_name("serving")
        assert experiment is not None
        with mlflow.start_run(experiment_id=experiment.experiment_id):
            info = log_recommender(
                served.model.recommender, metadata, synthetic_input_example(5), registered_model_name=NAME
            )
    return str(info.registered_model_version)


@pytest.mark.slow
def test_reload_follows_the_alias_and_scoring_goes_on(served: Served, store: str) -> None:
    registry = mlflow.MlflowClient()
    first = served.model.version
    assert first is not None
    document = open_patient(served)
    try:
        with TestClient(create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0)) as service:
            assert service.get("/v1/model", headers=AUTH).json()["version"] == first
            unchanged = service.post("/v1/model/reload", headers=AUTH).json()
            assert unchanged["changed"] is False and unchanged["version"] == first
            second = _register_again(served)
            registry.set_registered_model_alias(NAME, "champion", second)
            moved = service.post("/v1/model/reload", headers=AUTH).json()
            assert moved == {
                "changed": True,
                "previous_version": first,
                "version": second,
                "checked_at": moved["checked_at"],
            }
            state = service.get("/v1/model", headers=AUTH).json()
            assert state["version"] == second and state["provenance"]["lock_id"] == "sim-5-1000-b"
            assert state["last_reload_check"] == moved["checked_at"]
            scored = service.post("/v1/score", json={"patient": document}, headers=AUTH)
            assert scored.status_code == 200
            assert scored.json()["model"]["model_version"] == second
            again = service.post("/v1/model/reload", headers=AUTH).json()
            assert again["changed"] is False and again["version"] == second
        registry.set_registered_model_alias(NAME, "champion", first)
        with TestClient(create_app(CHAMPION, version=VERSION, token=TOKEN, reload_interval_s=0.2)) as polled:
            assert polled.get("/v1/model", headers=AUTH).json()["version"] == first
            registry.set_registered_model_alias(NAME, "champion", second)
            deadline = time.monotonic() + 30
            while polled.get("/v1/model", headers=AUTH).json()["version"] != second:
                assert time.monotonic() < deadline, "the poller did not pick up the moved alias"
                time.sleep(0.2)
    finally:
        registry.set_registered_model_alias(NAME, "champion", first)


# --- the command line ------------------------------------------------------------------------------


def _linewise(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linewise", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_serve_refuses_to_start_without_a_token() -> None:
    result = _linewise("serve", env={"LINEWISE_API_TOKEN": ""})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "linewise serve: LINEWISE_API_TOKEN is not set: set it to the bearer token clients must send, "
        "or pass --local-only to serve this machine only without one"
    ]


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("   ", "the bearer token must not start or end with white space"),
        (" " + "t" * 40, "the bearer token must not start or end with white space"),
        ("t" * 31, "the bearer token must have at least 32 characters (found 31)"),
        ("x", "the bearer token must have at least 32 characters (found 1)"),
    ],
    ids=["white-space-only", "padded", "31-characters", "one-character"],
)
def test_serve_refuses_a_weak_or_padded_token_in_one_line(token: str, said: str) -> None:
    result = _linewise("serve", env={"LINEWISE_API_TOKEN": token})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"linewise serve: LINEWISE_API_TOKEN: {said}"]
    assert token.strip() == "" or token.strip() not in result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org"], ids=["any", "lan", "name"])
def test_local_only_refuses_other_interfaces(host: str) -> None:
    result = _linewise("serve", "--local-only", "--host", host, env={"LINEWISE_API_TOKEN": ""})
    assert result.returncode == 2
    assert "--local-only serves the loopback interface only" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_with_a_missing_model_exits_2(store: str) -> None:
    result = _linewise("serve", "--model", "models:/absent@champion", env={"LINEWISE_API_TOKEN": TOKEN})
    assert result.returncode == 2
    assert result.stderr.startswith("linewise serve: cannot load the model models:/absent@champion")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def _start_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start ``linewise serve`` on a free loopback port; return it once ``/v1/health`` answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "linewise", "serve", "--port", str(port), "--reload-interval", "0"]
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**os.environ, "LINEWISE_API_TOKEN": TOKEN},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=base, timeout=30) as http:
        while True:
            if server.poll() is not None:
                raise AssertionError(log.read_text(errors="replace")[-3000:])
            try:
                if http.get("/v1/health").status_code == 200:
                    return server, base, log
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                stop(server)
                raise AssertionError("no /v1/health within 90 s:\n" + log.read_text()[-3000:])
            time.sleep(0.3)


def test_linewise_serve_answers_over_http(served: Served, store: str, tmp_path: Path) -> None:
    document = open_patient(served)
    server, base, log = _start_server(tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/v1/health").json() == {"status": "ok", "model_loaded": True}
            refused = http.post("/v1/score", json={"patient": document})
            scored = http.post("/v1/score", json={"patient": document}, headers=AUTH)
    finally:
        stop(server)
    assert refused.status_code == 401
    assert scored.status_code == 200
    assert scored.json() == expected_score(served, document)
    text = log.read_text(errors="replace")
    assert "POST /v1/score 200" in text and "POST /v1/score 401" in text
    assert document["patient_key"] not in text and document["as_of"] not in text
    assert "Traceback" not in text


def _read_response(connection: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length; return its status and body."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a response: {received[:200]!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = int(next(line.split(":", 1)[1] for line in lines if line.lower().startswith("content-length:")))
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the connection closed in the middle of the response"
        body += chunk
    return int(lines[0].split()[1]), body


def test_sigterm_finishes_the_request_in_flight_then_stops(
    served: Served, store: str, tmp_path: Path
) -> None:
    document = open_patient(served)
    body = json.dumps({"patient": document}).encode("utf-8")
    server, base, log = _start_server(tmp_path)
    host, port = base.removeprefix("http://").split(":")
    try:
        # a request in flight: its headers and half its body are sent when the server is told to stop
        connection = socket.create_connection((host, int(port)), timeout=30)
        head = (
            f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        connection.sendall(head + body[: len(body) // 2])
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert server.poll() is None, "the server stopped with a request in flight"
        with pytest.raises(OSError):  # it takes no new connection meanwhile
            socket.create_connection((host, int(port)), timeout=5).close()
        connection.sendall(body[len(body) // 2 :])
        status, answer = _read_response(connection)
        connection.close()
        # uvicorn ends by raising the signal it caught again, as a process stopped by it should
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        stop(server)
    assert status == 200
    assert json.loads(answer) == expected_score(served, document)
    text = log.read_text(errors="replace")
    assert "POST /v1/score 200" in text and "Traceback" not in text
    assert (
        text.index("Shutting down") < text.index("POST /v1/score 200") < text.index("Finished server process")
    )
