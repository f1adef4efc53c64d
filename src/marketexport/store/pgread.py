"""Arrow batches between PostgreSQL and the store schema, both ways.

Reading: the scan query sends decimals as text (exact; Arrow parses them straight into
decimal128(38, 18)) and each time as microseconds plus its nanos companion, joined here into
timestamp[ns]. Writing: times are split the other way (floor to the microsecond, the rest
in nanos) and decimals travel as decimal128, which the driver's COPY writes as numeric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import DECIMAL_TYPE, STORE_TIME_TYPE, Dataset
from ..errors import StoreError
from .pglayout import nanos_name

logger = logging.getLogger(__name__)

WRITE_TIME_TYPE = pa.timestamp("us", tz="UTC")


def _decimals(column: pa.Array, name: str, where: str) -> pa.Array:
    try:
        return pc.cast(column, DECIMAL_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Find the value to name it; this runs only on the failing batch.
    for value in column.to_pylist():
        try:
            pc.cast(pa.array([value], pa.string()), DECIMAL_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise StoreError(
                f"value {value!r} of column {name!r} in {where} does not fit "
                "decimal(38, 18) (at most 20 integer and 18 fraction digits, no NaN or "
                "infinity); export aborted",
                column=name,
                value=value,
            ) from None
    raise StoreError(f"column {name!r} in {where} could not be read as decimals")


def _times(micros: pa.Array, nanos: pa.Array) -> pa.Array:
    """timestamp[ns] from a timestamp[us] column and its 0-999 nanos."""
    whole = pc.multiply_checked(pc.cast(micros, pa.int64()), 1000)
    joined = pc.add_checked(whole, pc.cast(nanos, pa.int64()))
    return pc.cast(joined, pa.int64()).view(STORE_TIME_TYPE)


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
            data = _times(data, batch.column(nanos_name(name)))
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
    """Store-schema batches of at most ``batch_rows`` rows from a driver's batch reader.

    ``wrap`` turns a driver error into a StoreError; ``on_close`` runs once, told whether
    the scan ended cleanly, and releases the connection.
    """

    def __init__(
        self,
        source: Any,
        spec: Dataset,
        columns: list[str],
        batch_rows: int,
        where: str,
        wrap: Callable[[BaseException], StoreError],
        on_close: Callable[[bool], None],
    ) -> None:
        self.schema = pa.schema([spec.store_schema.field(name) for name in columns])
        self._source = source
        self._spec = spec
        self._columns = columns
        self._batch_rows = max(1, batch_rows)
        self._where = where
        self._wrap = wrap
        self._on_close: Callable[[bool], None] | None = on_close
        self._pending: Iterator[pa.RecordBatch] = iter(())
        self._failed = False

    def __iter__(self) -> ScanReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        while True:
            piece = next(self._pending, None)
            if piece is not None:
                return piece
            try:
                batch = self._source.read_next_batch()
            except StopIteration:
                self.close()
                raise
            except StoreError:
                self._fail()
                raise
            except Exception as exc:  # the driver's errors: OSError, ArrowException, Error
                self._fail()
                raise self._wrap(exc) from exc
            try:
                converted = to_store_batch(batch, self._spec, self._columns, self._where)
            except StoreError:
                self._fail()
                raise
            step = self._batch_rows
            self._pending = iter(
                [converted.slice(i, step) for i in range(0, converted.num_rows, step)]
            )

    def _fail(self) -> None:
        self._failed = True
        self.close()

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is None:
            return
        try:
            self._source.close()
        except Exception:  # the connection may be gone already; on_close handles it
            logger.debug("closing a PostgreSQL result stream failed", exc_info=True)
        on_close(not self._failed)
