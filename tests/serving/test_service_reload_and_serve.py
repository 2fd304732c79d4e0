"""The scoring service over time and as a process: reloading follows the champion alias, and
``linewise serve`` refuses to start unsafely, exits 2 without a model and answers over HTTP.

The service's requests in process (auth, scoring, limits, errors, OpenAPI) are in ``test_service.py``.
"""

from __future__ import annotations

import os
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
def test_linewise_serve_answers_over_http(served: Served, store: str, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    document = open_patient(served)
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
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                deadline = time.monotonic() + 90
                while True:
                    assert server.poll() is None, log.read_text(errors="replace")[-3000:]
                    try:
                        if http.get("/v1/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, (
                        "no /v1/health within 90 s:\n" + log.read_text()[-3000:]
                    )
                    time.sleep(0.3)
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
