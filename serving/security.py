"""Bearer-token authentication of the service's endpoints.

The token is compared with :func:`hmac.compare_digest` (in constant time); a missing or wrong token
gets 401 with ``WWW-Authenticate: Bearer``. A service started for local use only without a token
lets every request through. :class:`BearerAuth` checks the token before the application reads or
parses the body, so an unauthenticated request learns nothing from the body's validation; the
endpoint dependency :func:`authorized` declares the scheme in the OpenAPI document and checks again.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

from linewise.serving.limits import request_id, send_json

#: Declares the bearer scheme in the OpenAPI document; the check itself is :func:`require_token`.
bearer = HTTPBearer(auto_error=False, description="The token in LINEWISE_API_TOKEN.")

UNAUTHORIZED = "a valid bearer token is required"
#: Shortest bearer token accepted: 32 characters (for example ``python -c "import secrets;
#: print(secrets.token_urlsafe(32))"``, 43 characters), so that a token cannot be guessed.
MIN_TOKEN_LENGTH = 32


def token_problem(token: str) -> str | None:
    """Return why ``token`` cannot serve as the bearer token, or None when it can.

    A token has no leading or trailing white space (an HTTP header would lose it), only printable
    ASCII characters (a header is read as Latin-1 bytes) and at least :data:`MIN_TOKEN_LENGTH`
    characters. The message never repeats the token.
    """
    if token != token.strip():
        return "the bearer token must not start or end with white space"
    if not all(" " < character <= "~" for character in token):
        return "the bearer token must be printable ASCII without spaces (as a header carries it)"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"the bearer token must have at least {MIN_TOKEN_LENGTH} characters (found {len(token)})"
    return None


def token_matches(expected: str, given: str) -> bool:
    """Compare two tokens in constant time (as bytes: any text compares)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Raise 401 unless the request carries the app's token (or the app has none: local use only).

    Parameters
    ----------
    request : Request
        Its app's ``state.token`` is the expected token, None when none is required.
    credentials : HTTPAuthorizationCredentials or None
        The ``Authorization: Bearer`` header, None when absent or of another scheme.

    Raises
    ------
    HTTPException
        401 with ``WWW-Authenticate: Bearer``.
    """
    expected: str | None = request.app.state.token
    if expected is None:
        return
    if credentials is None or not token_matches(expected, credentials.credentials):
        raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """FastAPI dependency of every endpoint but health: :func:`require_token`."""
    require_token(request, credentials)


class BearerAuth:
    """Answer 401 to a request without the token before the application reads its body.

    Parameters
    ----------
    app : ASGI app
    token : str or None
        The expected token; None lets every request through (local use only).
    open_paths : collection of str
        Paths served without a token (health, the OpenAPI document).
    """

    def __init__(self, app: ASGIApp, token: str | None, open_paths: Collection[str]) -> None:
        self.app = app
        self.token = token
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or self.token is None or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        scheme, given = get_authorization_scheme_param(header)
        if scheme.lower() == "bearer" and token_matches(self.token, given):
            await self.app(scope, receive, send)
            return
        body = {"detail": UNAUTHORIZED, "request_id": request_id(scope), "errors": []}
        await send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
