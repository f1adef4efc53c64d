"""Time windows relative to a schedule's instant, and file names that use the instant.

A scheduled run exports the window of the instant it is *for*, never of the moment it
happens to run, so a run that starts late (after an outage, or behind a long queue)
exports the same rows as one on time. Windows are half-open, ``[start, end)``. Calendar
units (days, weeks, months) are counted in the schedule's zone, with the fixed-time rules
of :mod:`marketexport.tasks.cron` for local times that do not exist or occur twice;
seconds, minutes and hours are elapsed time. Pure, no I/O.

Forms (``--window``):

- ``previous-hour`` / ``previous-day`` / ``previous-week`` / ``previous-month``: the last
  full local hour, day, week (Monday to Monday) or month before the instant;
- ``last:N<unit>``: the N units before the instant (s, m, h elapsed; d calendar days);
- ``between:-A<unit>,-B<unit>``: from A before the instant to B before it (a lag for data
  that arrives late), e.g. ``between:-65m,-5m``;
- ``previous-interval``: from the schedule's previous due instant to this one;
- ``since-last-success``: from the end of the window of the schedule's latest completed
  run (every row before the instant when none has completed yet).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import RequestError
from ..timeparse import datetime_to_ns
from .cron import resolve_wall_time

CALENDAR_UNITS = ("hour", "day", "week", "month")
OFFSET_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
WINDOW_FORMS = (
    "previous-hour, previous-day, previous-week, previous-month, previous-interval, "
    "since-last-success, last:N<unit> or between:-A<unit>,-B<unit> with unit s, m, h or d "
    "(e.g. last:15m, between:-65m,-5m)"
)
_OFFSET = re.compile(r"^(?P<sign>-?)(?P<amount>\d{1,6})(?P<unit>[smhd])$")
FILE_NAME_FIELDS = ("instant", "instant_utc", "start", "end", "schedule", "ext")
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@,-]{0,199}$")


@dataclass(frozen=True)
class Offset:
    """An amount of a unit before the instant (``amount`` units back, 0 = the instant)."""

    amount: int
    unit: str

    @property
    def nominal_s(self) -> int:
        return self.amount * OFFSET_UNITS[self.unit]

    def text(self) -> str:
        return f"{self.amount}{self.unit}"

    def back_from(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """The instant this offset names, counting back from ``instant``."""
        if self.unit != "d":
            return instant - timedelta(seconds=self.nominal_s)
        # Calendar days: the same local time N days earlier, so a daily schedule's windows
        # tile its days even when one of them has 23 or 25 hours.
        wall = instant.astimezone(zone).replace(tzinfo=None) - timedelta(days=self.amount)
        return resolve_wall_time(wall, zone)


@dataclass(frozen=True)
class RelativeWindow:
    """A window relative to a scheduled instant. Build it with :func:`parse_window`."""

    kind: str  # previous | offsets | previous-interval | since-last-success
    unit: str | None = None  # for "previous": hour, day, week or month
    start: Offset | None = None  # for "offsets"
    end: Offset | None = None

    @property
    def text(self) -> str:
        """The canonical text form, as ``--window`` takes it and the store keeps it."""
        if self.kind == "previous":
            return f"previous-{self.unit}"
        if self.kind == "offsets":
            assert self.start is not None and self.end is not None
            if self.end.amount == 0:
                return f"last:{self.start.text()}"
            return f"between:-{self.start.text()},-{self.end.text()}"
        return self.kind

    @property
    def needs_previous_instant(self) -> bool:
        return self.kind == "previous-interval"

    @property
    def needs_last_success(self) -> bool:
        return self.kind == "since-last-success"

    def bounds(
        self,
        instant: datetime,
        zone: ZoneInfo,
        *,
        previous_instant: datetime | None = None,
        last_success_end_ns: int | None = None,
    ) -> tuple[int | None, int]:
        """``(start_ns, end_ns)`` of the window for ``instant``; start None means unbounded."""
        moment = instant.astimezone(UTC)
        if self.kind == "previous":
            assert self.unit is not None
            end = unit_start(moment, zone, self.unit)
            start = unit_start(end - timedelta(microseconds=1), zone, self.unit)
            return datetime_to_ns(start), datetime_to_ns(end)
        if self.kind == "offsets":
            assert self.start is not None and self.end is not None
            low = self.start.back_from(moment, zone)
            high = self.end.back_from(moment, zone)
            return datetime_to_ns(low), datetime_to_ns(high)
        if self.kind == "previous-interval":
            start_ns = datetime_to_ns(previous_instant) if previous_instant else None
            return start_ns, datetime_to_ns(moment)
        return last_success_end_ns, datetime_to_ns(moment)


def parse_window(text: str) -> RelativeWindow:
    """Parse a ``--window`` value; raise RequestError naming it when invalid or inverted."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value.startswith("previous-") and value[len("previous-") :] in CALENDAR_UNITS:
        return RelativeWindow("previous", unit=value[len("previous-") :])
    if value in ("previous-interval", "since-last-success"):
        return RelativeWindow(value)
    if value.startswith("last:"):
        start = _parse_offset(text, value[len("last:") :], negative=False)
        window = RelativeWindow("offsets", start=start, end=Offset(0, start.unit))
        _check_order(text, window)
        return window
    if value.startswith("between:") and value.count(",") == 1:
        first, second = value[len("between:") :].split(",")
        window = RelativeWindow(
            "offsets",
            start=_parse_offset(text, first.strip(), negative=True),
            end=_parse_offset(text, second.strip(), negative=True),
        )
        _check_order(text, window)
        return window
    raise RequestError(f"invalid window {text!r} (expected one of: {WINDOW_FORMS})", window=text)


