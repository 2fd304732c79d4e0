"""``Content-Type: application/fhir+json`` on ``/v1/score`` and ``/v1/report``: a FHIR Bundle as the body.

:class:`FhirBundleBody` is pure ASGI middleware between the body limit and the application. For a
POST of a Bundle to a scoring path it reads the Bundle (:func:`linewise.features.fhir.read_bundle`,
fhir.resources' R4B models), and hands the application the request it would get for the patient's
JSON document: ``{"patient": document, "as_of": ...}`` as ``application/json``, ``as_of`` taken from
the query string. From there scoring is the path of every request, so a Bundle and its document score
the same. A Bundle that cannot be read is answered here with 422, each problem located as
``["body", "entry", i, "resource", element]``. The Bundle is left on the request's state, so that the
error handlers (:mod:`linewise.serving.errors`) locate a problem of its document in the Bundle too.
No value of the Bundle is echoed.
"""

from __future__ import annotations

import email.message
import json
import urllib.parse
from collections.abc import Collection
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from linewise.features.fhir import BUNDLE_RULES, BundlePatient, BundleProblem, FhirBundleError, read_bundle
from linewise.serving.limits import request_id, send_json
from linewise.serving.schemas import error_body

FHIR_JSON: Final = "application/fhir+json"
INVALID_BUNDLE: Final = "the FHIR Bundle cannot be read as a patient"
#: Where the Bundle is kept on the request's state (``request.state.fhir_bundle``).
STATE_KEY: Final = "fhir_bundle"
#: The query parameter that stands for the JSON body's ``as_of``.
AS_OF: Final = "as_of"
AS_OF_IN_BODY: Final = "the as_of query parameter is for a FHIR Bundle; a JSON body gives its own as_of"


def is_fhir_request(scope: Scope) -> bool:
    """Whether a request's body is declared as FHIR JSON (``application/fhir+json``, any parameters)."""
    declared = dict(scope.get("headers", [])).get(b"content-type")
    if declared is None:
        return False
    header = email.message.Message()
    header["content-type"] = declared.decode("latin-1")
    return header.get_content_type() == FHIR_JSON


def bundle_loc(entry: int | None, element: str | None) -> list[str | int]:
    """Return the place of an entry's element in the request body, as an error's ``loc``."""
    loc: list[str | int] = ["body"]
    if entry is not None:
        loc += ["entry", entry, "resource"]
    if element is not None:
        loc.append(element)
    return loc


def bundle_problem(problem: BundleProblem) -> dict[str, Any]:
    """Return a problem of a Bundle as an error's ``{"loc", "rule", "message"}``."""
    message = problem.message if problem.resource is None else f"{problem.resource}: {problem.message}"
    return {"loc": bundle_loc(problem.entry, problem.element), "rule": problem.rule, "message": message}


def bundle_of(scope: Scope) -> BundlePatient | None:
    """Return the Bundle a request's document was read from, or None for a JSON document."""
    found = scope.get("state", {}).get(STATE_KEY)
    return found if isinstance(found, BundlePatient) else None


def document_loc_in_bundle(bundle: BundlePatient, loc: list[Any]) -> list[str | int]:
    """Return where in the Bundle a place of the translated request (an error's ``loc``) came from.

    Parameters
    ----------
    bundle : BundlePatient
        The Bundle the request was read from.
    loc : list
        A place in the translated body: ``["body", "patient", table, i, column]``,
        ``["body", "patient", "patient", column]``, ``["body", "patient", field]`` or
        ``["body", "as_of"]``.

    Returns
    -------
    list
        ``["body", "entry", i, "resource", element]``, ``["body", "timestamp"]`` for the document's
        date, ``["query", "as_of"]`` for the query parameter, or ``["body"]`` for a place no entry gave.
    """
    if loc[:2] == ["body", AS_OF]:
        return ["query", AS_OF]
    rest = loc[2:] if loc[:2] == ["body", "patient"] else []
    if rest == [AS_OF]:
        return ["body", "timestamp"]
    if len(rest) == 1 and isinstance(rest[0], str):
        entry, _, element = bundle.origin(None, None, rest[0])
    elif len(rest) >= 2 and rest[0] == "patient" and isinstance(rest[1], str):
        entry, _, element = bundle.origin("patients", 1, rest[1])
    elif len(rest) >= 2 and isinstance(rest[0], str) and isinstance(rest[1], int):
        column = rest[2] if len(rest) > 2 and isinstance(rest[2], str) else None
        entry, _, element = bundle.origin(rest[0], rest[1] + 1, column)
    else:
        entry, element = None, None
    return bundle_loc(entry, element)


def _as_of(scope: Scope) -> str | None:
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get(AS_OF)
    return None if not values else values[0] if len(values) == 1 else ""


async def _whole_body(receive: Receive) -> bytes | None:
    """Return the request body, or None when the client went away before it ended."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class FhirBundleBody:
    """Turn a FHIR Bundle body of a scoring path into the request of its patient document.

    Parameters
    ----------
    app : ASGI app
    paths : collection of str
        The paths that take a patient (``/v1/score``, ``/v1/report``).
    """

    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def _refuse(self, scope: Scope, send: Send, problems: list[BundleProblem]) -> None:
        errors = [bundle_problem(problem) for problem in problems]
        await send_json(send, 422, error_body(INVALID_BUNDLE, request_id(scope), errors), [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        if not is_fhir_request(scope):
            if _as_of(scope) is None:
                await self.app(scope, receive, send)
                return
            error = {"loc": ["query", AS_OF], "rule": "as-of-in-body", "message": AS_OF_IN_BODY}
            await send_json(send, 422, error_body(AS_OF_IN_BODY, request_id(scope), [error]), [])
            return
        body = await _whole_body(receive)
        if body is None:  # nobody to answer
            return
        try:
            content = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            problem = BundleProblem(None, None, None, "fhir-json", BUNDLE_RULES["fhir-json"])
            await self._refuse(scope, send, [problem])
            return
        try:
            patient = read_bundle(content)
        except FhirBundleError as err:
            await self._refuse(scope, send, list(err.problems))
            return
        request: dict[str, Any] = {"patient": patient.document}
        as_of = _as_of(scope)
        if as_of is not None:
            request[AS_OF] = as_of
        translated = json.dumps(request).encode("utf-8")
        headers = [
            (name, value)
            for name, value in scope.get("headers", [])
            if name not in (b"content-type", b"content-length", b"transfer-encoding")
        ]
        length = str(len(translated)).encode()
        headers += [(b"content-type", b"application/json"), (b"content-length", length)]
        scope.setdefault("state", {})[STATE_KEY] = patient  # shared with the error handlers
        sent = False

        async def receive_translated() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: the client's disconnect
            sent = True
            return {"type": "http.request", "body": translated, "more_body": False}

        await self.app({**scope, "headers": headers}, receive_translated, send)
