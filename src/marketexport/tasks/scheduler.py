"""The scheduler: turns each due (schedule, instant) into exactly one export task.

A tick looks at every enabled schedule whose next instant has come. Instants that came
less than the schedule's grace period ago are on time and always get a task. Older ones
were missed (the scheduler was down, or the machine asleep); the misfire policy decides:
``skip`` runs none of them, ``latest`` the newest one, ``all`` each of them, oldest first,
at most ``misfire_cap`` (the newest ones). Every task is created through the task store's
unique ``(schedule_id, scheduled_for_ns)`` key, so two schedulers that tick together, or
one that crashed between creating a task and recording it, still make one task per
instant. Time comes from an injectable clock; nothing here sleeps except the loop thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import Settings
from ..errors import ExportError, RequestError
from ..export.compression import check_codec
from ..export.encryption import get_scheme
from ..export.formats import get_format
from ..request import ExportRequest
from ..timeparse import datetime_to_ns, ns_to_iso
from .cron import CronSchedule, check_zone
from .executor import dispatch
from .model import Task
from .schedules import Schedule, ScheduleStore
from .store import TaskStore
from .windows_rel import render_file_name

logger = logging.getLogger(__name__)

DEFAULT_TICK_S = 1.0


@dataclass(frozen=True)
class ScheduledRun:
    """One (schedule, instant) the scheduler handled, and the task that stands for it."""

    schedule: str
    instant_ns: int
    task_id: str
    created: bool
    late: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "instant": ns_to_iso(self.instant_ns),
            "task_id": self.task_id,
            "created": self.created,
            "late": self.late,
        }


def default_extension(request: ExportRequest) -> str:
    """The format's extension, with the codec's and the cipher's as an export names them."""
    spec = get_format(request.format)
    extension = spec.extension
    if not spec.compresses_inside:
        extension += check_codec(request.compression).extension
    if request.encryption is not None:
        extension += get_scheme(request.encryption.scheme).extension
    return extension


def window_bounds(
    schedules: ScheduleStore, schedule: Schedule, instant: datetime
) -> tuple[int | None, int | None]:
    """The ``[start, end)`` a run of ``schedule`` for ``instant`` exports, in ns."""
    window = schedule.relative_window
    if window is None:
        return schedule.template.get("start_ns"), schedule.template.get("end_ns")
    previous = None
    if window.needs_previous_instant:
        previous = schedule.cron_schedule.previous_before(instant)
    last_end = None
    if window.needs_last_success:
        last_end = schedules.last_success_end_ns(schedule.id, datetime_to_ns(instant))
    return window.bounds(
        instant, check_zone(schedule.tz), previous_instant=previous, last_success_end_ns=last_end
    )


def build_run_request(
    schedules: ScheduleStore, schedule: Schedule, instant: datetime
) -> dict[str, Any]:
    """The request of the run for ``instant``: the template with the window's range.

    The request is judged here as it will be at run time; a ``file_name`` entry carries
    the file name rendered from the schedule's template, when it has one.
    """
    start_ns, end_ns = window_bounds(schedules, schedule, instant)
    request = ExportRequest.from_dict({**schedule.template, "start_ns": start_ns, "end_ns": end_ns})
    body = request.to_dict()
    if schedule.file_name:
        body["file_name"] = render_file_name(
            schedule.file_name,
            instant=instant,
            zone=check_zone(schedule.tz),
            window=(start_ns, end_ns if end_ns is not None else datetime_to_ns(instant)),
            schedule=schedule.name,
            extension=default_extension(request),
        )
    return body


