"""The scoring service: ``POST /v1/score``, ``POST /v1/report``, health, the model and its reload.

:func:`create_app` builds a FastAPI application around one registered model. Nothing lives at module level:
the model holder (:class:`linewise.serving.holder.ModelHolder`), the token and the limits are on
``app.state``, and the model is loaded once when the application starts (its lifespan). Scoring goes through
:func:`linewise.serving.scoring.score_patient`, the path of ``linewise score --json``, so the service and the
command line give the same document for the same patient and model. ``docs/service.md`` describes the
endpoints, authentication, limits and the error format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from linewise.serving.errors import install_error_handlers
from linewise.serving.fhir_body import AS_OF, FHIR_JSON, FhirBundleBody
from linewise.serving.holder import ModelHolder, polling
from linewise.serving.limits import BodyLimit, RequestLog
from linewise.serving.report import render_report
from linewise.serving.schemas import (
    ErrorResponse,
    Health,
    ModelState,
    ReloadResult,
    ScoreRequest,
    ScoreResponse,
)
from linewise.serving.scoring import ScoringModel, score_patient
from linewise.serving.security import BearerAuth, authorized, token_problem

logger = logging.getLogger("linewise.serve")

SOURCE: Final = "patient"
PATHS: Final = ("/v1/score", "/v1/report", "/v1/health", "/v1/model", "/v1/model/reload", "/openapi.json")
#: The paths that take a patient, as JSON or as a FHIR Bundle.
PATIENT_PATHS: Final = ("/v1/score", "/v1/report")
#: Served without a token.
OPEN_PATHS: Final = ("/v1/health", "/openapi.json")
RELOAD_FAILED: Final = "the model could not be reloaded; the current model stays in use"

_AUTH_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token."},
    500: {"model": ErrorResponse, "description": "Unexpected error: only the request id is given."},
}
_BODY_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    **_AUTH_ERRORS,
    400: {"model": ErrorResponse, "description": "The body cannot be read (not UTF-8, bad Content-Length)."},
    413: {"model": ErrorResponse, "description": "The request body is over the size limit."},
    422: {
        "model": ErrorResponse,
        "description": "Invalid request or patient document, or nothing to score: where and which rule, "
        "never the value.",
    },
}

#: The second body a patient path takes: a FHIR Bundle, with ``as_of`` in the query string.
_FHIR_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "content": {
            FHIR_JSON: {
                "schema": {
                    "type": "object",
                    "description": "An R4 Bundle of one patient profiled by mCODE STU4 "
                    "(linewise export-patient --format fhir; docs/fhir.md).",
                    "required": ["resourceType", "type"],
                    "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]}},
                }
            }
        }
    },
    "parameters": [
        {
            "name": AS_OF,
            "in": "query",
            "required": False,
            "description": "For a FHIR Bundle only: score the history as it stood on this date "
            "(a JSON body gives as_of in the body).",
            "schema": {"type": "string", "format": "date"},
        }
    ],
}

#: Error bodies of the HTML endpoint are JSON all the same.
_JSON_ERROR: Final = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}

Authorized = Annotated[None, Depends(authorized)]


def _document(body: ScoreRequest) -> dict[str, Any]:
    """Return the patient document as the client sent it (fields left out stay out)."""
    return body.patient.model_dump(exclude_unset=True)


def _holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


def _routes() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post(
        "/score",
        response_model=ScoreResponse,
        responses=_BODY_ERRORS,
        tags=["scoring"],
        openapi_extra=_FHIR_BODY,
    )
    def score(body: ScoreRequest, request: Request, _: Authorized) -> JSONResponse:
        """Score every candidate next step of the patient's latest decision (``linewise score --json``)."""
        loaded = _holder(request).current  # this request scores with this model, whatever reloads
        return JSONResponse(score_patient(loaded.model, _document(body), body.as_of_date, source=SOURCE))

    @router.post(
        "/report",
        response_class=HTMLResponse,
        responses={
            **{
                status: {"description": answer["description"], "content": _JSON_ERROR}
                for status, answer in _BODY_ERRORS.items()
            },
            200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "One HTML page."},
        },
        tags=["scoring"],
        openapi_extra=_FHIR_BODY,
    )
    def report(body: ScoreRequest, request: Request, _: Authorized) -> HTMLResponse:
        """Render the tumour-board report of the patient's latest decision as one HTML page."""
        loaded = _holder(request).current
        return HTMLResponse(render_report(loaded.model, _document(body), body.as_of_date, source=SOURCE))

    @router.get("/health", response_model=Health, tags=["service"])
    def health(request: Request) -> Health:
        """Say whether the service is up and has a model (no token needed)."""
        return Health(status="ok", model_loaded=_holder(request).is_loaded)

    @router.get("/model", response_model=ModelState, responses=_AUTH_ERRORS, tags=["service"])
    def model(request: Request, _: Authorized) -> ModelState:
        """Show the model in use, its provenance, when it was loaded and when the alias was last checked."""
        holder = _holder(request)
        loaded = holder.current
        return ModelState.model_validate(
            {
                "model_uri": loaded.model.uri,
                "resolved_uri": loaded.model.resolved_uri,
                "version": loaded.model.version,
                "provenance": loaded.model.provenance,
                "loaded_at": loaded.loaded_at,
                "last_reload_check": holder.last_check,
            }
        )

    @router.post(
        "/model/reload",
        response_model=ReloadResult,
        responses={**_AUTH_ERRORS, 503: {"model": ErrorResponse, "description": RELOAD_FAILED}},
        tags=["service"],
    )
    def reload(request: Request, _: Authorized) -> ReloadResult:
        """Re-resolve the model's alias and load the version it points at if it moved."""
        try:
            result = _holder(request).reload()
        except Exception as err:  # the registry's trouble is not the client's: 503, old model stays
            logger.warning("model reload failed (%s); the current model stays in use", type(err).__name__)
            raise HTTPException(status_code=503, detail=RELOAD_FAILED) from None
        return ReloadResult(
            changed=result.changed,
            previous_version=result.previous_version,
            version=result.version,
            checked_at=result.checked_at,
        )

    return router


