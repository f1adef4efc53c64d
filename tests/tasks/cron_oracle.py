"""An independent reference for the schedule rules: a minute-by-minute scan.

It shares no code with marketexport.tasks.cron or cronsim: its own small field parser
(enough for the expressions the tests use) and a scan over every UTC minute of a span,
applying the written rules literally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _value(index: int, text: str) -> int:
    if text.isdigit():
        return int(text)
    names = _NAMES[index]
    return names.index(text.lower()) + (1 if index == 3 else 0)


def field_values(index: int, text: str) -> set[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for item in text.split(","):
        body, _, step = item.partition("/")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            first, last = (_value(index, part) for part in body.split("-"))
        else:
            first = _value(index, body)
            last = high if step else first
        values.update(range(first, last + 1, int(step) if step else 1))
    if index == 4 and 7 in values:
        values.add(0)
    return values


class Oracle:
    """Which local wall-clock minutes a five-field expression matches (classic cron)."""

    def __init__(self, fields: str) -> None:
        parts = fields.split()
        self.sets = [field_values(i, part) for i, part in enumerate(parts)]
        # Classic cron: a day field starting with * does not count as restricted.
        self.days_either = not parts[2].startswith("*") and not parts[4].startswith("*")
        self.every_hour = self.sets[1] == set(range(24))

    def matches(self, wall: datetime) -> bool:
        minute, hour, dom, month, dow = self.sets
        if wall.minute not in minute or wall.hour not in hour or wall.month not in month:
            return False
        day_ok = wall.day in dom
        week_ok = (wall.isoweekday() % 7) in dow
        return (day_ok or week_ok) if self.days_either else (day_ok and week_ok)

    def instants(self, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
        """Due instants in ``[start, end)`` (UTC), by scanning every minute."""
        scan, walls = _scan(zone, start, end)
        if self.every_hour:
            return [t for t, wall in zip(scan, walls, strict=True) if self.matches(wall)]
        found: set[datetime] = set()
        seen: set[datetime] = set()
        for i, wall in enumerate(walls):
            if wall not in seen and self.matches(wall):
                found.add(scan[i])  # first occurrence of a repeated time
            seen.add(wall)
            if i and wall - walls[i - 1] > timedelta(minutes=1):
                # A gap: every skipped matching time runs at this first instant after it.
                skipped = walls[i - 1] + timedelta(minutes=1)
                while skipped < wall:
                    if self.matches(skipped):
                        found.add(scan[i])
                    skipped += timedelta(minutes=1)
        return sorted(found)


@lru_cache(maxsize=64)
def _scan(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[list[datetime], list[datetime]]:
    """Every UTC minute of ``[start, end)`` and its local wall-clock time."""
    minutes = int((end - start).total_seconds() // 60)
    scan = [start + timedelta(minutes=i) for i in range(minutes)]
    return scan, [t.astimezone(zone).replace(tzinfo=None) for t in scan]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
