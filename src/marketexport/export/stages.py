"""The threads of an export: a scan read ahead, and batches encoded in parallel in order.

Both stages hand batches on in the order the store gave them, and both stop their threads
when the generator ends or is closed, before the caller closes the store's reader.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

_DONE = object()


def prefetched(batches: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Read ``batches`` on a thread of its own, at most ``depth`` batches ahead.

    For a writer that must run alone (Parquet), the store's scan then overlaps with the
    writing instead of alternating with it: both spend their time outside the GIL. The
    reading thread has stopped when this generator ends or is closed, so the caller may
    close the store's reader afterwards.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stopping = threading.Event()

    def hand_over(item: Any) -> bool:
        """Put ``item`` in the queue; False when the consumer has gone away meanwhile."""
        while not stopping.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
            last: Any = _DONE
        except BaseException as exc:  # handed to the consumer, raised there
            last = exc
        hand_over(last)

    reader = threading.Thread(target=produce, name="export-scan", daemon=True)
    reader.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopping.set()
        reader.join()


def encoded_in_order(
    batches: Iterator[pa.RecordBatch],
    encode: Callable[[pa.RecordBatch], Any],
    threads: int,
) -> Iterator[tuple[pa.RecordBatch, Any]]:
    """Encode batches on a small thread pool, yielding results in batch order."""
    if threads <= 1:
        for batch in batches:
            yield batch, encode(batch)
        return
    pending: deque[tuple[pa.RecordBatch, Future[Any]]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="encode") as pool:
        try:
            for batch in batches:
                pending.append((batch, pool.submit(encode, batch)))
                if len(pending) >= threads:
                    done_batch, future = pending.popleft()
                    yield done_batch, future.result()
            while pending:
                done_batch, future = pending.popleft()
                yield done_batch, future.result()
        finally:
            for _, future in pending:
                future.cancel()
