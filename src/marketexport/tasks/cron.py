"""Cron expressions in a time zone: which instants a schedule is due at. Pure, no I/O.

The calendar side (five fields, lists, ranges, steps, names, the day-of-month/day-of-week
rule of classic cron, month lengths, leap years) is cronsim's: it is asked for *wall-clock*
times only, as naive datetimes. Mapping a wall-clock time to an instant is done here, by
the rules written in docs/schedules.md:

- a schedule whose hour field covers all 24 hours ("hourly and finer") follows elapsed
  time: it is due at every instant whose local time matches, so a repeated local hour runs
  twice and a skipped one not at all, and no real hour is skipped or doubled;
- any other schedule names fixed local times: a time inside a spring-forward gap is due
  once at the first instant after the gap, a time that occurs twice is due once, at its
  first occurrence.

cronsim's own zone handling follows Debian cron, which sorts schedules by another test (a
minute or hour field starting with ``*``); tests/tasks/test_cron_libraries.py measures
where that, and croniter's, differ from the rules above.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from ..errors import RequestError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ("0-59", "0-23", "1-31", "1-12 or jan-dec", "0-7 or sun-sat (0 and 7 are Sunday)")
_MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
_DAYS = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
_FIELD_TEXT = re.compile(r"^[0-9A-Za-z*,/-]+$")
_CRONSIM_FIELDS = {
    "Bad minute": 0,
    "Bad hour": 1,
    "Bad day-of-month": 2,
    "Bad month": 3,
    "Bad day-of-week": 4,
}
CRON_FORMS = (
    "five fields 'minute hour day-of-month month day-of-week' with *, lists (1,5), ranges "
    "(1-5), steps (*/15, 0-30/10) and month or weekday names, or one of " + ", ".join(MACROS)
)
# Longest stretch of local time that a zone repeats; a walk over wall-clock times starts
# this much before the asked moment so that second occurrences are not missed.
_MAX_REPEAT = timedelta(hours=6)
# Spans tried, shortest first, when looking backwards for the latest due instant.
_LOOKBACK_SPANS = tuple(timedelta(days=d) for d in (1 / 12, 2, 40, 400, 3000, 20_000))


def check_zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``, or a RequestError naming it."""
    text = name.strip() if isinstance(name, str) else ""
    zone = _zone(text) if text else None
    if zone is None:
        close = difflib.get_close_matches(text, _zone_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RequestError(
            f"unknown time zone {name!r} (expected an IANA name such as UTC, Europe/Berlin, "
            f"America/New_York{hint})",
            zone=name,
        )
    return zone


@lru_cache(maxsize=256)
def _zone(text: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@lru_cache(maxsize=1)
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def expand_macro(text: str) -> str:
    """The five-field form of an expression (a macro is replaced, spaces normalised)."""
    stripped = " ".join(text.split())
    return MACROS.get(stripped.lower(), stripped)


def _cron_error(text: str, detail: str) -> RequestError:
    return RequestError(
        f"invalid cron expression {text!r}: {detail} (expected {CRON_FORMS})", cron=text
    )


def _check_fields(text: str, fields: list[str]) -> None:
    """Refuse what is not classic five-field cron before cronsim sees it."""
    if len(fields) != 5:
        raise _cron_error(text, f"{len(fields)} fields instead of 5")
    for index, field in enumerate(fields):
        where = f"{FIELDS[index]} field {field!r}"
        if not _FIELD_TEXT.match(field):
            raise _cron_error(text, f"{where} has a character other than 0-9 a-z * , / -")
        allowed = {3: _MONTHS, 4: _DAYS}.get(index, set())
        for word in re.findall(r"[A-Za-z]+", field):
            if word.lower() not in allowed:
                raise _cron_error(
                    text, f"{where}: {word!r} is not a valid name there ({_RANGES[index]})"
                )


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression in an IANA time zone. Build it with :func:`parse_cron`."""

    expression: str
    fields: str
    zone_name: str
    # True when the hour field covers every hour: the schedule follows elapsed time.
    is_hourly_or_finer: bool

    @property
    def zone(self) -> ZoneInfo:
        return check_zone(self.zone_name)

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Due instants strictly after ``after`` (aware), oldest first, as UTC datetimes."""
        zone = self.zone
        after_utc = _as_utc(after)
        start_wall = after_utc.astimezone(zone).replace(tzinfo=None) - _MAX_REPEAT
        second_folds: deque[datetime] = deque()
        last: datetime | None = None
        for wall in _iter_walls(self.fields, start_wall):
            first, second = _instants_of(wall, zone, self.is_hourly_or_finer)
            if first is not None:
                while second_folds and second_folds[0] < first:
                    moment = second_folds.popleft()
                    if moment > after_utc and (last is None or moment > last):
                        last = moment
                        yield moment
                if first > after_utc and (last is None or first > last):
                    last = first
                    yield first
            if second is not None:
                second_folds.append(second)
        for moment in second_folds:
            if moment > after_utc and (last is None or moment > last):
                last = moment
                yield moment

    def next_after(self, after: datetime, count: int = 1) -> list[datetime]:
        """The next ``count`` due instants strictly after ``after`` (fewer if none exist)."""
        found: list[datetime] = []
        for moment in self.iter_after(after):
            if len(found) >= count:
                break
            found.append(moment)
        return found

    def between(self, after: datetime, until: datetime, limit: int | None = None) -> list[datetime]:
        """Due instants in ``(after, until]``, oldest first; at most ``limit`` of them."""
        until_utc = _as_utc(until)
        found: list[datetime] = []
        for moment in self.iter_after(after):
            if moment > until_utc or (limit is not None and len(found) >= limit):
                break
            found.append(moment)
        return found

    def latest(
        self, until: datetime, count: int = 1, after: datetime | None = None
    ) -> list[datetime]:
        """The newest ``count`` due instants at or before ``until`` (and after ``after``).

        Returned oldest first. Looks back over growing spans, so a yearly schedule costs
        a few more steps than a minutely one, never a walk from the epoch.
        """
        if count < 1:
            return []
        until_utc = _as_utc(until)
        floor = _as_utc(after) if after is not None else None
        found: list[datetime] = []
        for span in _LOOKBACK_SPANS:
            start = until_utc - span
            if floor is not None and start <= floor:
                return self.between(floor, until_utc)[-count:]
            found = self.between(start, until_utc)
            if len(found) >= count:
                break
        return found[-count:]

    def previous_before(self, moment: datetime) -> datetime | None:
        """The due instant just before ``moment`` (strictly), or None."""
        found = self.latest(_as_utc(moment) - timedelta(microseconds=1))
        return found[-1] if found else None

    def to_dict(self) -> dict[str, str | bool]:
        return {
            "cron": self.expression,
            "fields": self.fields,
            "tz": self.zone_name,
            "hourly_or_finer": self.is_hourly_or_finer,
        }


def parse_cron(expression: str, zone: str = "UTC") -> CronSchedule:
    """Validate a cron expression and a zone name; raise RequestError naming what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise _cron_error(str(expression), "the expression is empty")
    text = " ".join(expression.split())
    if text.startswith("@") and text.lower() not in MACROS:
        raise _cron_error(text, f"unknown macro {text!r}")
    fields = expand_macro(text)
    _check_fields(text, fields.split(" "))
    check_zone(zone)
    try:
        parsed = CronSim(fields, datetime(2000, 1, 1))
    except CronSimError as exc:
        index = _CRONSIM_FIELDS.get(str(exc))
        if index is None:
            raise _cron_error(text, str(exc)) from None
        value = fields.split(" ")[index]
        detail = f"{FIELDS[index]} field {value!r} is outside {_RANGES[index]} or malformed"
        if index == 2:
            detail += " (or names a day that none of the chosen months has)"
        raise _cron_error(text, detail) from None
    return CronSchedule(
        expression=text,
        fields=fields,
        zone_name=zone.strip(),
        is_hourly_or_finer=set(parsed.hours) == set(range(24)),
    )


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(UTC)


def _iter_walls(fields: str, start: datetime) -> Iterator[datetime]:
    """Wall-clock times (naive) that match the fields, strictly after ``start``."""
    try:
        yield from CronSim(fields, start)
    except StopIteration:  # cronsim gives up after 50 years without a match
        return


def resolve_wall_time(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a fixed local time, by the fixed-time rules.

    A time inside a gap becomes the first instant after the gap; a repeated time its first
    occurrence.
    """
    first, _ = _instants_of(wall.replace(tzinfo=None), zone, False)
    assert first is not None  # a fixed-time mapping always yields an instant
    return first


def _instants_of(
    wall: datetime, zone: ZoneInfo, follows_elapsed_time: bool
) -> tuple[datetime | None, datetime | None]:
    """The instants a wall-clock time stands for: (first, second occurrence or None).

    For a fixed-time schedule a time in a gap becomes the first instant after the gap
    and a repeated time its first occurrence only; an hourly-or-finer schedule keeps both
    occurrences and drops times that do not exist.
    """
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) != wall:
        # zoneinfo maps a time in a gap with the offset before it (fold=0), landing after
        # the jump, and with the one after it (fold=1), landing before: the jump is between.
        if follows_elapsed_time:
            return None, None
        return _transition_between(zone, late, early), None
    if early == late or not follows_elapsed_time:
        return early, None
    return early, late


def _transition_between(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant in ``(before, after]`` whose UTC offset is that of ``after``."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
