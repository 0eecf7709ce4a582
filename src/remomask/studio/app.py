"""The studio's HTTP layer: one page, its static files and a JSON API (docs/studio.md), on Starlette.

Routes (every ``/api`` answer is JSON; every error is ``{"error": "one line"}`` with a 4xx/5xx status):

====================================  ==============================================================
``GET  /``                            the page (``static/index.html``)
``GET  /static/...``                  the page's script, style and the vendored three.js
``GET  /api/health``                  model status, limits, skeleton (chains, side colours)
``POST /api/generate``                text -> motions (joints inline) + file ids
``POST /api/retrieve``                text -> database hits
``POST /api/compose``                 timeline segments -> one continuous motion (``ReMoMaskPipeline.compose``)
``POST /api/edit``                    a studio motion's id + range / parts + text -> the edited motion
``GET  /api/entries/{entry_id}``      the motion of one database entry (joints inline)
``GET  /api/files/{file_id}``         a generated file, by opaque id only
====================================  ==============================================================

``/api/edit`` (``ReMoMaskPipeline.edit``) takes the opaque ``motion`` id of a motion the studio made, never a
path; its range is checked against that motion before the request waits for the worker.

Safety: request bodies are bounded (:data:`MAX_BODY_BYTES`, 413), POSTs must be ``application/json`` (415;
this also forces a CORS pre-flight, which the studio never grants, on cross-site requests), the ``Host``
header must name the bound address (against DNS rebinding), and the page's Content-Security-Policy only
allows scripts from the studio itself. Generation runs in a worker thread behind the studio's lock
(:class:`remomask.studio.service.Studio`), so the server keeps answering while a model works.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import traceback
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..cli._core import error_line
from ..errors import RemomaskError
from .service import RequestError, Studio, check_compose, check_edit, check_generate, check_retrieve
from .store import UnknownFileError

__all__ = ["create_app", "STATIC_DIR", "MAX_BODY_BYTES", "LOCAL_HOSTS"]

STATIC_DIR = Path(__file__).parent / "static"
"""The page, its script and style, and ``vendor/three`` (three.js 0.187.0, MIT)."""

MAX_BODY_BYTES = 16 * 1024
"""Largest request body, bytes."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
"""Host names accepted when the studio is bound to a loopback address."""

_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


async def _json_body(request: Request):
    """The request's JSON body, at most :data:`MAX_BODY_BYTES`.

    Raises:
        RequestError: not JSON (415 for the content type, 400 for the text) or too large (413).
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise RequestError("send the request as JSON (Content-Type: application/json)", 415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(f"the request body is {int(declared)} bytes; the studio takes at most {MAX_BODY_BYTES}",
                           413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(f"the request body is over {MAX_BODY_BYTES} bytes", 413)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"the request body is not valid JSON ({exc.__class__.__name__}: "
                           f"{getattr(exc, 'msg', exc)})", 400) from None


def create_app(studio: Studio | None = None, *, allowed_hosts: list[str] | None = None,
               load_on_startup: bool = True, close_studio: bool = True) -> Starlette:
    """The studio's ASGI application.

    Args:
        studio: the :class:`~remomask.studio.service.Studio` (the bundled model on CPU by default).
        allowed_hosts: accepted ``Host`` header names (default :data:`LOCAL_HOSTS`; ``["*"]`` accepts any).
        load_on_startup: start loading the model when the server starts (else on the first request).
        close_studio: delete the studio's file store on shutdown (False when several apps share one studio).

    Returns:
        A Starlette application.
    """
    import anyio.to_thread

    studio = studio if studio is not None else Studio()
    index_html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    match = _IMPORT_MAP.search(index_html)
    script_hash = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode() if match else ""
    page_headers = {
        "Content-Security-Policy": f"default-src 'self'; script-src 'self' 'sha256-{script_hash}'; "
                                   "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
                                   "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    async def run(call, *args):
        """Run blocking work in a thread; map the studio's errors to one-line JSON answers."""
        try:
            return JSONResponse(await anyio.to_thread.run_sync(call, *args))
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except (RemomaskError, ValueError, OSError) as exc:
            return _error(error_line(exc), 422)

    async def page(request: Request) -> Response:
        return Response(index_html, media_type="text/html; charset=utf-8", headers=page_headers)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse(studio.health(), headers={"Cache-Control": "no-store"})

    def checked_route(check, work, spread: bool = False):
        """A POST handler: ``check`` the JSON body (one-line 4xx on a bad request), then run ``work`` on it."""

        async def handler(request: Request) -> Response:
            try:
                checked = check(await _json_body(request))
            except RequestError as exc:
                return _error(str(exc), exc.status)
            return await (run(work, *checked) if spread else run(work, checked))

        return handler

    generate = checked_route(check_generate, studio.generate)
    compose = checked_route(check_compose, studio.compose)
    edit = checked_route(check_edit, studio.edit)
    retrieve = checked_route(check_retrieve, studio.retrieve, spread=True)

    async def entry(request: Request) -> Response:
        return await run(studio.entry, request.path_params["entry_id"])

    async def file(request: Request) -> Response:
        try:
            item = await anyio.to_thread.run_sync(studio.store.get, request.path_params["file_id"])
        except UnknownFileError as exc:
            return _error(str(exc), 404)
        except RequestError as exc:
            return _error(str(exc), exc.status)
        except (RemomaskError, ValueError, OSError, RuntimeError) as exc:
            return _error(f"the file could not be made: {error_line(exc)}", 500)
        return FileResponse(item.path, media_type=item.media_type, filename=item.name,
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    async def not_found(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code != 404:
            detail = "not found" if exc.status_code == 404 else exc.detail
            return _error(f"{detail}: {request.method} {request.url.path}", exc.status_code)
        return Response("not found\n", status_code=404, media_type="text/plain")

    async def crashed(request: Request, exc: Exception) -> Response:
        print(f"error: {request.method} {request.url.path}: {error_line(exc)}", file=sys.stderr)
        if os.environ.get("REMOMASK_DEBUG"):
            traceback.print_exception(exc)
        return _error(f"internal error: {error_line(exc)}", 500)

    @asynccontextmanager
    async def lifespan(app):
        if load_on_startup:
            studio.start_loading()
        try:
            yield
        finally:
            if close_studio:
                studio.close()

    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOCAL_HOSTS)
    app = Starlette(
        routes=[Route("/", page), Route("/index.html", page), Route("/favicon.ico", favicon),
                Route("/api/health", health), Route("/api/generate", generate, methods=["POST"]),
                Route("/api/retrieve", retrieve, methods=["POST"]),
                Route("/api/compose", compose, methods=["POST"]), Route("/api/edit", edit, methods=["POST"]),
                Route("/api/entries/{entry_id}", entry), Route("/api/files/{file_id}", file),
                Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={HTTPException: not_found, Exception: crashed},
        lifespan=lifespan)
    app.state.studio = studio
    return app
