"""The console's ASGI application: pages, static files (ours and Leaflet's), the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import xstatic.pkg.leaflet as leaflet
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from telephony.config import Config
from telephony.console import api, handset, incident_api, supervisor
from telephony.console.actions import ActionRefused, Actions
from telephony.console.auth import COOKIE, LoginThrottle, Sessions
from telephony.console.live import Hub
from telephony.console.schema import Status
from telephony.console.wallboard import Wallboard
from telephony.console.words import page_words

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def _policy(tile_url: str) -> str:
    """Content-Security-Policy: our own scripts only; images also from the tile server."""
    images = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        images += f" {parts.scheme}://{parts.netloc.replace('a.', '*.', 1)}"
    return (f"default-src 'self'; img-src {images}; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(config: Config, hub: Hub, *, manage_hub: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_hub:
            await run_in_threadpool(hub.start)
        worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(worker.stop)
            if manage_hub:
                await run_in_threadpool(hub.stop)

    app = FastAPI(title="telephony console", version="1", lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    app.state.hub = hub
    app.state.config = config
    app.state.templates = templates
    app.state.wallboard = Wallboard(hub, config)
    app.state.actions = Actions(config, hub.engine, hub.ami, hub.regions, hub.roster)
    app.state.sessions = Sessions(config.console.session_hours * 3600)
    app.state.throttle = LoginThrottle(config.console.login_attempts,
                                       config.console.login_window_s)
    app.state.https = bool(config.console.tls_cert_file)
    policy = _policy(config.console.tile_url)

    @app.middleware("http")
    async def headers(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(ActionRefused)
    async def refused(_request: Request, exc: ActionRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(SQLAlchemyError)
    async def database_down(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        return JSONResponse({"detail": "the database cannot be reached; try again shortly"},
                            status_code=503)

    app.include_router(api.router)
    worker = incident_api.install(app, config, hub)
    app.include_router(supervisor.router)
    app.include_router(handset.router)
    app.mount("/static/leaflet", StaticFiles(directory=leaflet.BASE_DIR), name="leaflet")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz", response_model=Status, include_in_schema=False)
    def healthz() -> Status:
        return hub.status

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request) -> Response:
        return templates.TemplateResponse(request, "login.html", {})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def console_page(request: Request) -> Response:
        if app.state.sessions.get(request.cookies.get(COOKIE)) is None:
            return RedirectResponse("/login", status_code=303)
        settings = {
            "words": page_words(),
            "tile_url": config.console.tile_url,
            "tile_attribution": config.console.tile_attribution,
            "province": hub.regions.province_name,
        }
        return templates.TemplateResponse(request, "console.html",
                                          {"settings": json.dumps(settings)})

    return app
