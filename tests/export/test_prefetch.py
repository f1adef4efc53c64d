"""The scan thread that feeds a writer which must run alone (Parquet)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from marketexport.export.stages import prefetched


def _scan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "export-scan"]


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    assert list(prefetched(iter(range(100)))) == list(range(100))
    assert _scan_threads() == []


def test_an_error_in_the_scan_reaches_the_consumer_after_the_good_items() -> None:
    def scan() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("disk went away at batch 3")

    seen: list[int] = []
    with pytest.raises(ValueError, match="batch 3"):
        for item in prefetched(scan()):
            seen.append(item)
    assert seen == [1, 2]
    assert _scan_threads() == []


def test_closing_early_stops_the_scan_before_close_returns() -> None:
    produced: list[int] = []

    def scan() -> Iterator[int]:
        for i in range(1_000_000):
            produced.append(i)
            yield i

    stream = prefetched(scan(), depth=1)
    assert next(stream) == 0
    stream.close()
    assert _scan_threads() == []
    # The scan ran at most a batch or two ahead of the consumer, never to the end.
    assert len(produced) <= 4