class Scheduler:
    """Creates the tasks of due schedule instants; :meth:`tick` is one pass."""

    def __init__(
        self,
        schedules: ScheduleStore,
        *,
        max_attempts: int = 3,
        clock: Callable[[], float] | None = None,
        on_created: Callable[[Task], object] | None = None,
    ) -> None:
        self.schedules = schedules
        self.tasks: TaskStore = schedules.tasks
        self.max_attempts = max_attempts
        self.clock = clock or self.tasks.clock
        # Called with each task this scheduler creates (the executor's dispatch hook).
        self.on_created = on_created

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def tick(self) -> list[ScheduledRun]:
        """One pass over the enabled schedules; returns the runs handled in it."""
        now = self.now()
        now_ns = datetime_to_ns(now)
        handled: list[ScheduledRun] = []
        for schedule in self.schedules.due(now_ns):
            try:
                handled.extend(self.tick_schedule(schedule, now))
            except ExportError as exc:
                # The bookkeeping did not move: the next tick tries the same instants.
                logger.error("schedule %s: tick failed: %s", schedule.name, exc)
        return handled

    def tick_schedule(self, schedule: Schedule, now: datetime) -> list[ScheduledRun]:
        """Create the tasks of one schedule's due instants, then record how far it got."""
        cron = schedule.cron_schedule
        checked = datetime.fromtimestamp(schedule.checked_until_ns / 1e9, UTC)
        grace_edge = now - timedelta(seconds=schedule.grace_s)
        missed = self._missed(schedule, cron, checked, grace_edge)
        on_time = cron.between(max(checked, grace_edge), now)

        runs = [self._submit(schedule, instant, late=True) for instant in missed]
        runs += [self._submit(schedule, instant, late=False) for instant in on_time]

        upcoming = cron.next_after(now)
        self.schedules.advance(
            schedule,
            checked_until_ns=datetime_to_ns(now),
            next_instant_ns=datetime_to_ns(upcoming[0]) if upcoming else None,
            last_instant_ns=runs[-1].instant_ns if runs else None,
            last_task_id=runs[-1].task_id if runs else None,
        )
        return runs

    def _missed(
        self, schedule: Schedule, cron: CronSchedule, checked: datetime, grace_edge: datetime
    ) -> list[datetime]:
        """The missed instants (due before the grace edge, after ``checked``) that run."""
        if checked >= grace_edge:
            return []
        wanted = {"skip": 1, "latest": 1, "all": schedule.misfire_cap + 1}[schedule.misfire]
        found = cron.latest(grace_edge, wanted, after=checked)
        if not found:
            return []
        if schedule.misfire == "skip":
            logger.warning(
                "schedule %s: runs due until %s were missed and are skipped (misfire=skip)",
                schedule.name, found[-1].isoformat(),
            )  # fmt: skip
            return []
        if len(found) > schedule.misfire_cap:
            found = found[-schedule.misfire_cap :]
            logger.warning(
                "schedule %s: more than %d runs were missed; runs due before %s are skipped "
                "(misfire=all, cap %d)",
                schedule.name, schedule.misfire_cap, found[0].isoformat(), schedule.misfire_cap,
            )  # fmt: skip
        return found

    def _submit(self, schedule: Schedule, instant: datetime, *, late: bool) -> ScheduledRun:
        instant_ns = datetime_to_ns(instant)
        try:
            body = build_run_request(self.schedules, schedule, instant)
        except RequestError as exc:
            # Still one task for the instant: it fails at run time with this message,
            # where `tasks list` shows it, instead of the instant vanishing.
            logger.error("schedule %s: the run for %s is invalid: %s", schedule.name, instant, exc)
            start_ns, end_ns = window_bounds(self.schedules, schedule, instant)
            body = {**schedule.template, "start_ns": start_ns, "end_ns": end_ns}
        task, created = self.tasks.submit_scheduled(
            body,
            owner=schedule.owner,
            max_attempts=self.max_attempts,
            schedule_id=schedule.id,
            scheduled_for_ns=instant_ns,
        )
        if created:
            logger.info(
                "schedule %s: task %s queued for %s%s",
                schedule.name, task.id, ns_to_iso(instant_ns),
                f" (late, misfire={schedule.misfire})" if late else "",
                extra={"task_id": task.id},
            )  # fmt: skip
            if self.on_created is not None:
                self.on_created(task)
        return ScheduledRun(schedule.name, instant_ns, task.id, created, late)

    def run_now(self, schedule: Schedule) -> ScheduledRun:
        """One run for the schedule's latest due instant (the existing task if it has one)."""
        now = self.now()
        latest = schedule.cron_schedule.latest(now)
        if not latest:
            raise RequestError(
                f"schedule {schedule.name!r} has had no due instant yet (cron "
                f"{schedule.cron!r} in {schedule.tz})",
                name=schedule.name,
            )
        run = self._submit(schedule, latest[-1], late=False)
        self.schedules.advance(
            schedule,
            checked_until_ns=schedule.checked_until_ns,
            next_instant_ns=schedule.next_instant_ns,
            last_instant_ns=run.instant_ns,
            last_task_id=run.task_id,
        )
        return run


class SchedulerLoop:
    """Ticks a Scheduler every ``interval_s`` seconds in a thread until stopped."""

    def __init__(self, scheduler: Scheduler, interval_s: float = DEFAULT_TICK_S) -> None:
        self.scheduler = scheduler
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        logger.info("scheduler started: tick every %.1f s", self.interval_s)
        while True:
            try:
                self.scheduler.tick()
            except Exception:  # a busy or failing store: the next tick tries again
                logger.warning("scheduler tick failed", exc_info=True)
            if self._stop.wait(self.interval_s):
                break
        logger.info("scheduler stopped")


def scheduler_hooks(
    settings: Settings, tasks: TaskStore
) -> Iterator[tuple[Callable[[], None], Callable[[], None]]]:
    """(start, stop) of a scheduler loop over the task store, for run-worker and serve."""
    scheduler = Scheduler(
        ScheduleStore(tasks),
        max_attempts=settings.task_max_attempts,
        on_created=lambda task: dispatch(settings, tasks, task),
    )
    loop = SchedulerLoop(scheduler)
    yield loop.start, loop.stop
