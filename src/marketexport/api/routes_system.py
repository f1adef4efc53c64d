"""Health, readiness and metrics: no token needed, no task details exposed."""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import ExportError
from .app import ServiceState, service
from .metrics import render_metrics

router = APIRouter(tags=["system"])
ServiceDep = Annotated[ServiceState, Depends(service)]


_PAGE = files("marketexport.api").joinpath("static/index.html")


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/ui")


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
def task_page() -> HTMLResponse:
    """The task page: live progress, state, errors, downloads, cancel, schedules."""
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
def readyz(state: ServiceDep) -> JSONResponse:
    """The service has started and its task store answers."""
    try:
        state.tasks.count()
    except ExportError:
        return JSONResponse({"status": "unavailable", "reason": "task store"}, 503)
    if not state.ready:
        return JSONResponse({"status": "starting"}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=Response)
def metrics(state: ServiceDep) -> Response:
    """Prometheus metrics (tasks by state, rows, bytes, durations, failures, retries)."""
    return Response(render_metrics(state.tasks), media_type=CONTENT_TYPE_LATEST)
