"""The one table that maps marketexport's error classes to HTTP statuses."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse

from ..errors import (
    ConfigError,
    ExportError,
    NotFoundError,
    TaskStateError,
    TransientStoreError,
)

logger = logging.getLogger(__name__)

# Most specific first; the first class an error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[ExportError], int], ...] = (
    (NotFoundError, 404),
    (TaskStateError, 409),
    (ConfigError, 422),  # RequestError too: the same message the CLI prints
    (TransientStoreError, 503),
)


def status_for(exc: ExportError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def error_body(kind: str, message: str) -> dict[str, object]:
    return {"error": {"type": kind, "message": message}}


async def handle_export_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ExportError)
    status = status_for(exc)
    if status == 500:
        logger.error("request %s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse(error_body("InternalError", "the export service failed"), 500)
    return JSONResponse(error_body(type(exc).__name__, str(exc)), status)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # No stack trace or internal path ever reaches a client; the log has the details.
    logger.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("InternalError", "the export service failed"), 500)
