"""Arrow batches between PostgreSQL and the store schema, both ways.

Reading: the scan query sends decimals as text (exact; Arrow parses them straight into
decimal128(38, 22)) and each time as microseconds plus its nanos companion, joined here into
timestamp[ns]. Writing: times are split the other way (floor to the microsecond, the rest
in nanos) and decimals travel as decimal128, which the driver's COPY writes as numeric.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import DECIMAL_TYPE, STORE_TIME_TYPE, Dataset
from ..decimals import FITS_TEXT, text_to_decimal
from ..errors import StoreError
from .pglayout import nanos_name

logger = logging.getLogger(__name__)

WRITE_TIME_TYPE = pa.timestamp("us", tz="UTC")
# Converted batches read ahead of the caller (each from about BATCH_HINT_BYTES of rows).
PREFETCH = 2
# Longest wait for the reading thread when a scan is closed.
JOIN_TIMEOUT_S = 30.0
_END = object()
_EPOCH = datetime(1970, 1, 1)
_FITS = re.compile(FITS_TEXT)


def _decimals(column: pa.Array, name: str, where: str) -> pa.Array:
    try:
        return text_to_decimal(column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Find the value to name it; this runs only on a batch that failed (or may have).
    values = column.to_pylist()
    for value in values:
        # trailing zeros of a larger scale (numeric keeps the scale it was given) are no misfit
        plain = value.rstrip("0").rstrip(".") if value is not None and "." in value else value
        if plain is not None and not _FITS.fullmatch(plain):
            raise misfit_error(name, value, where) from None
    # every value fits (one near 1e16 looked too large as a float): built one by one
    return pa.array([None if v is None else Decimal(v) for v in values], DECIMAL_TYPE)


def misfit_error(name: str, value: str, where: str, kind: str = "decimal") -> StoreError:
    """The error for a stored value the store schema cannot hold (the export stops)."""
    if kind == "time":
        limit = "the time range 1677-09-21 to 2262-04-11 (nanoseconds in 64 bits)"
    else:
        limit = (
            f"decimal(38, {DECIMAL_TYPE.scale}) (at most "
            f"{DECIMAL_TYPE.precision - DECIMAL_TYPE.scale} integer and "
            f"{DECIMAL_TYPE.scale} fraction digits, no NaN or infinity)"
        )
    return StoreError(
        f"value {value!r} of column {name!r} in {where} does not fit {limit}; export aborted",
        column=name,
        value=value,
    )


def join_nanos(micros: pa.Array, nanos: pa.Array) -> pa.Array:
    """timestamp[ns] from a timestamp[us] column and its 0-999 nanos."""
    whole = pc.multiply_checked(pc.cast(micros, pa.int64()), 1000)
    joined = pc.add_checked(whole, pc.cast(nanos, pa.int64()))
    return pc.cast(joined, pa.int64()).view(STORE_TIME_TYPE)


def _times(micros: pa.Array, nanos: pa.Array, name: str, where: str) -> pa.Array:
    try:
        return join_nanos(micros, nanos)
    except pa.ArrowInvalid:
        pass
    # Name the first time outside 64-bit nanoseconds; this runs only on the failing batch.
    whole = pc.cast(micros, pa.int64()).to_pylist()
    for us, ns in zip(whole, nanos.to_pylist(), strict=True):
        if us is not None and not -(2**63) <= us * 1000 + (ns or 0) < 2**63:
            try:
                shown = (_EPOCH + timedelta(microseconds=us)).isoformat(sep=" ")
            except OverflowError:  # beyond datetime's years 1-9999
                shown = f"{us} microseconds from 1970-01-01"
            text = f"{shown} + {ns} ns" if ns else shown
            raise misfit_error(name, text, where, kind="time") from None
    raise StoreError(f"column {name!r} in {where} could not be read as times")


def to_store_batch(
    batch: pa.RecordBatch, spec: Dataset, columns: list[str], where: str
) -> pa.RecordBatch:
    """A scan batch (decimals as text, times split) in the store schema."""
    arrays = []
    fields = []
    for name in columns:
        column = spec.column(name)
        data = batch.column(name)
        if isinstance(data.type, pa.ExtensionType):
            data = data.storage
        if column.kind == "decimal":
            data = _decimals(data, name, where)
        elif column.kind == "time":
            data = _times(data, batch.column(nanos_name(name)), name, where)
        elif data.type != column.arrow_type:
            data = pc.cast(data, column.arrow_type)
        arrays.append(data)
        fields.append(spec.store_schema.field(name))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def write_schema(spec: Dataset, columns: list[str]) -> pa.Schema:
    """The temporary table's schema: the given columns, each time followed by its nanos."""
    fields = []
    for name in columns:
        column = spec.column(name)
        if column.kind == "time":
            fields.append(pa.field(name, WRITE_TIME_TYPE))
            fields.append(pa.field(nanos_name(name), pa.int16()))
        else:
            fields.append(pa.field(name, column.arrow_type))
    return pa.schema(fields)


