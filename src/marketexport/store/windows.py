"""Ordered scans in time windows, so that no store ever sorts a whole export at once.

A store sorts each window (a half-open time range holding at most about ``window_rows``
rows) on its own and the windows follow each other in time, so the concatenation is in
the full export order while the sort memory stays bounded by one window. Window bounds
come from one aggregate query: row counts per time bucket, merged greedily.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from ..datasets import Dataset
from ..request import Filter

BUCKETS = 1024
WINDOW_ROWS = 65_536


@dataclass(frozen=True)
class Window:
    """A half-open time range [start_ns, end_ns)."""

    start_ns: int
    end_ns: int

    def filters(self, spec: Dataset) -> list[Filter]:
        return [
            Filter(spec.time_column, ">=", (self.start_ns,)),
            Filter(spec.time_column, "<", (self.end_ns,)),
        ]


def bucket_width(first_ns: int, last_ns: int, buckets: int = BUCKETS) -> int:
    return max(1, (last_ns - first_ns) // buckets + 1)


def plan_windows(
    first_ns: int,
    width: int,
    counts: list[tuple[int, int]],
    window_rows: int = WINDOW_ROWS,
    last_ns: int | None = None,
) -> list[Window]:
    """Merge (bucket index, rows) pairs into windows of at most ``window_rows`` rows.

    A single bucket with more rows than that becomes a window of its own (rows that share
    one instant cannot be split by time). With ``last_ns``, no window ends after the
    instant past it (the last bucket's end could pass the largest 64-bit time).
    """
    windows: list[Window] = []
    start: int | None = None
    end = 0
    held = 0
    for bucket, rows in sorted(counts):
        bucket_start = first_ns + bucket * width
        if start is not None and held + rows > window_rows:
            windows.append(Window(start, end))
            start, held = None, 0
        if start is None:
            start = bucket_start
        end = bucket_start + width
        held += rows
    if start is not None:
        windows.append(Window(start, end if last_ns is None else min(end, last_ns + 1)))
    return windows


class WindowedReader:
    """Reads window after window through ``open_window`` and yields their batches."""

    def __init__(
        self,
        schema: pa.Schema,
        windows: list[Window],
        open_window: Callable[[Window], Iterator[pa.RecordBatch]],
    ) -> None:
        self.schema = schema
        self._windows = iter(windows)
        self._open_window = open_window
        self._current: Iterator[pa.RecordBatch] | None = None

    def __iter__(self) -> WindowedReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        while True:
            if self._current is None:
                window = next(self._windows)  # StopIteration ends the scan
                self._current = self._open_window(window)
            try:
                return next(self._current)
            except StopIteration:
                self._close_current()

    def _close_current(self) -> None:
        current, self._current = self._current, None
        close = getattr(current, "close", None)
        if close is not None:
            close()

    def close(self) -> None:
        self._close_current()
        self._windows = iter(())
