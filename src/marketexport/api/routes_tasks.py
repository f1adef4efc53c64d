"""/v1/tasks: create, list, get, cancel, retry, download, manifest; /v1/stats."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from ..errors import NotFoundError
from ..export.encryption import KeyRing, check_key_names
from ..tasks.executor import dispatch
from ..tasks.model import Task, TaskState, check_state
from ..tasks.stats import task_stats
from .app import ServiceState, current_user, service
from .auth import User
from .body import ExportBody
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["tasks"], responses=ERROR_RESPONSES)
UserDep = Annotated[User, Depends(current_user)]
ServiceDep = Annotated[ServiceState, Depends(service)]


def _own_task(state: ServiceState, user: User, task_id: str) -> Task:
    """The task if the user may see it; another user's task is 'not found', never 403."""
    try:
        task = state.tasks.get(task_id)
    except NotFoundError:
        task = None
    if task is None or (task.owner != user.name and not user.is_admin):
        raise NotFoundError(f"no task with id {task_id!r}", task_id=task_id)
    return task


def _export_file(state: ServiceState, task: Task) -> Path:
    """The finished export file of a task, only ever inside the export root."""
    if task.state != TaskState.COMPLETED or not task.result:
        raise NotFoundError(
            f"task {task.id} has no file to download (state {task.state.value})",
            task_id=task.id,
        )
    root = Path(state.settings.export_path).resolve()
    path = Path(task.result["path"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError(f"the file of task {task.id} is no longer there", task_id=task.id)
    return path


@router.post("/tasks", status_code=201)
def create_task(body: ExportBody, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """Queue an export; the request is validated exactly as the CLI validates it."""
    request = body.to_request()
    keys = KeyRing.from_settings(state.settings)
    check_key_names(request.encryption, request.sign_key, keys, list_names=False)
    task = state.tasks.submit(request, owner=user.name, priority=body.priority)
    return dispatch(state.settings, state.tasks, task).to_dict()


@router.get("/tasks")
def list_tasks(
    user: UserDep,
    state: ServiceDep,
    task_state: Annotated[str | None, Query(alias="state", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The caller's tasks, newest first (an admin sees everyone's)."""
    chosen = check_state(task_state) if task_state else None
    owner = None if user.is_admin else user.name
    tasks = state.tasks.list(state=chosen, owner=owner, limit=limit, offset=offset)
    return [task.to_dict() for task in tasks]


@router.get("/tasks/{task_id}")
def get_task(task_id: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """One task: state, progress, result or error."""
    return _own_task(state, user, task_id).to_dict()


@router.post("/tasks/{task_id}/cancel")
def cancel_task(task_id: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """Cancel a pending task now, or a running one at its next batch."""
    _own_task(state, user, task_id)
    return state.tasks.request_cancel(task_id).to_dict()


@router.post("/tasks/{task_id}/retry")
def retry_task(task_id: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """Queue a failed or cancelled task again."""
    _own_task(state, user, task_id)
    return dispatch(state.settings, state.tasks, state.tasks.retry(task_id)).to_dict()


@router.get("/tasks/{task_id}/manifest")
def get_manifest(task_id: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """The manifest of a completed task's export."""
    task = _own_task(state, user, task_id)
    path = _export_file(state, task)
    manifest: dict[str, Any] = json.loads(
        path.with_name(path.name + ".manifest.json").read_text(encoding="utf-8")
    )
    return manifest


@router.get(
    "/tasks/{task_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Range"}},
)
def download(task_id: str, request: Request, user: UserDep, state: ServiceDep) -> FileResponse:
    """The export file, streamed; supports Range requests for resuming.

    ``Digest`` and ``X-Checksum-SHA256`` carry the manifest's SHA-256 of the whole file.
    """
    task = _own_task(state, user, task_id)
    path = _export_file(state, task)
    digest = str(task.result["file_sha256"]) if task.result else ""
    headers = {
        "X-Checksum-SHA256": digest,
        "Digest": "sha-256=" + base64.b64encode(bytes.fromhex(digest)).decode(),
        "Cache-Control": "private, no-store",
    }
    return FileResponse(
        path, media_type="application/octet-stream", filename=path.name, headers=headers
    )


@router.get("/stats")
def stats(user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """Task statistics: everyone's for an admin, the caller's own otherwise."""
    if user.is_admin:
        return task_stats(state.tasks).to_dict()
    rows = state.tasks.read(
        "SELECT state, count(*), coalesce(sum(rows_done), 0), coalesce(sum(bytes_written), 0) "
        "FROM tasks WHERE owner = ? GROUP BY state",
        (user.name,),
    )
    by_state = {s.value: 0 for s in TaskState}
    for row in rows:
        by_state[row[0]] = int(row[1])
    completed = [row for row in rows if row[0] == TaskState.COMPLETED.value]
    return {
        "by_state": by_state,
        "queue_length": by_state[TaskState.PENDING.value],
        "running": by_state[TaskState.RUNNING.value],
        "rows_exported": int(completed[0][2]) if completed else 0,
        "bytes_exported": int(completed[0][3]) if completed else 0,
    }
