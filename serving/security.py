"""Bearer-token authentication of the service's endpoints.

The token is compared with :func:`hmac.compare_digest` (in constant time); a missing or wrong token
gets 401 with ``WWW-Authenticate: Bearer``. A service started for local use only without a token
lets every request through.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

#: Declares the bearer scheme in the OpenAPI document; the check itself is :func:`require_token`.
bearer = HTTPBearer(auto_error=False, description="The token in LINEWISE_API_TOKEN.")

UNAUTHORIZED = "a valid bearer token is required"


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