def to_write_batch(
    batch: pa.RecordBatch, spec: Dataset, columns: list[str], keeps_nanos: dict[str, bool]
) -> pa.RecordBatch:
    """A store-schema batch in the temporary table's schema (see :func:`write_schema`).

    Raises:
        StoreError: a time has nanoseconds but its table keeps microseconds only.
    """
    table = pa.Table.from_batches([batch]).cast(spec.store_schema)
    arrays = []
    for name in columns:
        data = table.column(name).combine_chunks()
        if spec.column(name).kind != "time":
            arrays.append(data)
            continue
        ns = pc.cast(data, pa.int64())
        # floor division, so that times before 1970 keep a 0-999 remainder too
        rest = pc.subtract(ns, pc.multiply(pc.divide(ns, 1000), 1000))
        negative = pc.less(rest, 0)
        rest = pc.if_else(negative, pc.add(rest, 1000), rest)
        micros = pc.divide(pc.subtract(ns, rest), 1000)
        if not keeps_nanos.get(name, True) and pc.any(pc.not_equal(rest, 0)).as_py():
            raise StoreError(
                f"column {name!r} has times with nanoseconds, but its table keeps "
                f"microseconds only (add a {nanos_name(name)} smallint column or map it "
                "in [postgres.tables.<dataset>.columns]); nothing imported",
                column=name,
            )
        arrays.append(pc.cast(micros, pa.int64()).view(pa.timestamp("us")).cast(WRITE_TIME_TYPE))
        arrays.append(pc.fill_null(pc.cast(rest, pa.int16()), 0))
    return pa.RecordBatch.from_arrays(arrays, schema=write_schema(spec, columns))


class ScanReader:
    """Batches of at most ``batch_rows`` rows from a driver's batch reader.

    One thread reads the next batches and another converts them while the caller formats
    the current one (the driver releases the GIL while it waits for the server), at most
    PREFETCH ahead, so memory stays flat. ``convert`` turns a driver batch into what the
    caller gets, described by ``schema`` (default: the store schema of ``columns``).
    ``wrap`` turns a driver error into a StoreError; ``cancel`` stops the server's query
    when the scan is closed early; ``on_close`` runs once, told whether the scan ended
    cleanly, and releases the connection.
    """

    def __init__(
        self,
        source: Any,
        spec: Dataset,
        columns: list[str],
        batch_rows: int,
        where: str,
        *,
        wrap: Callable[[BaseException], StoreError],
        cancel: Callable[[], None],
        on_close: Callable[[bool], None],
        convert: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
        schema: pa.Schema | None = None,
    ) -> None:
        self.schema = schema or pa.schema([spec.store_schema.field(name) for name in columns])
        self._source = source
        self._convert = convert or partial(to_store_batch, spec=spec, columns=columns, where=where)
        self._batch_rows = max(1, batch_rows)
        self._wrap = wrap
        self._cancel = cancel
        self._on_close: Callable[[bool], None] | None = on_close
        self._pending: Iterator[pa.RecordBatch] = iter(())
        self._queue: queue.Queue[object] = queue.Queue(maxsize=PREFETCH)
        self._stop = threading.Event()
        self._ended = False  # the producer has read the whole result
        self._converter = ThreadPoolExecutor(1, thread_name_prefix="postgres-convert")
        self._thread = threading.Thread(target=self._produce, name="postgres-scan", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    batch = self._source.read_next_batch()
                except StopIteration:
                    self._ended = True
                    self._put(_END)
                    return
                # converted on another thread, while this one reads the next batch
                self._put(self._converter.submit(self._convert, batch))
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._put(exc)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> ScanReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        while True:
            piece = next(self._pending, None)
            if piece is not None:
                return piece
            if self._on_close is None:
                raise StopIteration
            item = self._queue.get()
            if isinstance(item, Future):
                try:
                    item = item.result()
                except BaseException as exc:  # a conversion error, raised below
                    item = exc
            if item is _END:
                self.close()
                raise StopIteration
            if isinstance(item, BaseException):
                self.close(failed=True)
                if isinstance(item, StoreError):
                    raise item
                raise self._wrap(item) from item
            assert isinstance(item, pa.RecordBatch)
            step = self._batch_rows
            self._pending = iter([item.slice(i, step) for i in range(0, item.num_rows, step)])

    def close(self, failed: bool = False) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is None:
            return
        self._stop.set()
        if not self._ended:
            # closed early: stop the server's query, or the driver would read it to the end
            try:
                self._cancel()
            except Exception:
                logger.debug("cancelling a PostgreSQL query failed", exc_info=True)
        self._thread.join(JOIN_TIMEOUT_S)
        self._converter.shutdown(wait=True, cancel_futures=True)
        try:
            self._source.close()
        except Exception:  # the connection may be gone already; on_close handles it
            logger.debug("closing a PostgreSQL result stream failed", exc_info=True)
        on_close(self._ended and not failed and not self._thread.is_alive())
