"""Which of marketexport's schedule rules croniter and cronsim get right on their own.

Each library is given aware datetimes in the zone, as its documentation suggests, and
each rule is checked in Europe/Berlin, America/New_York and Australia/Sydney. The table
this measures is the one in docs/schedules.md; marketexport asks cronsim for wall-clock
times only and maps them to instants itself (tasks/cron.py), so that it passes all rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from cronsim import CronSim

from marketexport.tasks.cron import parse_cron, resolve_wall_time

Runs = Callable[[str, str, date], list[datetime]]
# zone, spring-forward day, hour inside its gap, fall-back day, hour inside its repeat
ZONES = [
    ("Europe/Berlin", date(2024, 3, 31), 2, date(2024, 10, 27), 2),
    ("America/New_York", date(2024, 3, 10), 2, date(2024, 11, 3), 1),
    ("Australia/Sydney", date(2024, 10, 6), 2, date(2024, 4, 7), 2),
]


def _day_bounds(zone: str, day: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    start = resolve_wall_time(datetime(day.year, day.month, day.day), tz)
    following = day + timedelta(days=1)
    end = resolve_wall_time(datetime(following.year, following.month, following.day), tz)
    return start, end


def _collect(moments: Iterator[datetime], end: datetime) -> list[datetime]:
    found = []
    for moment in moments:
        if moment.astimezone(UTC) >= end:
            break
        found.append(moment.astimezone(UTC))
    return found


def croniter_runs(expression: str, zone: str, day: date) -> list[datetime]:
    start, end = _day_bounds(zone, day)
    walker = croniter(expression, (start - timedelta(seconds=1)).astimezone(ZoneInfo(zone)))
    return _collect(iter(lambda: walker.get_next(datetime), None), end)


def cronsim_runs(expression: str, zone: str, day: date) -> list[datetime]:
    start, end = _day_bounds(zone, day)
    return _collect(
        iter(CronSim(expression, (start - timedelta(seconds=1)).astimezone(ZoneInfo(zone)))), end
    )


def marketexport_runs(expression: str, zone: str, day: date) -> list[datetime]:
    start, end = _day_bounds(zone, day)
    tiny = timedelta(microseconds=1)
    return parse_cron(expression, zone).between(start - tiny, end - tiny)


def _local(moments: list[datetime], zone: str) -> list[str]:
    return [moment.astimezone(ZoneInfo(zone)).strftime("%H:%M") for moment in moments]


Zone = tuple[str, date, int, date, int]
SEPT = [date(2024, 9, 1) + timedelta(days=i) for i in range(45)]


def _days_of(runs: Runs, expression: str, zone: str) -> list[date]:
    return [day for day in SEPT if runs(expression, zone, day)]


def either_day_field(runs: Runs, row: Zone) -> bool:
    expected = [day for day in SEPT if day.day == 13 or day.weekday() == 4]
    return _days_of(runs, "0 12 13 * fri", row[0]) == expected


def star_day_field(runs: Runs, row: Zone) -> bool:
    expected = [day for day in SEPT if day.day % 2 == 1 and day.weekday() == 0]
    return _days_of(runs, "0 12 */2 * mon", row[0]) == expected


def gap_once(runs: Runs, row: Zone) -> bool:
    zone, spring, gap_hour = row[:3]
    return _local(runs(f"30 {gap_hour} * * *", zone, spring), zone) == ["03:00"]


def repeat_once(runs: Runs, row: Zone) -> bool:
    zone, fall, hour = row[0], row[3], row[4]
    wall = datetime(fall.year, fall.month, fall.day, hour, 30)
    first = wall.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)
    return runs(f"30 {hour} * * *", zone, fall) == [first]


def hourly_elapsed(runs: Runs, row: Zone) -> bool:
    zone, spring, fall = row[0], row[1], row[3]
    return (len(runs("0 * * * *", zone, spring)), len(runs("0 * * * *", zone, fall))) == (23, 25)


def minutes_of_fixed_hour(runs: Runs, row: Zone) -> bool:
    zone, spring, gap_hour, fall, repeat_hour = row
    counts = (
        len(runs(f"* {gap_hour} * * *", zone, spring)),
        len(runs(f"* {repeat_hour} * * *", zone, fall)),
    )
    return counts == (1, 60)


def two_hourly_fixed(runs: Runs, row: Zone) -> bool:
    zone, spring, fall = row[0], row[1], row[3]
    return (len(runs("0 */2 * * *", zone, spring)), len(runs("0 */2 * * *", zone, fall))) == (
        12,
        12,
    )


def macros(runs: Runs, row: Zone) -> bool:
    zone, spring = row[0], row[1]
    return runs("@daily", zone, spring) == runs("0 0 * * *", zone, spring) != []


RULES: dict[str, Callable[[Runs, Zone], bool]] = {
    "day fields: either matches when both are restricted": either_day_field,
    "day fields: a field starting with * counts as unrestricted": star_day_field,
    "fixed time in the spring gap: once, right after the gap": gap_once,
    "fixed time in the autumn repeat: once, first occurrence": repeat_once,
    "hourly: 23 runs on the spring day, 25 on the autumn day": hourly_elapsed,
    "every minute of a fixed hour: 1 run after the gap, 60 in the repeat": minutes_of_fixed_hour,
    "every two hours: 12 runs on both change days": two_hourly_fixed,
    "macros (@hourly ... @yearly)": macros,
}


def _passes(rule: Callable[[Runs, Zone], bool], runs: Runs, row: Zone) -> bool:
    try:
        return rule(runs, row)
    except Exception:  # a library that refuses the expression does not follow the rule
        return False


def measure(runs: Runs) -> dict[str, bool]:
    """Each rule -> whether the library follows it in all three zones."""
    return {name: all(_passes(rule, runs, row) for row in ZONES) for name, rule in RULES.items()}


MEASURED = {
    # rule: (croniter, cronsim, marketexport)
    "day fields: either matches when both are restricted": (True, True, True),
    "day fields: a field starting with * counts as unrestricted": (False, True, True),
    "fixed time in the spring gap: once, right after the gap": (True, True, True),
    "fixed time in the autumn repeat: once, first occurrence": (False, True, True),
    "hourly: 23 runs on the spring day, 25 on the autumn day": (True, True, True),
    "every minute of a fixed hour: 1 run after the gap, 60 in the repeat": (False, False, True),
    "every two hours: 12 runs on both change days": (False, False, True),
    "macros (@hourly ... @yearly)": (True, False, True),
}


@pytest.mark.parametrize(
    ("column", "runs"),
    [(0, croniter_runs), (1, cronsim_runs), (2, marketexport_runs)],
    ids=["croniter", "cronsim", "marketexport"],
)
def test_rule_table_as_measured(column: int, runs: Runs) -> None:
    measured = measure(runs)

    assert measured == {rule: row[column] for rule, row in MEASURED.items()}
