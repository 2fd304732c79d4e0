"""Pure ASGI middleware of the service: the request log (and last-resort 500) and the body size limit.

:class:`RequestLog` gives every request an id (``X-Request-ID`` on the response), logs one line when
it ends (id, method, path, status, duration; never a body, a query or a header), and turns any
exception that reaches it into a 500 that names only the request id. :class:`BodyLimit` refuses
bodies over the limit with 413: at once when ``Content-Length`` says so, else while counting the
bytes of a chunked body, before the application sees any of it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("linewise.serve")

#: Logged instead of a path the service does not serve (a path could carry anything).
OTHER_PATH: Final = "<other>"


def request_id(scope: Scope) -> str:
    """Return the id :class:`RequestLog` gave the request ("-" outside it)."""
    return str(scope.get("state", {}).get("request_id", "-"))


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a whole JSON response."""
    content = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


class RequestLog:
    """Give each request an id, log it in one line, and answer 500 for an exception that escapes.

    Parameters
    ----------
    app : ASGI app
    paths : collection of str
        The paths the service serves: others are logged as :data:`OTHER_PATH`.
    """

    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as err:  # the last resort: no detail leaves the service or enters the log
            status = 500
            logger.error("request %s failed with an unexpected %s", rid, type(err).__name__)
            if not started:
                body = {"detail": "internal error", "request_id": rid, "errors": []}
                await send_json(send, 500, body, [(b"x-request-id", rid.encode())])
        finally:
            path = scope.get("path", "")
            logger.info(
                "request %s %s %s %d %.1f ms",
                rid,
                scope.get("method", "-"),
                path if path in self.paths else OTHER_PATH,
                status,
                1000 * (time.perf_counter() - start),
            )


class BodyLimit:
    """Refuse request bodies over ``max_body_bytes`` with 413.

    The body is read here, up to the limit, and handed on to the application whole: a body that
    passes the limit in chunks is refused before the application starts on it.

    Parameters
    ----------
    app : ASGI app
    max_body_bytes : int
        The largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = {
            "detail": f"the request body is over the limit of {self.max_body_bytes} bytes",
            "request_id": request_id(scope),
            "errors": [],
        }
        await send_json(send, 413, body, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body_bytes
            except ValueError:
                await send_json(
                    send,
                    400,
                    {"detail": "bad Content-Length", "request_id": request_id(scope), "errors": []},
                    [],
                )
                return
            if too_large:
                await self._refuse(scope, send)
                return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
