"""Latency and throughput of ``POST /v1/score`` from a real ``linewise serve`` (uvicorn, one worker).

Simulates a 6,000-patient lock (seed 7), fits the default recommender (boosted Cox, 20 bootstrap
refits) and registers it in a temporary MLflow store as ``models:/linewise@champion`` (or serves the
model given with ``--model`` from the current tracking store), starts ``linewise serve`` in a
subprocess and scores one patient whose decision is open, with every candidate and its explanations:

1. a warm-up, then ``--sequential`` requests one after another (p50, p95, p99; target p95 < 100 ms);
2. ``--clients`` threads, each with its own HTTP client, sending ``--concurrent`` requests in all:
   throughput and p50/p95 latency.

Prints the figures and writes them, with the machine and the sizes, to
``benchmarks/results/serve_latency.json``.

Run: ``.venv/bin/python benchmarks/serve_latency.py`` (about 5 minutes on 2 cores, mostly the fit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import mlflow

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.features.patient import export_patients
from linewise.model_input_example import synthetic_input_example
from linewise.models.recommender import TreatmentRecommender
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from linewise.training.pyfunc import log_recommender

RESULTS = Path(__file__).parent / "results" / "serve_latency.json"
TARGETS = {"sequential_p95_ms_max": 100.0}
TOKEN = secrets.token_urlsafe(24)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(_percentile(ms, 0.95), 1),
        "p99_ms": round(_percentile(ms, 0.99), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def _register(folder: Path, patients: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Simulate, fit the default recommender, register it; return the store, a patient, the sizes."""
    key = secrets.token_bytes(32)
    lock = folder / "lock"
    simulate_lock(patients, 7, lock, folder / "truth", load_config(), lock_id=f"sim-7-{patients}")
    examples = build_examples(load_lock(lock, key))
    start = time.perf_counter()
    recommender = TreatmentRecommender().fit(examples)
    fit_s = time.perf_counter() - start
    latest = (
        examples.sort_values(["patient_key", "decision_day", "line_number"]).groupby("patient_key").tail(1)
    )
    chosen = sorted(latest.loc[latest["open_decision"].astype(bool), "patient_key"].astype(str))[0]
    document = export_patients(lock, key, [chosen])[chosen]
    store = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("serve-latency", artifact_location=(folder / "artifacts").as_uri())
    metadata = {"lock_id": f"sim-7-{patients}", "lock_date": "2025-01-31", "lock_digest": "0" * 64}
    with mlflow.start_run(experiment_id=experiment):
        info = log_recommender(
            recommender, metadata, synthetic_input_example(7), registered_model_name="linewise"
        )
    client.set_registered_model_alias("linewise", "champion", str(info.registered_model_version))
    sizes = {
        "patients": patients,
        "decisions": len(examples),
        "n_bootstrap": recommender.n_bootstrap,
        "family": recommender.family,
        "fit_s": round(fit_s, 1),
    }
    return store, document, sizes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(model_uri: str, store: str | None, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "LINEWISE_API_TOKEN": TOKEN}
    if store is not None:
        env |= {"MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    command = [sys.executable, "-m", "linewise", "serve", "--port", str(port), "--model", model_uri]
    server = subprocess.Popen(
        [*command, "--reload-interval", "0"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if server.poll() is not None:
            raise RuntimeError("linewise serve stopped:\n" + log.read_text(errors="replace")[-3000:])
        with suppress(httpx.TransportError):
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return server, base
        if time.monotonic() > deadline:
            raise RuntimeError("no /v1/health within 180 s")
        time.sleep(0.5)


def _stop(server: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def _post(http: httpx.Client, body: bytes) -> float:
    start = time.perf_counter()
    response = http.post("/v1/score", content=body)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/score answered {response.status_code}: {response.text[:300]}")
    return elapsed


def _client(base: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return httpx.Client(base_url=base, headers=headers, timeout=60)


def _measure(
    base: str, body: bytes, warmup: int, sequential: int, clients: int, concurrent: int
) -> dict[str, Any]:
    with _client(base) as http:
        for _ in range(warmup):
            _post(http, body)
        one_by_one = [_post(http, body) for _ in range(sequential)]
    per_client = [concurrent // clients + (i < concurrent % clients) for i in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()

    def work(count: int) -> None:
        with _client(base) as http:
            mine = [_post(http, body) for _ in range(count)]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(count,)) for count in per_client]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if len(latencies) != concurrent:
        raise RuntimeError(f"{concurrent - len(latencies)} concurrent requests failed")
    return {
        "sequential": {"requests": sequential, "warmup": warmup, **_summary(one_by_one)},
        "concurrent": {
            "clients": clients,
            "requests": concurrent,
            "wall_s": round(wall, 2),
            "throughput_rps": round(concurrent / wall, 1),
            **_summary(latencies),
        },
    }


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6000)
    parser.add_argument("--model", default=None, help="Serve this registered model instead of fitting one.")
    parser.add_argument("--patient", type=Path, default=None, help="Patient JSON to score (with --model).")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if args.model is None:
            store: str | None
            store, document, sizes = _register(folder, args.patients)
            model_uri = "models:/linewise@champion"
        else:
            if args.patient is None:
                parser.error("--model needs --patient")
            store, model_uri, sizes = None, args.model, {"model": args.model}
            document = json.loads(args.patient.read_text(encoding="utf-8"))
        body = json.dumps({"patient": document}).encode("utf-8")
        server, base = _start(model_uri, store, folder / "server.log")
        try:
            figures = _measure(base, body, args.warmup, args.sequential, args.clients, args.concurrent)
        finally:
            _stop(server)
    sequential, concurrent = figures["sequential"], figures["concurrent"]
    print(
        f"{sequential['requests']} sequential requests: p50 {sequential['p50_ms']} ms, "
        f"p95 {sequential['p95_ms']} ms, p99 {sequential['p99_ms']} ms (target p95 < 100 ms)"
    )
    print(
        f"{concurrent['clients']} concurrent clients, {concurrent['requests']} requests: "
        f"{concurrent['throughput_rps']} req/s, p50 {concurrent['p50_ms']} ms, p95 {concurrent['p95_ms']} ms"
    )
    report = {
        "benchmark": "serve_latency",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "targets": TARGETS,
        "sizes": {**sizes, "body_bytes": len(body), "workers": 1},
        **figures,
        "checks": {"sequential_p95_below_100_ms": sequential["p95_ms"] < TARGETS["sequential_p95_ms_max"]},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
