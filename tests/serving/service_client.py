"""What the tests of the scoring service share: the token, the test client, and a patient to score."""

from __future__ import annotations

import copy
import datetime as dt
import json
import warnings
from typing import Any

from linewise.serving.scoring import score_patient

from .conftest import NAME, Served

__all__ = ["AUTH", "CHAMPION", "TOKEN", "VERSION", "TestClient", "expected_score", "open_patient"]

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 in its test client; httpx 0.28 (the pinned dev dependency) works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

TOKEN = "service-test-token-0123456789abcdefghijk"
VERSION = "0.0.test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHAMPION = f"models:/{NAME}@champion"


def open_patient(served: Served) -> dict[str, Any]:
    """A copy of the document of the first patient whose latest decision is open."""
    return copy.deepcopy(next(iter(served.open_patients.values())))


def expected_score(served: Served, document: dict[str, Any], as_of: dt.date | None = None) -> Any:
    """The document ``score_patient`` gives, as JSON: what the service must answer."""
    return json.loads(json.dumps(score_patient(served.model, document, as_of), allow_nan=False))
