"""/v1/schedules: create, list, get with next runs, pause, resume, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..errors import NotFoundError
from ..export.encryption import KeyRing, check_key_names
from ..tasks.schedules import Schedule, ScheduleStore
from .app import ServiceState, current_user, service
from .auth import User
from .body import ExportBody
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["schedules"], responses=ERROR_RESPONSES)
UserDep = Annotated[User, Depends(current_user)]
ServiceDep = Annotated[ServiceState, Depends(service)]


class ScheduleBody(BaseModel):
    """A schedule: cron, zone, misfire policy, relative window and the export template."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    cron: str = Field(max_length=200)
    tz: str = Field(default="UTC", max_length=64)
    misfire: str = Field(default="skip", max_length=16)
    window: str | None = Field(default=None, max_length=64)
    export: ExportBody


def _schedules(state: ServiceState) -> ScheduleStore:
    return ScheduleStore(state.tasks)


def _own(state: ServiceState, user: User, name: str) -> Schedule:
    """The caller's schedule by name (an admin may give owner/name)."""
    owner, _, bare = name.rpartition("/")
    if owner and not user.is_admin:
        raise NotFoundError(f"no schedule named {name!r}", schedule=name)
    return _schedules(state).get(bare, owner or user.name)


def _with_next_runs(schedule: Schedule, count: int = 5) -> dict[str, Any]:
    data = schedule.to_dict()
    upcoming = (
        schedule.cron_schedule.next_after(datetime.now(UTC), count) if schedule.enabled else []
    )
    data["next_runs"] = [moment.astimezone(UTC).isoformat() for moment in upcoming]
    return data


@router.post("/schedules", status_code=201)
def create_schedule(body: ScheduleBody, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    """Store a schedule; each due instant will create exactly one export task."""
    request = body.export.to_request()
    keys = KeyRing.from_settings(state.settings)
    check_key_names(request.encryption, request.sign_key, keys, list_names=False)
    schedule = _schedules(state).add(
        body.name,
        cron=body.cron,
        request=request,
        tz=body.tz,
        window=body.window,
        misfire=body.misfire,
        owner=user.name,
    )
    return _with_next_runs(schedule)


@router.get("/schedules")
def list_schedules(user: UserDep, state: ServiceDep) -> list[dict[str, Any]]:
    """The caller's schedules with their next runs (an admin sees everyone's)."""
    owner = None if user.is_admin else user.name
    return [_with_next_runs(s, 3) for s in _schedules(state).list(owner=owner)]


@router.get("/schedules/{name}")
def get_schedule(
    name: str,
    user: UserDep,
    state: ServiceDep,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> dict[str, Any]:
    """One schedule with its next ``count`` runs (UTC)."""
    return _with_next_runs(_own(state, user, name), count)


@router.post("/schedules/{name}/pause")
def pause_schedule(name: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    schedule = _own(state, user, name)
    return _with_next_runs(_schedules(state).set_enabled(schedule.name, False, schedule.owner))


@router.post("/schedules/{name}/resume")
def resume_schedule(name: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    schedule = _own(state, user, name)
    return _with_next_runs(_schedules(state).set_enabled(schedule.name, True, schedule.owner))


@router.delete("/schedules/{name}")
def delete_schedule(name: str, user: UserDep, state: ServiceDep) -> dict[str, Any]:
    schedule = _own(state, user, name)
    return _schedules(state).remove(schedule.name, schedule.owner).to_dict()
