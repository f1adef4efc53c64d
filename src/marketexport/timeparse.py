"""Parsing of user-given instants into integer nanoseconds since the epoch (UTC)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from .errors import RequestError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_NS = -(2**63) + 1
MAX_NS = 2**63 - 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"^-?\d+$")
_FRACTION = re.compile(r"^(?P<head>[^.]*T\d{2}:\d{2}:\d{2})\.(?P<frac>\d+)(?P<tail>.*)$")

ACCEPTED_TIME_FORMS = (
    "a date (2024-01-31), an ISO 8601 date-time with or without offset "
    "(2024-01-31T12:00:00Z, 2024-01-31 12:00:00+02:00; none means UTC) "
    "or epoch milliseconds (1706702400000)"
)


def datetime_to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch for an aware (or naive = UTC) datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ns_to_iso(ns: int) -> str:
    """ISO 8601 UTC text with a Z, with as many fraction digits as the value needs."""
    seconds, rest_ns = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest_ns == 0:
        return moment + "Z"
    if rest_ns % 1_000_000 == 0:
        return f"{moment}.{rest_ns // 1_000_000:03d}Z"
    if rest_ns % 1000 == 0:
        return f"{moment}.{rest_ns // 1000:06d}Z"
    return f"{moment}.{rest_ns:09d}Z"


def parse_instant(text: str, *, what: str = "time") -> int:
    """Parse ``text`` as an instant and return nanoseconds since the epoch (UTC).

    Raises:
        RequestError: naming the text and the accepted forms.
    """
    value = text.strip()
    try:
        if _DIGITS.match(value) and value.isascii():
            ns = int(value) * 1_000_000
        elif _DATE.match(value) and value.isascii():
            day = date.fromisoformat(value)
            ns = datetime_to_ns(datetime(day.year, day.month, day.day, tzinfo=UTC))
        else:
            ns = _parse_datetime(value.replace(" ", "T", 1))
    except (ValueError, OverflowError):
        raise RequestError(
            f"invalid {what} {text!r} (expected {ACCEPTED_TIME_FORMS})", value=text
        ) from None
    if not MIN_NS <= ns <= MAX_NS:
        raise RequestError(
            f"{what} {text!r} is out of range (times from 1678-01-01 to 2262-04-11 UTC, "
            "the span of nanosecond timestamps)",
            value=text,
        )
    return ns


def _parse_datetime(value: str) -> int:
    # Python's parser stops at microseconds; keep nanoseconds by parsing them apart.
    extra_ns = 0
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    match = _FRACTION.match(value)
    if match:
        frac = match["frac"]
        if len(frac) > 9:
            raise ValueError(value)
        digits = frac.ljust(9, "0")
        extra_ns = int(digits[6:])
        value = f"{match['head']}.{digits[:6]}{match['tail']}"
    return datetime_to_ns(datetime.fromisoformat(value)) + extra_ns
