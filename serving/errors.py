"""How the service answers errors: one layout, field-level 422s, and never a patient's data.

Every error body is ``{"detail", "request_id", "errors"}`` (:class:`linewise.serving.schemas.ErrorResponse`).
A 422 lists each problem as ``{"loc", "rule", "message"}``: where it is in the request body, the rule
it broke and what the rule requires. No value the client sent is echoed: pydantic's ``input`` is
dropped, a message that contains the value is replaced, a field name the schema does not declare is
shown as :data:`UNKNOWN_FIELD`, and a contract violation is described by its rule
(:data:`linewise.features.errors.RULES`), not by the loader's message, which may quote values; the loader's
file label (which names the patient key) is not used either.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from linewise.features.errors import RULES, LockValidationError, Violation
from linewise.serving.fhir_body import INVALID_BUNDLE, bundle_of, bundle_problem, document_loc_in_bundle
from linewise.serving.limits import request_id
from linewise.serving.schemas import KNOWN_NAMES, error_body
from linewise.serving.scoring import ScoringError

UNKNOWN_FIELD: Final = "<unknown field>"
INVALID_REQUEST: Final = "the request does not match the schema"
INVALID_PATIENT: Final = "the patient document breaks the patient-file contract"
NOT_SCORABLE: Final = (
    "the patient cannot be scored: no progression recorded while alive up to as_of, "
    "or as_of is after the document's as_of"
)
_GENERIC_MESSAGE: Final = "invalid value"
#: The patient document's tables under their keys in the document.
_TABLE_KEYS: Final = {"patients": "patient"}
#: Manifest fields of the one-patient lock, as the document names them.
_MANIFEST_FIELDS: Final = {"lock_date": "as_of"}


def _safe_name(name: Any) -> str | int:
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    return name if isinstance(name, str) and name in KNOWN_NAMES else UNKNOWN_FIELD


def _contains(message: str, value: Any) -> bool:
    if value is None or isinstance(value, bool | dict | list):
        return False
    text = str(value)
    return bool(text) and text in message


def validation_problems(errors: list[Any]) -> list[dict[str, Any]]:
    """Turn pydantic's errors into ``{"loc", "rule", "message"}`` without the input.

    Parameters
    ----------
    errors : list of dict
        :meth:`RequestValidationError.errors`.

    Returns
    -------
    list of dict
    """
    out = []
    for error in errors:
        message = str(error.get("msg", _GENERIC_MESSAGE))
        if _contains(message, error.get("input")):
            message = _GENERIC_MESSAGE
        out.append(
            {
                "loc": [_safe_name(part) for part in error.get("loc", ())],
                "rule": str(error.get("type", "invalid")),
                "message": message,
            }
        )
    return out


def _violation_loc(violation: Violation) -> list[str | int]:
    loc: list[str | int] = ["body", "patient"]
    if violation.table is not None:
        loc.append(_TABLE_KEYS.get(violation.table, violation.table))
        if violation.table not in _TABLE_KEYS and violation.row is not None:
            loc.append(violation.row - 1)  # the loader counts records from 1, JSON from 0
    if violation.column is not None:
        loc.append(_safe_name(_MANIFEST_FIELDS.get(violation.column, violation.column)))
    return [part if isinstance(part, int) else _safe_name(part) for part in loc]


def violation_problems(violations: tuple[Violation, ...]) -> list[dict[str, Any]]:
    """Describe contract violations by location and rule, never by value or the loader's message."""
    return [
        {
            "loc": _violation_loc(violation),
            "rule": violation.rule,
            "message": RULES.get(violation.rule, _GENERIC_MESSAGE),
        }
        for violation in violations
    ]


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = validation_problems(list(exc.errors()))
    bundle = bundle_of(request.scope)
    if bundle is not None:  # the document was read from a FHIR Bundle: say where in the Bundle
        for problem in problems:
            problem["loc"] = document_loc_in_bundle(bundle, problem["loc"])
        return JSONResponse(error_body(INVALID_BUNDLE, request_id(request.scope), problems), status_code=422)
    return JSONResponse(error_body(INVALID_REQUEST, request_id(request.scope), problems), status_code=422)


async def _patient_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LockValidationError)
    bundle = bundle_of(request.scope)
    if bundle is not None:
        problems = [bundle_problem(problem) for problem in bundle.problems_of(exc).problems]
        return JSONResponse(error_body(INVALID_BUNDLE, request_id(request.scope), problems), status_code=422)
    problems = violation_problems(exc.violations)
    return JSONResponse(error_body(INVALID_PATIENT, request_id(request.scope), problems), status_code=422)


async def _not_scorable(request: Request, exc: Exception) -> JSONResponse:
    problem = {"loc": ["body"], "rule": "not-scorable", "message": NOT_SCORABLE}
    return JSONResponse(error_body(NOT_SCORABLE, request_id(request.scope), [problem]), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(str(exc.detail), request_id(request.scope)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the service's error answers on ``app``."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(LockValidationError, _patient_invalid)
    app.add_exception_handler(ScoringError, _not_scorable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
