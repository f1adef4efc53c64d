"""Windows relative to a schedule's instant, and file names rendered from the instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketexport.errors import RequestError
from marketexport.tasks.cron import parse_cron, resolve_wall_time
from marketexport.tasks.windows_rel import (
    check_file_name_template,
    parse_window,
    render_file_name,
)
from marketexport.timeparse import datetime_to_ns, ns_to_iso

BERLIN = ZoneInfo("Europe/Berlin")
HOUR_NS = 3600 * 10**9


def local_ns(zone: ZoneInfo, *args: int) -> int:
    return datetime_to_ns(resolve_wall_time(datetime(*args), zone))  # type: ignore[arg-type]


def bounds_iso(text: str, instant: datetime, zone: ZoneInfo, **kwargs: object) -> list[str]:
    start, end = parse_window(text).bounds(instant, zone, **kwargs)  # type: ignore[arg-type]
    return [ns_to_iso(start) if start is not None else "open", ns_to_iso(end)]


def test_previous_day_is_the_local_day_before_the_instant() -> None:
    instant = datetime(2024, 1, 25, 0, 15, tzinfo=BERLIN)

    assert bounds_iso("previous-day", instant, BERLIN) == [
        "2024-01-23T23:00:00Z",
        "2024-01-24T23:00:00Z",
    ]
    # The same instant is 23:15 on the 24th in UTC: a UTC schedule exports the 23rd.
    assert bounds_iso("previous-day", instant, ZoneInfo("UTC")) == [
        "2024-01-23T00:00:00Z",
        "2024-01-24T00:00:00Z",
    ]
    assert bounds_iso("previous-day", instant.replace(tzinfo=UTC), ZoneInfo("UTC")) == [
        "2024-01-24T00:00:00Z",
        "2024-01-25T00:00:00Z",
    ]


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
        ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
        ("Australia/Sydney", date(2024, 10, 6), date(2024, 4, 7)),
    ],
)
def test_daily_previous_day_windows_tile_the_days_of_a_dst_change(
    zone: str, spring: date, fall: date
) -> None:
    tz = ZoneInfo(zone)
    for day, hours in ((spring, 23), (fall, 25)):
        cron = parse_cron("15 0 * * *", zone)
        first_run = datetime(day.year, day.month, day.day, tzinfo=tz) - timedelta(days=2)
        runs = cron.next_after(first_run, count=5)
        windows = [parse_window("previous-day").bounds(run, tz) for run in runs]

        for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
            assert end == start
        # The run on the day after the change exports the 23- or 25-hour day.
        lengths = {
            datetime.fromtimestamp(start // 10**9, tz).date(): (end - start) // HOUR_NS  # type: ignore[operator]
            for start, end in windows
        }
        assert lengths[day] == hours
        assert windows[3][0] == local_ns(tz, day.year, day.month, day.day)


def test_previous_hour_week_and_month() -> None:
    instant = datetime(2024, 3, 1, 0, 5, tzinfo=BERLIN)  # a Friday, 2024 is a leap year

    assert bounds_iso("previous-hour", instant, BERLIN) == [
        "2024-02-29T22:00:00Z",
        "2024-02-29T23:00:00Z",
    ]
    assert bounds_iso("previous-week", instant, BERLIN) == [
        "2024-02-18T23:00:00Z",
        "2024-02-25T23:00:00Z",
    ]
    assert bounds_iso("previous-month", instant, BERLIN) == [
        "2024-01-31T23:00:00Z",
        "2024-02-29T23:00:00Z",
    ]
    # April's month starts in summer time: its window spans the March change.
    april = datetime(2024, 4, 1, 0, 15, tzinfo=BERLIN)
    start, end = parse_window("previous-month").bounds(april, BERLIN)
    assert (end - start) // HOUR_NS == 31 * 24 - 1  # type: ignore[operator]


def test_last_and_between_count_back_from_the_instant() -> None:
    instant = datetime(2024, 3, 31, 3, 10, tzinfo=BERLIN)  # just after the spring gap

    assert bounds_iso("last:15m", instant, BERLIN) == [
        "2024-03-31T00:55:00Z",
        "2024-03-31T01:10:00Z",
    ]
    assert bounds_iso("last:2h", instant, BERLIN) == [
        "2024-03-30T23:10:00Z",
        "2024-03-31T01:10:00Z",
    ]
    assert bounds_iso("last:30s", instant, BERLIN) == [
        "2024-03-31T01:09:30Z",
        "2024-03-31T01:10:00Z",
    ]
    # Days are calendar days in the zone: 03:10 the day before, 23 hours earlier.
    assert bounds_iso("last:1d", instant, BERLIN) == [
        "2024-03-30T02:10:00Z",
        "2024-03-31T01:10:00Z",
    ]
    assert bounds_iso("between:-65m,-5m", instant, BERLIN) == [
        "2024-03-31T00:05:00Z",
        "2024-03-31T01:05:00Z",
    ]


def test_previous_interval_and_since_last_success() -> None:
    cron = parse_cron("0 */6 * * *")
    instant = datetime(2024, 5, 2, 6, tzinfo=UTC)
    previous = cron.previous_before(instant)

    assert bounds_iso("previous-interval", instant, ZoneInfo("UTC"), previous_instant=previous) == [
        "2024-05-02T00:00:00Z",
        "2024-05-02T06:00:00Z",
    ]
    last_end = datetime_to_ns(datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert bounds_iso(
        "since-last-success", instant, ZoneInfo("UTC"), last_success_end_ns=last_end
    ) == ["2024-05-01T12:00:00Z", "2024-05-02T06:00:00Z"]
    assert bounds_iso("since-last-success", instant, ZoneInfo("UTC")) == [
        "open",
        "2024-05-02T06:00:00Z",
    ]


def test_canonical_text_round_trips() -> None:
    for text in (
        "previous-day",
        "previous-hour",
        "previous-week",
        "previous-month",
        "previous-interval",
        "since-last-success",
        "last:15m",
        "last:1d",
        "between:-65m,-5m",
    ):
        assert parse_window(text).text == text
    assert parse_window(" Previous-Day ").text == "previous-day"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("between:-5m,-65m", "inverted window 'between:-5m,-65m'"),
        ("between:-5m,-5m", "inverted window 'between:-5m,-5m'"),
        ("between:-1h,-60m", "inverted window 'between:-1h,-60m'"),
        ("last:0m", "inverted window 'last:0m'"),
        ("last:-5m", "invalid window 'last:-5m'"),
        ("between:5m,0m", "invalid window 'between:5m,0m'"),
        ("last:15", "invalid window 'last:15'"),
        ("last:15y", "invalid window 'last:15y'"),
        ("yesterday", "invalid window 'yesterday'"),
        ("previous-year", "invalid window 'previous-year'"),
        ("", "invalid window ''"),
    ],
)
def test_invalid_or_inverted_windows_are_refused_naming_them(text: str, named: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_window(text)

    assert named in str(caught.value)
    assert caught.value.exit_code == 2


def test_file_name_uses_the_instant_in_the_zone() -> None:
    instant = datetime(2024, 1, 24, 23, 15, tzinfo=UTC)  # already the 25th in Berlin
    window = (datetime_to_ns(instant) - 24 * HOUR_NS, datetime_to_ns(instant))

    name = render_file_name(
        "candles_{schedule}_{instant:%Y%m%d}_{instant_utc:%H%M}Z_{start:%d}-{end:%d}{ext}",
        instant=instant,
        zone=BERLIN,
        window=window,
        schedule="daily",
        extension=".csv.gz",
    )

    assert name == "candles_daily_20240125_2315Z_24-25.csv.gz"


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{when:%Y}.csv", "unknown field {when}"),
        ("{instant.tzinfo}.csv", "unknown field {instant.tzinfo}"),
        ("{instant!r}.csv", "unknown field {instant}"),
        ("../{instant:%Y}.csv", "not a plain file name"),
        ("a/{instant:%Y}.csv", "not a plain file name"),
        (".hidden{ext}", "not a plain file name"),
        ("{instant:%Y/%m}.csv", "not a plain file name"),
        ("{instant:%Y", "invalid file name template"),
    ],
)
def test_bad_file_name_templates_are_refused(template: str, named: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_file_name_template(template)

    assert named in str(caught.value)
    assert repr(template) in str(caught.value)
