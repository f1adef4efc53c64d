"""The one table that maps marketexport's error classes to HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    ConfigError,
    ConflictError,
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
    (ConflictError, 409),  # before ConfigError, of which it is one
    (ConfigError, 422),  # RequestError too: the same message the CLI prints
    (TransientStoreError, 503),
)


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: the error class and the message the CLI would print."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid JSON"},
    401: {"model": ErrorBody, "description": "No valid bearer token"},
    404: {"model": ErrorBody, "description": "No such task (or not the caller's)"},
    409: {
        "model": ErrorBody,
        "description": "The task's state does not allow this, or the name is taken",
    },
    422: {"model": ErrorBody, "description": "Invalid request (same message as the CLI)"},
    503: {"model": ErrorBody, "description": "The store is busy; try again"},
}


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


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Framework errors (unparsable body, unknown path, wrong method) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    kind = "RequestError" if exc.status_code < 500 else "InternalError"
    message = str(exc.detail) if exc.status_code < 500 else "the export service failed"
    return JSONResponse(error_body(kind, message), exc.status_code, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # No stack trace or internal path ever reaches a client; the log has the details.
    logger.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("InternalError", "the export service failed"), 500)
