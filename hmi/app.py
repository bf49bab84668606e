"""``create_app(runtime, settings)``: a fresh FastAPI app per call (no globals, nothing at import time)."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from hmi.context import HmiContext, Metrics
from hmi.middleware import HttpGuard
from hmi.ports import RuntimePort
from hmi.routes_auth import router as auth_router
from hmi.routes_data import router as data_router
from hmi.routes_plant import router as plant_router
from hmi.routes_plating import router as plating_router
from hmi.security import LoginLimiter, TokenCodec
from hmi.settings import HmiSettings
from hmi.views import TagCatalog
from hmi.ws import websocket_endpoint

log = logging.getLogger("hmi")

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plating SCADA API</title>
<link rel="stylesheet" href="/static-apidocs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static-apidocs/swagger-ui-bundle.js"></script>
<script src="/static/apidocs/init.js"></script></body></html>
"""

STATIC_DIR = Path(str(files("hmi") / "static"))


def create_app(runtime: RuntimePort, settings: HmiSettings) -> FastAPI:
    """Build the HMI server for one runtime. Raises ValueError when the settings are unusable."""
    secret = settings.resolved_secret()
    app = FastAPI(
        title="Plating SCADA HMI API",
        version="1",
        description=(
            "REST and WebSocket API of the plating-line SCADA server. Authenticate with `POST /api/auth/token` "
            "(OAuth2 password flow) and send `Authorization: Bearer <token>`; browsers use the session cookie "
            "from `POST /api/auth/login` and must echo the CSRF token in `X-CSRF-Token` on writes."
        ),
        openapi_url="/openapi.json",
        docs_url=None,  # served below from the package's own Swagger UI copy (plants are often offline)
        redoc_url=None,
    )
    metrics = Metrics()
    app.state.ctx = HmiContext(
        runtime=runtime,
        settings=settings,
        codec=TokenCodec(secret, settings.token_lifetime_s),
        limiter=LoginLimiter(settings.login_max_attempts, settings.login_window_s),
        catalog=TagCatalog(runtime.plant),
        metrics=metrics,
    )
    app.include_router(auth_router)
    app.include_router(plant_router)
    app.include_router(data_router)
    app.include_router(plating_router)
    app.add_api_websocket_route("/api/ws", websocket_endpoint)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()))
            errors.append({"loc": loc, "msg": str(err.get("msg", ""))[:300], "type": err.get("type", "")})
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error (logged on the server)"}, status_code=500)

    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def _index() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/static-apidocs", StaticFiles(directory=str(swagger_ui_path)), name="apidocs")

    @app.get("/docs", include_in_schema=False)
    async def _docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers={"Cache-Control": "no-cache"})
    app.add_middleware(HttpGuard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    return app
