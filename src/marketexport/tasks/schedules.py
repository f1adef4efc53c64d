"""Schedules: a cron expression in a zone, an export request template, a window, a misfire
policy; kept in the task store's database, beside the tasks they create.

The one-task-per-instant guarantee does not live here but in the tasks table: its
``UNIQUE (schedule_id, scheduled_for_ns)`` makes a second insert for the same instant a
no-op, whichever process tries it. The schedule row only remembers how far its scheduler
got (``checked_until_ns``), the last instant that got a task and the next one due, and is
only ever moved forward, so two schedulers updating it in any order agree.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ConflictError, NotFoundError, RequestError
from ..request import ExportRequest
from ..timeparse import datetime_to_ns, ns_to_iso
from .cron import CronSchedule, parse_cron
from .database import Row
from .model import DEFAULT_OWNER, check_owner
from .store import TaskStore
from .windows_rel import RelativeWindow, check_file_name_template, parse_window

logger = logging.getLogger(__name__)

MISFIRE_POLICIES = ("skip", "latest", "all")
DEFAULT_GRACE_S = 300.0
DEFAULT_MISFIRE_CAP = 100
MAX_MISFIRE_CAP = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS schedules (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        template TEXT NOT NULL,
        run_window TEXT,
        file_name TEXT,
        misfire TEXT NOT NULL CHECK (misfire IN ('skip', 'latest', 'all')),
        misfire_cap INTEGER NOT NULL CHECK (misfire_cap >= 1),
        grace_s REAL NOT NULL CHECK (grace_s >= 0),
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        checked_until_ns INTEGER NOT NULL,
        last_instant_ns INTEGER,
        last_task_id TEXT,
        next_instant_ns INTEGER,
        UNIQUE (owner, name)
    )
    """,
    "CREATE INDEX IF NOT EXISTS schedules_due ON schedules (enabled, next_instant_ns)",
)