def create_app(
    model_uri: str,
    *,
    version: str,
    token: str | None,
    local_only: bool = False,
    max_body_bytes: int = 1_000_000,
    reload_interval_s: float = 60.0,
    model: ScoringModel | None = None,
) -> FastAPI:
    """Build the scoring service around the model at ``model_uri``.

    Parameters
    ----------
    model_uri : str
        The model to serve, e.g. ``models:/linewise@champion``; an alias is re-resolved on reload.
    version : str
        The service's version, shown in its OpenAPI description (the command line passes linewise's).
    token : str or None
        The bearer token every endpoint but health requires.
    local_only : bool
        Allow ``token=None``: no authentication, for a service bound to the loopback interface only.
    max_body_bytes : int
        Request bodies over this many bytes get 413.
    reload_interval_s : float
        Check the alias every so many seconds in the background; 0 turns the check off.
    model : ScoringModel, optional
        The model at ``model_uri``, already loaded (by the command line, before it binds); default:
        load it when the application starts.

    Returns
    -------
    FastAPI

    Raises
    ------
    ValueError
        If there is no token and the service is not for local use only, the token is too short or
        padded with white space (:func:`linewise.serving.security.token_problem`), or a limit is not
        positive.
    """
    if token is None and not local_only:
        raise ValueError("a bearer token is required unless the service is for local use only")
    if token is not None and (problem := token_problem(token)) is not None:
        raise ValueError(problem)
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, found {max_body_bytes}")
    if reload_interval_s < 0:
        raise ValueError(f"reload_interval_s must be 0 (off) or positive, found {reload_interval_s}")
    holder = ModelHolder(model_uri)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if model is not None:
            holder.set(model)
        elif not holder.is_loaded:
            await asyncio.to_thread(holder.load)
        async with polling(holder, reload_interval_s):
            yield

    app = FastAPI(
        title="linewise scoring service",
        version=version,
        description="Ranked candidate next steps, with intervals and explanations, for a patient with "
        "HR+/HER2- advanced breast cancer who progressed. Every endpoint but /v1/health needs "
        "the bearer token.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # a redirect would be built from the client's Host header
    )
    app.state.holder = holder
    app.state.token = token
    app.state.local_only = local_only
    install_error_handlers(app)
    app.include_router(_routes())
    app.add_middleware(FhirBundleBody, paths=PATIENT_PATHS)  # inside the limit: reads a bounded body
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(BearerAuth, token=token, open_paths=OPEN_PATHS)  # before the body is read
    app.add_middleware(RequestLog, paths=PATHS)  # added last: outermost, so it sees every answer
    return app
