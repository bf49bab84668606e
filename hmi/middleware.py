"""One pure-ASGI guard around the app: body size limit (413), security headers, request metrics."""

from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hmi.context import Metrics

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (/docs) is served from the package (swagger-ui-bundle), no CDN and no inline script; it
# sets inline styles on its own elements, so only style-src is relaxed there.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class HttpGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path: str = scope.get("path", "")
        status = {"code": 500}
        csp = DOCS_CSP if path in DOCS_PATHS else CSP

        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send, csp, status)
                    self._observe(scope, status["code"], t0)
                    return

        seen = 0
        limit = self.max_body

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise HTTPException(status_code=413, detail=f"request body larger than {limit} bytes")
            return msg

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                headers = list(msg.get("headers", []))
                headers += _security_headers(csp)
                msg = dict(msg)
                msg["headers"] = headers
            await send(msg)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        finally:
            self._observe(scope, status["code"], t0)

    async def _reject(self, send: Send, csp: str, status: dict[str, int]) -> None:
        body = b'{"detail":"request body too large"}'
        status["code"] = 413
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"), *_security_headers(csp)],
        })
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope: Scope, code: int, t0: float) -> None:
        route = scope.get("route")
        label = getattr(route, "path", None) or ("static" if scope.get("path", "").startswith("/static") else "unmatched")
        self.metrics.requests.labels(scope.get("method", "?"), label, str(code)).inc()
        self.metrics.latency.labels(label).observe(time.perf_counter() - t0)


def _security_headers(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
