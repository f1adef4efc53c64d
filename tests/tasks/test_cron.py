"""Cron expressions in IANA zones: the written DST rules, day fields, macros, refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketexport.errors import RequestError
from marketexport.tasks.cron import parse_cron, resolve_wall_time
from marketexport.tasks.windows_rel import parse_window
from tests.tasks.cron_oracle import Oracle, utc

ONE_US = timedelta(microseconds=1)

# (zone, spring-forward day, time inside its gap, fall-back day, time inside its repeat)
DST_ZONES = [
    ("Europe/Berlin", date(2024, 3, 31), "30 2", date(2024, 10, 27), "30 2"),
    ("America/New_York", date(2024, 3, 10), "30 2", date(2024, 11, 3), "30 1"),
    ("Australia/Sydney", date(2024, 10, 6), "30 2", date(2024, 4, 7), "30 2"),
]
ZONE_NAMES = [row[0] for row in DST_ZONES]


def local_midnight(zone: str, day: date) -> datetime:
    return resolve_wall_time(datetime(day.year, day.month, day.day), ZoneInfo(zone))


def runs_on(expression: str, zone: str, day: date) -> list[datetime]:
    """Due instants within the local day ``[00:00, next 00:00)``."""
    start = local_midnight(zone, day)
    end = local_midnight(zone, day + timedelta(days=1))
    return parse_cron(expression, zone).between(start - ONE_US, end - ONE_US)


def local_text(moments: list[datetime], zone: str) -> list[str]:
    return [m.astimezone(ZoneInfo(zone)).strftime("%H:%M%z") for m in moments]


@pytest.mark.parametrize(("zone", "spring", "gap_time", "fall", "repeat_time"), DST_ZONES)
def test_daily_time_in_the_spring_gap_runs_once_right_after_the_gap(
    zone: str, spring: date, gap_time: str, fall: date, repeat_time: str
) -> None:
    expression = f"{gap_time} * * *"

    runs = runs_on(expression, zone, spring)

    assert [run.astimezone(ZoneInfo(zone)).strftime("%H:%M") for run in runs] == ["03:00"]
    # 03:00 after the jump is the first valid instant: one second before it is 01:59:59.
    before = (runs[0] - timedelta(seconds=1)).astimezone(ZoneInfo(zone))
    assert before.strftime("%H:%M:%S") == "01:59:59"
    # The days around it run at their normal 02:30.
    for day in (spring - timedelta(days=1), spring + timedelta(days=1)):
        assert local_text(runs_on(expression, zone, day), zone)[0][:5] == "02:30"


@pytest.mark.parametrize(("zone", "spring", "gap_time", "fall", "repeat_time"), DST_ZONES)
def test_daily_time_in_the_fall_back_repeat_runs_once_at_its_first_occurrence(
    zone: str, spring: date, gap_time: str, fall: date, repeat_time: str
) -> None:
    expression = f"{repeat_time} * * *"
    wall = datetime.combine(fall, datetime.strptime(repeat_time, "%M %H").time())
    first = wall.replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=ZoneInfo(zone), fold=1).astimezone(UTC)

    runs = runs_on(expression, zone, fall)

    assert second - first == timedelta(hours=1)
    assert runs == [first]


@pytest.mark.parametrize("zone", ZONE_NAMES)
def test_hourly_job_runs_23_and_25_times_and_its_windows_tile_the_day(zone: str) -> None:
    spring, fall = next((row[1], row[3]) for row in DST_ZONES if row[0] == zone)
    cron = parse_cron("0 * * * *", zone)
    window = parse_window("previous-hour")

    for day, expected in ((spring, 23), (fall, 25), (spring - timedelta(days=2), 24)):
        start = local_midnight(zone, day)
        end = local_midnight(zone, day + timedelta(days=1))
        # The runs at 01:00 ... 24:00 export the day's hours.
        runs = cron.between(start, end)
        bounds = [window.bounds(run, ZoneInfo(zone)) for run in runs]

        assert len(runs) == expected
        assert bounds[0][0] == int(start.timestamp()) * 10**9
        assert bounds[-1][1] == int(end.timestamp()) * 10**9
        for (_, end_ns), (next_start, _) in zip(bounds, bounds[1:], strict=False):
            assert end_ns == next_start
        assert {high - low for low, high in bounds} == {3600 * 10**9}  # type: ignore[operator]


@pytest.mark.parametrize("zone", ZONE_NAMES)
def test_quarter_hourly_job_counts_elapsed_time(zone: str) -> None:
    spring, fall = next((row[1], row[3]) for row in DST_ZONES if row[0] == zone)

    spring_runs = runs_on("*/15 * * * *", zone, spring)
    fall_runs = runs_on("*/15 * * * *", zone, fall)

    assert len(spring_runs) == 92
    assert len(fall_runs) == 100
    gaps = {later - earlier for earlier, later in zip(fall_runs, fall_runs[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}


def test_hour_restricted_schedules_are_fixed_local_times() -> None:
    # "Every minute of hour 2" names fixed local times: once after the gap, the first
    # occurrence of each repeated minute. "Every two hours" keeps 12 runs on both days.
    zone = "Europe/Berlin"

    assert local_text(runs_on("* 2 * * *", zone, date(2024, 3, 31)), zone) == ["03:00+0200"]
    assert len(runs_on("* 2 * * *", zone, date(2024, 10, 27))) == 60
    assert len(runs_on("0 */2 * * *", zone, date(2024, 3, 31))) == 12
    fall = local_text(runs_on("0 */2 * * *", zone, date(2024, 10, 27)), zone)
    assert fall[:3] == ["00:00+0200", "02:00+0200", "04:00+0100"]
    assert len(fall) == 12


@pytest.mark.parametrize("zone", ["UTC", *ZONE_NAMES])
def test_both_day_fields_restricted_match_either(zone: str) -> None:
    cron = parse_cron("0 9 13 * fri", zone)
    start = resolve_wall_time(datetime(2024, 9, 1), ZoneInfo(zone))

    runs = cron.next_after(start, count=12)

    days = [run.astimezone(ZoneInfo(zone)).date() for run in runs]
    expected = [
        day
        for day in (date(2024, 9, 1) + timedelta(days=i) for i in range(120))
        if day.day == 13 or day.weekday() == 4
    ][:12]
    assert days == expected
    assert date(2024, 10, 13) in days  # a Sunday, matched by the day of month alone
    assert {run.astimezone(ZoneInfo(zone)).strftime("%H:%M") for run in runs} == {"09:00"}


def test_a_day_field_starting_with_a_star_is_unrestricted_as_in_classic_cron() -> None:
    # "*/2" in the day of month: classic cron then requires both fields (odd days AND
    # Mondays), it does not take either.
    runs = parse_cron("0 0 */2 * mon").next_after(datetime(2024, 10, 1, tzinfo=UTC), count=4)

    assert [run.date() for run in runs] == [
        date(2024, 10, 7),
        date(2024, 10, 21),
        date(2024, 11, 11),
        date(2024, 11, 25),
    ]


@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
@pytest.mark.parametrize("zone", ZONE_NAMES)
def test_macros_equal_their_five_fields(macro: str, fields: str, zone: str) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)

    from_macro = parse_cron(macro, zone).next_after(start, count=30)
    from_fields = parse_cron(fields, zone).next_after(start, count=30)

    assert from_macro == from_fields
    assert len(from_macro) == 30


@pytest.mark.parametrize("zone", ZONE_NAMES)
def test_macros_fall_on_local_calendar_boundaries(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2024, 3, 5, 12, tzinfo=UTC)

    weekly = parse_cron("@weekly", zone).next_after(start, count=3)
    monthly = parse_cron("@monthly", zone).next_after(start, count=3)
    yearly = parse_cron("@yearly", zone).next_after(start, count=2)
    hourly_spring = runs_on("@hourly", zone, next(r[1] for r in DST_ZONES if r[0] == zone))

    assert {w.astimezone(tz).strftime("%a %H:%M") for w in weekly} == {"Sun 00:00"}
    assert [m.astimezone(tz).strftime("%m-%d %H:%M") for m in monthly] == [
        "04-01 00:00",
        "05-01 00:00",
        "06-01 00:00",
    ]
    assert [y.astimezone(tz).strftime("%Y-%m-%d %H:%M") for y in yearly] == [
        "2025-01-01 00:00",
        "2026-01-01 00:00",
    ]
    assert len(hourly_spring) == 23


def test_daily_macro_where_midnight_does_not_exist_runs_at_the_first_valid_instant() -> None:
    # Havana moves its clocks from 00:00 to 01:00: the day starts at 01:00.
    runs = runs_on("@daily", "America/Havana", date(2024, 3, 10))

    assert local_text(runs, "America/Havana") == ["01:00-0400"]


def test_names_ranges_lists_and_steps() -> None:
    cron = parse_cron("5,35 8-10/2 * jan-mar MON-wed", "Europe/Berlin")

    runs = cron.next_after(datetime(2024, 1, 1, tzinfo=UTC), count=6)

    local = [r.astimezone(ZoneInfo("Europe/Berlin")).strftime("%a %d %H:%M") for r in runs]
    assert local == [
        "Mon 01 08:05",
        "Mon 01 08:35",
        "Mon 01 10:05",
        "Mon 01 10:35",
        "Tue 02 08:05",
        "Tue 02 08:35",
    ]


def test_sunday_is_0_or_7() -> None:
    after = datetime(2024, 10, 1, tzinfo=UTC)

    assert parse_cron("0 0 * * 7").next_after(after) == parse_cron("0 0 * * 0").next_after(after)
    assert parse_cron("0 0 * * sun").next_after(after)[0].date() == date(2024, 10, 6)


def test_latest_and_previous_find_rare_instants() -> None:
    leap = parse_cron("0 0 29 2 *")
    moment = datetime(2031, 6, 1, tzinfo=UTC)

    assert leap.latest(moment) == [datetime(2028, 2, 29, tzinfo=UTC)]
    assert leap.previous_before(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(
        2024, 2, 29, tzinfo=UTC
    )
    hourly = parse_cron("0 * * * *", "Europe/Berlin")
    assert hourly.latest(utc(2024, 10, 27, 1, 30), count=3) == [
        utc(2024, 10, 26, 23),
        utc(2024, 10, 27, 0),
        utc(2024, 10, 27, 1),
    ]


def test_iteration_starting_inside_a_repeated_hour_keeps_the_second_occurrence() -> None:
    cron = parse_cron("0,30 * * * *", "Europe/Berlin")

    # 00:50Z is 02:50 CEST, the first pass of the repeated hour; 02:00 and 02:30 CET follow.
    after_first = cron.next_after(utc(2024, 10, 27, 0, 50), count=3)
    after_second = cron.next_after(utc(2024, 10, 27, 1, 10), count=2)

    assert after_first == [utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2)]
    assert after_second == [utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2)]


ORACLE_ZONES = [
    ("Europe/Berlin", [date(2024, 3, 31), date(2024, 10, 27)]),
    ("America/New_York", [date(2024, 3, 10), date(2024, 11, 3)]),
    ("Australia/Sydney", [date(2024, 4, 7), date(2024, 10, 6)]),
    ("Australia/Lord_Howe", [date(2024, 4, 7), date(2024, 10, 6)]),  # 30-minute shifts
    ("America/Havana", [date(2024, 3, 10), date(2024, 11, 3)]),  # midnight transitions
    ("Asia/Kolkata", [date(2024, 3, 31)]),  # +05:30, no DST
]
ORACLE_EXPRESSIONS = [
    "0 * * * *",
    "*/20 * * * *",
    "45 * * * 0",
    "30 2 * * *",
    "0,30 0-3 * * *",
    "* 2 * * *",
    "0 */2 * * *",
    "0 0 * * *",
    "15 1 1-10 * sun",
]


@pytest.mark.parametrize(("zone", "days"), ORACLE_ZONES)
def test_instants_equal_a_minute_by_minute_scan(zone: str, days: list[date]) -> None:
    for day in days:
        start = utc(day.year, day.month, day.day) - timedelta(days=1)
        end = start + timedelta(days=3)
        for expression in ORACLE_EXPRESSIONS:
            expected = Oracle(expression).instants(ZoneInfo(zone), start, end)

            found = parse_cron(expression, zone).between(start - ONE_US, end - ONE_US)

            assert found == expected, (zone, day, expression)


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        ("", "empty"),
        ("* * * *", "4 fields"),
        ("* * * * * *", "6 fields"),
        ("60 * * * *", "minute field '60'"),
        ("* 24 * * *", "hour field '24'"),
        ("* * 0 * *", "day-of-month field '0'"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * 8", "day-of-week field '8'"),
        ("5-1 * * * *", "minute field '5-1'"),
        ("*/0 * * * *", "minute field '*/0'"),
        ("0 0 L * *", "'L' is not a valid name"),
        ("0 0 * * 5#2", "day-of-week field '5#2'"),
        ("0 0 ? * *", "day-of-month field '?'"),
        ("0 0 * foo *", "'foo' is not a valid name"),
        ("0 0 * * mon-fry", "'fry' is not a valid name"),
        ("@every_minute", "unknown macro"),
        ("0 0 30 2 *", "day-of-month field '30'"),
    ],
)
def test_invalid_expressions_are_refused_naming_them(expression: str, named: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_cron(expression, "UTC")

    message = str(caught.value)
    assert f"invalid cron expression {' '.join(expression.split())!r}" in message
    assert named in message


@pytest.mark.parametrize("zone", ["Europe/Berln", "Mars/Olympus", "", "../../etc/passwd", "+02"])
def test_unknown_zones_are_refused_naming_them(zone: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_cron("0 0 * * *", zone)

    assert f"unknown time zone {zone!r}" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_close_zone_name_is_suggested() -> None:
    with pytest.raises(RequestError, match="did you mean Europe/Berlin"):
        parse_cron("0 0 * * *", "Europe/Berln")
