"""``marketexport schedule ...``: cron schedules that create one export task per instant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from ..errors import RequestError
from ..export.encryption import KeyRing, check_key_names
from ..tasks.cron import CronSchedule, check_zone, parse_cron
from ..tasks.model import DEFAULT_OWNER
from ..tasks.scheduler import Scheduler, window_bounds
from ..tasks.schedules import (
    DEFAULT_GRACE_S,
    DEFAULT_MISFIRE_CAP,
    MAX_MISFIRE_CAP,
    MISFIRE_POLICIES,
    Schedule,
    ScheduleStore,
)
from ..tasks.store import TaskStore
from ..tasks.windows_rel import WINDOW_FORMS
from ..timeparse import datetime_to_ns, ns_to_iso, parse_instant
from . import AppContext, pass_app
from .export_cmd import export_options, request_from_options
from .output import print_json

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str) -> float:
    """'90s', '5m', '1h', '2d' or plain seconds -> seconds (0 allowed)."""
    match = _DURATION.match(text)
    if not match:
        raise RequestError(
            f"invalid {what} {text!r} (expected a number of seconds, or one with s, m, h or d, "
            "e.g. 5m)",
            value=text,
        )
    return float(match[1]) * _UNIT_S[match[2]]


@contextmanager
def open_schedules(app: AppContext) -> Iterator[ScheduleStore]:
    tasks = TaskStore.open(app.settings)
    try:
        yield ScheduleStore(tasks)
    finally:
        tasks.close()


@click.command("export-arguments", add_help_option=False)
@export_options
def _export_arguments(**options: Any) -> dict[str, Any]:
    return options


def template_request(name: str, arguments: tuple[str, ...]) -> Any:
    """The export request given after ``--``, parsed as ``marketexport export`` would."""
    if not arguments:
        raise click.UsageError(
            "give the export arguments after --, e.g. "
            f"'marketexport schedule add {name} --cron @daily --window previous-day -- "
            "ohlcv --format parquet --symbol BTC/USDT'"
        )
    options = _export_arguments.main(
        args=list(arguments), prog_name="export arguments", standalone_mode=False
    )
    return request_from_options(options)


def _local(ns: int | None, zone: str) -> str:
    if ns is None:
        return "-"
    moment = datetime.fromtimestamp(ns / 1e9, UTC).astimezone(check_zone(zone))
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z (%z)")


def _instant_record(
    moment: datetime, cron: CronSchedule, window: tuple[int | None, int | None] | None
) -> dict[str, Any]:
    local = moment.astimezone(cron.zone)
    record: dict[str, Any] = {
        "instant": ns_to_iso(datetime_to_ns(moment)),
        "local": local.isoformat(),
        "zone": cron.zone_name,
        "abbreviation": local.tzname(),
    }
    if window is not None:
        start, end = window
        record["window"] = {
            "start": ns_to_iso(start) if start is not None else None,
            "end": ns_to_iso(end) if end is not None else None,
        }
    return record


@click.group("schedule")
def schedule_group() -> None:
    """Cron schedules: each due instant creates exactly one export task (see docs/schedules.md)."""


@schedule_group.command(
    "add", context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True
)
@click.argument("name")
@click.option("--cron", "cron", required=True, help="Five fields or @hourly/@daily/...")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the schedule.")
@click.option("--window", help=f"Range of each run, relative to its instant: {WINDOW_FORMS}.")
@click.option(
    "--misfire",
    type=click.Choice(MISFIRE_POLICIES),
    default="skip",
    show_default=True,
    help="Runs missed while no scheduler ran: none, the latest, or all (up to --misfire-cap).",
)
@click.option(
    "--misfire-cap",
    type=click.IntRange(1, MAX_MISFIRE_CAP),
    default=DEFAULT_MISFIRE_CAP,
    show_default=True,
    help="With --misfire all: at most this many missed runs (the newest).",
)
@click.option(
    "--grace",
    default=f"{int(DEFAULT_GRACE_S)}s",
    show_default=True,
    help="A run noticed this late still counts as on time (s, m, h, d).",
)
@click.option("--file-name", help="File name template, e.g. 'candles_{instant:%Y%m%d}{ext}'.")
@click.option("--owner", default=DEFAULT_OWNER, show_default=True, help="Owner of the tasks.")
@click.option("--paused", is_flag=True, help="Store the schedule paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@click.argument("export_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def add_command(
    app: AppContext,
    name: str,
    cron: str,
    tz: str,
    window: str | None,
    misfire: str,
    misfire_cap: int,
    grace: str,
    file_name: str | None,
    owner: str,
    paused: bool,
    as_json: bool,
    export_args: tuple[str, ...],
) -> None:
    """Add schedule NAME; the export arguments follow '--' (the same as for export)."""
    request = template_request(name, export_args)
    check_key_names(request.encryption, request.sign_key, KeyRing.from_settings(app.settings))
    grace_s = parse_duration(grace, "grace period")
    with open_schedules(app) as schedules:
        schedule = schedules.add(
            name,
            cron=cron,
            tz=tz,
            request=request,
            window=window,
            file_name=file_name,
            misfire=misfire,
            misfire_cap=misfire_cap,
            grace_s=grace_s,
            owner=owner,
            enabled=not paused,
        )
    if as_json:
        print_json(schedule.to_dict())
        return
    click.echo(f"schedule {schedule.name} added ({schedule.id})")
    click.echo(f"next run: {_local(schedule.next_instant_ns, schedule.tz)}")


@schedule_group.command("list")
@click.option("--owner", help="Only this owner's schedules.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def list_command(app: AppContext, owner: str | None, as_json: bool) -> None:
    """List schedules with their last and next runs."""
    with open_schedules(app) as schedules:
        found = schedules.list(owner=owner)
    if as_json:
        print_json([schedule.to_dict() for schedule in found])
        return
    if not found:
        click.echo("no schedules")
    for schedule in found:
        state = "enabled" if schedule.enabled else "paused"
        click.echo(
            f"{schedule.name:<20} {schedule.cron!r:<18} {schedule.tz:<20} "
            f"{schedule.window or 'fixed range':<20} misfire={schedule.misfire:<6} {state}"
        )
        click.echo(f"    last: {_local(schedule.last_instant_ns, schedule.tz)}")
        next_ns = schedule.next_instant_ns if schedule.enabled else None
        utc = f"  [{ns_to_iso(next_ns)}]" if next_ns is not None else ""
        click.echo(f"    next: {_local(next_ns, schedule.tz)}{utc}")


@schedule_group.command("next")
@click.argument("name", required=False)
@click.option("--cron", "cron", help="Preview an expression without a stored schedule.")
@click.option("--tz", help="Time zone for --cron (default UTC).")
@click.option("--count", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option("--after", help="Instants after this time (default now); no offset means UTC.")
@click.option("--owner", default=DEFAULT_OWNER, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def next_command(
    app: AppContext,
    name: str | None,
    cron: str | None,
    tz: str | None,
    count: int,
    after: str | None,
    owner: str,
    as_json: bool,
) -> None:
    """Preview the next instants of schedule NAME, or of --cron EXPR --tz ZONE."""
    if (name is None) == (cron is None):
        raise click.UsageError("give either a schedule NAME or --cron EXPR (with --tz ZONE)")
    if name is not None and tz is not None:
        raise click.UsageError("--tz goes with --cron; a stored schedule has its own zone")
    start = (
        datetime.fromtimestamp(parse_instant(after, what="--after") / 1e9, UTC)
        if after
        else datetime.now(UTC)
    )
    records = _preview(app, name, owner, cron, tz, start, count)
    if as_json:
        print_json(records)
        return
    for record in records:
        line = f"{record['local']:<26} {record['abbreviation'] or '':<6} {record['instant']}"
        if "window" in record:
            window = record["window"]
            line += f"  window [{window['start'] or 'begin'}, {window['end'] or 'end'})"
        click.echo(line)


def _preview(
    app: AppContext,
    name: str | None,
    owner: str,
    cron: str | None,
    tz: str | None,
    start: datetime,
    count: int,
) -> list[dict[str, Any]]:
    if name is None:
        expression = parse_cron(cron or "", tz or "UTC")
        return [_instant_record(m, expression, None) for m in expression.next_after(start, count)]
    with open_schedules(app) as schedules:
        schedule = schedules.get(name, owner)
        expression = schedule.cron_schedule
        return [
            _instant_record(moment, expression, window_bounds(schedules, schedule, moment))
            for moment in expression.next_after(start, count)
        ]


def _schedule_action(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @click.argument("name")
    @click.option("--owner", default=DEFAULT_OWNER, show_default=True)
    @click.option("--yes", is_flag=True, help="Do not ask before removing.")
    @click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
    @pass_app
    def command(app: AppContext, name: str, owner: str, yes: bool, as_json: bool) -> None:
        with open_schedules(app) as schedules:
            if action == "remove":
                schedules.get(name, owner)
                if not yes:
                    click.confirm(f"remove schedule {name!r}? (its tasks stay)", abort=True)
                schedule: Schedule = schedules.remove(name, owner)
            else:
                schedule = schedules.set_enabled(name, action == "resume", owner)
        if as_json:
            print_json(schedule.to_dict())
        else:
            done = {"pause": "paused", "resume": "resumed", "remove": "removed"}[action]
            click.echo(f"schedule {name} {done}")

    return command


for _action, _help in (
    ("pause", "Pause schedule NAME: no runs until it is resumed."),
    ("resume", "Resume schedule NAME from now on; runs missed while paused do not happen."),
    ("remove", "Remove schedule NAME; the tasks it created stay."),
):
    schedule_group.add_command(_schedule_action(_action, _help))


@schedule_group.command("run")
@click.argument("name")
@click.option("--owner", default=DEFAULT_OWNER, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@pass_app
def run_command(app: AppContext, name: str, owner: str, as_json: bool) -> None:
    """Queue one run now, for NAME's latest due instant (run-worker carries it out)."""
    with open_schedules(app) as schedules:
        schedule = schedules.get(name, owner)
        run = Scheduler(schedules, max_attempts=app.settings.task_max_attempts).run_now(schedule)
    if as_json:
        print_json(run.to_dict())
        return
    instant = _local(run.instant_ns, schedule.tz)
    if run.created:
        click.echo(f"task {run.task_id} queued for {instant}")
    else:
        click.echo(f"the run for {instant} already has task {run.task_id}")


def register(cli: click.Group) -> None:
    cli.add_command(schedule_group)