def check_schedule_name(name: str) -> str:
    """A schedule name: 1-64 letters, digits, '.', '_' or '-'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RequestError(
            f"invalid schedule name {name!r} (expected 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit)",
            name=name,
        )
    return name


def check_misfire(policy: str, cap: int, grace_s: float) -> str:
    """Validate a misfire policy with its cap and grace period."""
    if policy not in MISFIRE_POLICIES:
        raise RequestError(
            f"unknown misfire policy {policy!r} (expected one of: {', '.join(MISFIRE_POLICIES)})",
            misfire=policy,
        )
    if not 1 <= int(cap) <= MAX_MISFIRE_CAP:
        raise RequestError(f"invalid misfire cap {cap!r} (expected 1 to {MAX_MISFIRE_CAP})")
    if not grace_s >= 0:
        raise RequestError(f"invalid grace period {grace_s!r} s (expected 0 or more seconds)")
    return policy


@dataclass(frozen=True)
class Schedule:
    """One stored schedule."""

    id: str
    name: str
    owner: str
    cron: str
    tz: str
    template: dict[str, Any]
    window: str | None
    file_name: str | None
    misfire: str
    misfire_cap: int
    grace_s: float
    enabled: bool
    created_at: float
    updated_at: float
    checked_until_ns: int
    last_instant_ns: int | None = None
    last_task_id: str | None = None
    next_instant_ns: int | None = None

    @property
    def cron_schedule(self) -> CronSchedule:
        return parse_cron(self.cron, self.tz)

    @property
    def relative_window(self) -> RelativeWindow | None:
        return parse_window(self.window) if self.window else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``schedule list --json`` prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "cron": self.cron,
            "tz": self.tz,
            "window": self.window,
            "file_name": self.file_name,
            "misfire": self.misfire,
            "misfire_cap": self.misfire_cap,
            "grace_s": self.grace_s,
            "enabled": self.enabled,
            "request": self.template,
            "created_at": _iso_s(self.created_at),
            "updated_at": _iso_s(self.updated_at),
            "checked_until": ns_to_iso(self.checked_until_ns),
            "last_instant": _iso_ns(self.last_instant_ns),
            "last_task_id": self.last_task_id,
            "next_instant": _iso_ns(self.next_instant_ns) if self.enabled else None,
        }


def _iso_ns(ns: int | None) -> str | None:
    return ns_to_iso(ns) if ns is not None else None


def _iso_s(epoch_s: float) -> str:
    return ns_to_iso(int(round(epoch_s * 1000)) * 1_000_000)


def _from_row(row: Row) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        cron=row["cron"],
        tz=row["tz"],
        template=json.loads(row["template"]),
        window=row["run_window"],
        file_name=row["file_name"],
        misfire=row["misfire"],
        misfire_cap=row["misfire_cap"],
        grace_s=row["grace_s"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        checked_until_ns=row["checked_until_ns"],
        last_instant_ns=row["last_instant_ns"],
        last_task_id=row["last_task_id"],
        next_instant_ns=row["next_instant_ns"],
    )


def template_of(request: ExportRequest, window: RelativeWindow | None) -> dict[str, Any]:
    """The stored request template: the request, without a range when a window gives one."""
    if window is not None and (request.start_ns is not None or request.end_ns is not None):
        raise RequestError(
            f"give either --window ({window.text}) or --start/--end, not both: the window "
            "sets the range of each run",
            window=window.text,
        )
    return request.to_dict()


class ScheduleStore:
    """Schedules in the task store's database; every change is one transaction."""

    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks
        tasks.create_tables(SCHEMA)

    def now_ns(self) -> int:
        return int(round(self.tasks.clock() * 1e6)) * 1000

    def add(
        self,
        name: str,
        *,
        cron: str,
        request: ExportRequest,
        tz: str = "UTC",
        window: str | None = None,
        file_name: str | None = None,
        misfire: str = "skip",
        misfire_cap: int = DEFAULT_MISFIRE_CAP,
        grace_s: float = DEFAULT_GRACE_S,
        owner: str = DEFAULT_OWNER,
        enabled: bool = True,
    ) -> Schedule:
        """Validate everything, then store the schedule; nothing is stored on any error.

        Runs start with the first instant after now: a new schedule never backfills.
        """
        from .scheduler import build_run_request

        check_schedule_name(name)
        check_owner(owner)
        schedule_cron = parse_cron(cron, tz)
        relative = parse_window(window) if window else None
        template = template_of(request, relative)
        if file_name:
            check_file_name_template(file_name)
        check_misfire(misfire, misfire_cap, grace_s)

        now_s = self.tasks.clock()
        now_ns = self.now_ns()
        upcoming = schedule_cron.next_after(datetime.fromtimestamp(now_s, UTC))
        schedule = Schedule(
            id=f"{name}@{secrets.token_hex(4)}",
            name=name,
            owner=owner,
            cron=schedule_cron.expression,
            tz=schedule_cron.zone_name,
            template=template,
            window=relative.text if relative else None,
            file_name=file_name or None,
            misfire=misfire,
            misfire_cap=int(misfire_cap),
            grace_s=float(grace_s),
            enabled=enabled,
            created_at=now_s,
            updated_at=now_s,
            checked_until_ns=now_ns,
            next_instant_ns=datetime_to_ns(upcoming[0]) if upcoming else None,
        )
        # The first run's request is built now, so that a template the window makes
        # invalid (an empty range, a bad file name) is refused before anything is stored.
        if upcoming:
            build_run_request(self, schedule, upcoming[0])
        self._insert(schedule)
        logger.info(
            "schedule %s added cron=%r tz=%s window=%s misfire=%s next=%s",
            name, schedule.cron, schedule.tz, schedule.window, misfire,
            _iso_ns(schedule.next_instant_ns),
        )  # fmt: skip
        return schedule

    def _insert(self, schedule: Schedule) -> None:
        values = schedule.to_dict()
        with self.tasks.transaction() as con:
            added = con.execute(
                "INSERT INTO schedules (id, name, owner, cron, tz, template, run_window, "
                "file_name, misfire, misfire_cap, grace_s, enabled, created_at, updated_at, "
                "checked_until_ns, next_instant_ns) VALUES (:id, :name, :owner, :cron, :tz, "
                ":template, :window, :file_name, :misfire, :misfire_cap, :grace_s, :enabled, "
                ":created_at, :updated_at, :checked_until_ns, :next_instant_ns) "
                "ON CONFLICT (owner, name) DO NOTHING",
                {
                    **values,
                    "run_window": schedule.window,
                    "template": json.dumps(schedule.template, default=str),
                    "enabled": int(schedule.enabled),
                    "created_at": schedule.created_at,
                    "updated_at": schedule.updated_at,
                    "checked_until_ns": schedule.checked_until_ns,
                    "next_instant_ns": schedule.next_instant_ns,
                },
            ).rowcount
        if not added:
            raise ConflictError(
                f"a schedule named {schedule.name!r} already exists for owner "
                f"{schedule.owner!r} (remove it first, or choose another name)",
                name=schedule.name,
            )

    def get(self, name: str, owner: str = DEFAULT_OWNER) -> Schedule:
        """The schedule called ``name`` of ``owner``, or NotFoundError."""
        rows = self.tasks.read(
            "SELECT * FROM schedules WHERE owner = ? AND name = ?", (owner, name)
        )
        if not rows:
            raise NotFoundError(
                f"no schedule named {name!r} for owner {owner!r}", name=name, owner=owner
            )
        return _from_row(rows[0])

    def list(self, *, owner: str | None = None, enabled_only: bool = False) -> list[Schedule]:
        """Schedules by owner and name."""
        where, params = [], []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if enabled_only:
            where.append("enabled = 1")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.tasks.read(f"SELECT * FROM schedules {clause} ORDER BY owner, name", params)
        return [_from_row(row) for row in rows]

    def due(self, now_ns: int) -> builtins.list[Schedule]:
        """Enabled schedules whose next instant has come (the scheduler's one query)."""
        rows = self.tasks.read(
            "SELECT * FROM schedules WHERE enabled = 1 AND next_instant_ns <= ? "
            "ORDER BY next_instant_ns, id",
            (now_ns,),
        )
        return [_from_row(row) for row in rows]

    def set_enabled(self, name: str, enabled: bool, owner: str = DEFAULT_OWNER) -> Schedule:
        """Pause or resume. Resuming starts from now: instants missed while paused never run."""
        current = self.get(name, owner)
        now_s, now_ns = self.tasks.clock(), self.now_ns()
        upcoming = current.cron_schedule.next_after(datetime.fromtimestamp(now_s, UTC))
        with self.tasks.transaction() as con:
            if enabled and not current.enabled:
                con.execute(
                    "UPDATE schedules SET enabled = 1, checked_until_ns = CASE WHEN "
                    "checked_until_ns > :now_ns THEN checked_until_ns ELSE :now_ns END, "
                    "next_instant_ns = :next, updated_at = :now WHERE id = :id",
                    {
                        "now_ns": now_ns,
                        "next": datetime_to_ns(upcoming[0]) if upcoming else None,
                        "now": now_s,
                        "id": current.id,
                    },
                )
            elif not enabled:
                con.execute(
                    "UPDATE schedules SET enabled = 0, updated_at = ? WHERE id = ?",
                    (now_s, current.id),
                )
        logger.info("schedule %s %s", name, "resumed" if enabled else "paused")
        return self.get(name, owner)

    def remove(self, name: str, owner: str = DEFAULT_OWNER) -> Schedule:
        """Delete a schedule; the tasks it created stay, with their schedule id."""
        current = self.get(name, owner)
        with self.tasks.transaction() as con:
            con.execute("DELETE FROM schedules WHERE id = ?", (current.id,))
        logger.info("schedule %s removed", name)
        return current

    def advance(
        self,
        schedule: Schedule,
        *,
        checked_until_ns: int,
        next_instant_ns: int | None,
        last_instant_ns: int | None,
        last_task_id: str | None,
    ) -> None:
        """Move a schedule's bookkeeping forward; a value older than the stored one loses."""
        with self.tasks.transaction() as con:
            con.execute(
                "UPDATE schedules SET "
                "next_instant_ns = CASE WHEN :checked >= checked_until_ns THEN :next "
                "ELSE next_instant_ns END, "
                "checked_until_ns = CASE WHEN :checked > checked_until_ns THEN :checked "
                "ELSE checked_until_ns END, "
                # A NULL :last compares as unknown, so both keep their stored values.
                "last_task_id = CASE WHEN :last >= COALESCE(last_instant_ns, -1) "
                "THEN :task ELSE last_task_id END, "
                "last_instant_ns = CASE WHEN :last >= COALESCE(last_instant_ns, -1) "
                "THEN :last ELSE last_instant_ns END, "
                "updated_at = :now WHERE id = :id",
                {
                    "checked": checked_until_ns,
                    "next": next_instant_ns,
                    "last": last_instant_ns,
                    "task": last_task_id,
                    "now": self.tasks.clock(),
                    "id": schedule.id,
                },
            )

    def last_success_end_ns(self, schedule_id: str, before_ns: int) -> int | None:
        """End of the window of the newest completed run for an instant before ``before_ns``."""
        rows = self.tasks.read(
            "SELECT request FROM tasks WHERE schedule_id = ? AND state = 'completed' "
            "AND scheduled_for_ns < ? ORDER BY scheduled_for_ns DESC LIMIT 1",
            (schedule_id, before_ns),
        )
        if not rows:
            return None
        end_ns = json.loads(rows[0]["request"]).get("end_ns")
        return int(end_ns) if end_ns is not None else None
