"""The HTTP service: the API under /v1, health, metrics and the task page.

``create_app`` builds the FastAPI application around one task store. ``serve`` (in
cli/serve_cmd.py) also starts the embedded runner and the scheduler beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import ExportError
from ..tasks.store import TaskStore, task_store_path
from .auth import User, UserStore
from .errors import error_body, handle_export_error, handle_http_error, handle_unexpected


@dataclass
class ServiceState:
    """What the routes share: settings, the stores, and hooks run at start and stop."""

    settings: Settings
    tasks: TaskStore
    users: UserStore
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    ready: bool = False


_bearer = HTTPBearer(auto_error=False, description="API token from `marketexport tokens create`")


class Unauthorized(Exception):
    """No token, or a token that is unknown or revoked."""


def service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user behind the bearer token; 401 for every request without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    user = service(request).users.authenticate(credentials.credentials)
    if user is None:
        raise Unauthorized()
    return user


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        error_body("Unauthorized", "a valid bearer token is required"),
        401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _invalid_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return JSONResponse(error_body("RequestError", "; ".join(problems)), 422)


def create_app(
    settings: Settings,
    *,
    tasks: TaskStore | None = None,
    on_start: list[Callable[[], None]] | None = None,
    on_stop: list[Callable[[], None]] | None = None,
) -> FastAPI:
    """The FastAPI application over the settings' task store."""
    task_store = tasks or TaskStore.open(settings)
    state = ServiceState(
        settings=settings,
        tasks=task_store,
        users=UserStore(task_store_path(settings)),
        on_start=list(on_start or ()),
        on_stop=list(on_stop or ()),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in state.on_start:
            hook()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            for hook in state.on_stop:
                hook()

    app = FastAPI(
        title="marketexport",
        version=__version__,
        description="Export market and trading data as files you can trust.",
        lifespan=lifespan,
    )
    app.state.service = state
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(ExportError, handle_export_error)
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)

    from .routes_schedules import router as schedules_router
    from .routes_system import router as system_router
    from .routes_tasks import router as tasks_router

    app.include_router(system_router)
    app.include_router(tasks_router, prefix="/v1")
    app.include_router(schedules_router, prefix="/v1")
    return app