def _parse_offset(text: str, part: str, *, negative: bool) -> Offset:
    match = _OFFSET.match(part)
    if not match or (negative and not match["sign"] and match["amount"] != "0"):
        shape = "-N<unit> (before the instant)" if negative else "N<unit>"
        raise RequestError(
            f"invalid window {text!r}: {part!r} is not {shape} with unit s, m, h or d "
            f"(expected one of: {WINDOW_FORMS})",
            window=text,
        )
    if match["sign"] and not negative:
        raise RequestError(f"invalid window {text!r}: give the length without a sign")
    return Offset(int(match["amount"]), match["unit"])


def _check_order(text: str, window: RelativeWindow) -> None:
    assert window.start is not None and window.end is not None
    if window.start.nominal_s <= window.end.nominal_s:
        raise RequestError(
            f"empty or inverted window {text!r}: its start ({window.start.text()} before the "
            f"instant) is not before its end ({window.end.text()} before the instant); "
            "the window is [start, end)",
            window=text,
        )


def unit_start(moment: datetime, zone: ZoneInfo, unit: str) -> datetime:
    """The start of the local hour, day, week (Monday) or month that holds ``moment``."""
    local = moment.astimezone(zone)
    if unit == "hour":
        # Elapsed time, not a wall-clock lookup: the repeated autumn hour is two hours.
        into_hour = timedelta(minutes=local.minute, seconds=local.second)
        return (moment - into_hour - timedelta(microseconds=local.microsecond)).astimezone(UTC)
    wall = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        wall -= timedelta(days=wall.weekday())
    elif unit == "month":
        wall = wall.replace(day=1)
    return resolve_wall_time(wall, zone)


def check_file_name_template(template: str) -> str:
    """Refuse a file name template with unknown fields or that cannot give a safe name."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _template_error(template, str(exc)) from None
    for _, field, _, conversion in parts:
        if field is not None and (field not in FILE_NAME_FIELDS or conversion):
            raise _template_error(template, f"unknown field {{{field}}}")
    sample = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    render_file_name(
        template,
        instant=sample,
        zone=ZoneInfo("UTC"),
        window=(datetime_to_ns(sample) - 3_600_000_000_000, datetime_to_ns(sample)),
        schedule="name",
        extension=".csv",
    )
    return template


def render_file_name(
    template: str,
    *,
    instant: datetime,
    zone: ZoneInfo,
    window: tuple[int | None, int],
    schedule: str,
    extension: str,
) -> str:
    """The file name for one run: ``{instant:%Y%m%d}`` and the other fields filled in.

    ``instant``, ``start`` and ``end`` are local times in the schedule's zone,
    ``instant_utc`` is UTC; ``ext`` is the format's extension with the codec's.
    """
    start_ns, end_ns = window
    values = {
        "instant": instant.astimezone(zone),
        "instant_utc": instant.astimezone(UTC),
        "start": _local(start_ns, zone) if start_ns is not None else "begin",
        "end": _local(end_ns, zone),
        "schedule": schedule,
        "ext": extension,
    }
    try:
        name = template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise _template_error(template, f"{type(exc).__name__}: {exc}") from None
    if not _SAFE_FILE_NAME.match(name) or ".." in name:
        raise _template_error(
            template,
            f"it gives {name!r}, not a plain file name (letters, digits and . _ + = @ , -, "
            "starting with a letter or digit, at most 200 characters)",
        )
    return name


def run_file_name(request: dict[str, Any]) -> str | None:
    """The file name a scheduled run's request carries (``file_name``), checked again.

    The task runner calls this: a request dict can reach the task store from other code
    than the scheduler, and a name must never lead outside the task's directory.
    """
    name = request.get("file_name")
    if name is None:
        return None
    if not isinstance(name, str) or not _SAFE_FILE_NAME.match(name) or ".." in name:
        raise RequestError(
            f"invalid file name {name!r} in the task's request (expected a plain file name: "
            "letters, digits and . _ + = @ , -)",
            file_name=str(name),
        )
    return name


def _local(ns: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).astimezone(zone)


def _template_error(template: str, detail: str) -> RequestError:
    return RequestError(
        f"invalid file name template {template!r}: {detail} (fields: "
        + ", ".join("{" + name + "}" for name in FILE_NAME_FIELDS)
        + "; times take strftime formats, e.g. {instant:%Y%m%d})",
        file_name=template,
    )
