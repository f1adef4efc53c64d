"""The PostgreSQL store: the data collector's database, read in streamed Arrow batches.

The driver is ADBC's PostgreSQL driver (libpq underneath): a query without bound
parameters runs as ``COPY (...) TO STDOUT (FORMAT binary)`` and arrives as Arrow batches,
parsed in C++ with the GIL released, so memory stays flat and the formatter works while the
next batch arrives (docs/postgres.md has the measurements behind this choice). Writes use
the same driver's binary COPY into a temporary table, then ``INSERT ... ON CONFLICT DO
NOTHING``.

Each operation takes a connection of its own from a small pool, so one store may serve
several threads. ``stats`` leaves its REPEATABLE READ transaction open for the ``scan`` of
the same selection that follows it (within PARK_MAX_S), so the count, time unit and rows
agree even while the collector keeps writing.

For CSV, ``scan_lines`` asks the server for finished lines instead of values (pgrender.py
says how), which moves nearly all of the export's work off the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pyarrow as pa
from adbc_driver_postgresql import dbapi

from ..config import Settings
from ..datasets import DATASETS, Dataset
from ..errors import StoreError
from ..request import Filter
from .base import InsertResult, ScanStats
from .pgerrors import describe_url, redact, store_error
from .pglayout import Layout, TableMapping, create_statements, key_sources, parse_layout
from .pgquery import (
    CATALOG_SQL,
    UNIQUE_SQL,
    BoundTable,
    Params,
    bind_table,
    bounds_nanos_sql,
    distinct_sql,
    scan_sql,
    stats_sql,
    unique_key_ok,
    where_sql,
)
from .pgread import ScanReader, misfit_error, to_write_batch, write_schema
from .pgrender import (
    LINE_LAYOUTS,
    LINE_SCHEMA,
    LINES_SINCE_VERSION,
    assembled_lines,
    line_parts,
    line_sql,
    misfit_sql,
)
from .pgwrite import INCOMING, insert_sql, refuse_values
from .sql import quote_ident

logger = logging.getLogger(__name__)

# Bytes the driver gathers into one Arrow batch before handing it over.
BATCH_HINT_BYTES = 4 << 20
# Selections whose stats transaction waits for its scan; an open transaction holds back
# vacuum, so only a few wait, and the oldest ends first.
MAX_PARKED = 4
# A parked transaction older than this is ended; its scan starts a fresh one.
PARK_MAX_S = 60.0


class PostgresStore:
    """A PostgreSQL database holding one table per dataset (see pglayout for mappings)."""

    def __init__(self, url: str, *, settings: Settings | None = None) -> None:
        self._url = url
        self._redacted = redact(url)
        self.where, self._password = describe_url(url)
        self.layout: Layout = parse_layout(getattr(settings, "postgres", None))
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._parked: dict[tuple[str, tuple[Filter, ...]], tuple[Any, float, ScanStats]] = {}
        self._bound: dict[str, BoundTable] = {}
        self._closed = False
        # Connect now, so that a wrong password or database is reported before any work.
        connection = self._connect()
        try:
            version = self._run(
                connection,
                "SELECT current_setting('server_version_num')::int, "
                "current_setting('server_encoding')",
            )
        except Exception as exc:
            self._discard(connection)
            raise self._error(exc) from None
        self._server_version = int(version[0][0])
        # text is UTF-8 (byte 0xFF never occurs in it): the CSV lines may join text values
        self._utf8 = version[0][1] == "UTF8"
        self._release(connection)

    def __repr__(self) -> str:
        return f"PostgresStore({self._redacted!r})"

    # -- connections ---------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            connection = dbapi.connect(self._url, autocommit=True)
        except Exception as exc:
            raise self._error(exc, "cannot connect to") from None
        try:
            self._run(connection, "SET TIME ZONE 'UTC'")
            self._run(connection, "SET application_name = 'marketexport'")
        except Exception as exc:
            self._discard(connection)
            raise self._error(exc) from None
        return connection

    def _acquire(self) -> Any:
        with self._lock:
            if self._closed:
                raise StoreError(f"the store for {self.where} is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, connection: Any) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        self._discard(connection)

    @staticmethod
    def _discard(connection: Any) -> None:
        try:
            connection.close()
        except Exception:
            logger.debug("closing a PostgreSQL connection failed", exc_info=True)

    def _end(self, connection: Any, ok: bool) -> None:
        """End the connection's transaction and pool it, or drop it if it is broken."""
        try:
            self._run(connection, "COMMIT" if ok else "ROLLBACK")
        except Exception:
            logger.debug("ending a PostgreSQL transaction failed; connection dropped")
            self._discard(connection)
            return
        self._release(connection)

    @staticmethod
    def _run(connection: Any, sql: str, params: Iterable[Any] | None = None) -> list[Any]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, list(params) if params is not None else None)
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    # -- errors --------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str = "") -> StoreError:
        return store_error(exc, self.where, self._password, doing)

    # -- tables ----------------------------------------------------------------------

    def table(self, spec: Dataset, connection: Any) -> BoundTable:
        """The dataset's table as the catalog describes it (checked once per store)."""
        bound = self._bound.get(spec.name)
        if bound is None:
            mapping = self.layout.mapping(spec)
            rows = self._run(connection, CATALOG_SQL, [mapping.qualified])
            bound = bind_table(spec, mapping, rows, self.where)
            self._bound[spec.name] = bound
        return bound

    def check_table(self, spec: Dataset) -> BoundTable:
        """Check the dataset's table against the catalog now (a fresh look, not cached)."""
        self._bound.pop(spec.name, None)
        connection = self._acquire()
        try:
            bound = self.table(spec, connection)
        except StoreError:
            self._release(connection)
            raise
        except Exception as exc:
            self._discard(connection)
            raise self._error(exc) from exc
        self._release(connection)
        return bound

    @contextmanager
    def _ending(self, connection: Any) -> Iterator[None]:
        """Run a block on a connection: map its errors, then commit or roll back and release."""
        ok = False
        try:
            yield
            ok = True
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        finally:
            self._end(connection, ok)

    def init_schema(self) -> list[tuple[str, str, bool]]:
        """Create every dataset's table and indexes that is missing.

        Returns:
            (dataset, table, created) for every dataset.
        """
        connection = self._acquire()
        done: list[tuple[str, str, bool]] = []
        with self._ending(connection):
            self._run(connection, "BEGIN")
            schemas = {m.schema for m in map(self.layout.mapping, DATASETS.values()) if m.schema}
            for schema in sorted(schemas):
                self._run(connection, f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            for spec in DATASETS.values():
                mapping = self.layout.mapping(spec)
                existed = bool(self._run(connection, CATALOG_SQL, [mapping.qualified]))
                for statement in create_statements(spec, mapping):
                    self._run(connection, statement)
                done.append((spec.name, mapping.label, not existed))
        self._bound.clear()
        return done

    # -- reading ---------------------------------------------------------------------

    def _snapshot(self, key: tuple[str, tuple[Filter, ...]]) -> Any:
        """The transaction ``stats`` parked for this selection (if recent), or a new one."""
        parked = self._unpark(key)
        return parked[0] if parked is not None else self._begin_read()

    def _unpark(self, key: tuple[str, tuple[Filter, ...]]) -> tuple[Any, ScanStats] | None:
        """The transaction ``stats`` parked for this selection and its stats, if recent."""
        with self._lock:
            parked = self._parked.pop(key, None)
        if parked is None:
            return None
        connection, parked_at, stats = parked
        if time.monotonic() - parked_at <= PARK_MAX_S:
            return connection, stats
        self._end(connection, True)
        return None

    def _begin_read(self) -> Any:
        connection = self._acquire()
        try:
            self._run(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except Exception as exc:
            self._discard(connection)
            raise self._error(exc) from exc
        return connection

    def _bind_params(self, connection: Any, params: Params) -> None:
        if params.values:
            self._run(connection, params.set_sql(), params.values)

    def stats(self, spec: Dataset, filters: list[Filter]) -> ScanStats:
        key = (spec.name, tuple(filters))
        connection = self._begin_read()
        try:
            table = self.table(spec, connection)
            params = Params()
            where = where_sql(table, filters, params)
            self._bind_params(connection, params)
            rows, first_us, last_us, needs_ns, needs_us = self._run(
                connection, stats_sql(table, where)
            )[0]
            first_ns = None if first_us is None else int(first_us) * 1000
            last_ns = None if last_us is None else int(last_us) * 1000
            if needs_ns and first_ns is not None and last_ns is not None:
                first_rest, last_rest = self._run(connection, bounds_nanos_sql(table, where))[0]
                first_ns += int(first_rest or 0)
                last_ns += int(last_rest or 0)
        except StoreError:
            self._end(connection, False)
            raise
        except Exception as exc:
            self._end(connection, False)
            raise self._error(exc) from exc
        unit = "ns" if needs_ns else "us" if needs_us else "ms"
        stats = ScanStats(int(rows), first_ns, last_ns, unit)
        self._park(key, connection, stats)
        return stats

    def _park(self, key: tuple[str, tuple[Filter, ...]], connection: Any, stats: ScanStats) -> None:
        """Keep a transaction open for the scan that follows; the oldest beyond a few ends."""
        ended = []
        now = time.monotonic()
        with self._lock:
            previous = self._parked.pop(key, None)
            if previous is not None:
                ended.append(previous[0])
            for other, (_, parked_at, _) in list(self._parked.items()):
                if now - parked_at > PARK_MAX_S:
                    ended.append(self._parked.pop(other)[0])
            self._parked[key] = (connection, now, stats)
            while len(self._parked) > MAX_PARKED:
                ended.append(self._parked.pop(next(iter(self._parked)))[0])
        for old in ended:
            self._end(old, True)

    def distinct_values(self, spec: Dataset, column: str, filters: list[Filter]) -> list[str]:
        name = spec.column(column).name
        connection = self._begin_read()
        with self._ending(connection):
            table = self.table(spec, connection)
            params = Params()
            where = where_sql(table, filters, params)
            self._bind_params(connection, params)
            rows = self._run(connection, distinct_sql(table, name, where))
        return [str(row[0]) for row in rows if row[0] is not None]

    def scan(
        self, spec: Dataset, filters: list[Filter], columns: list[str], batch_rows: int
    ) -> ScanReader:
        connection = self._snapshot((spec.name, tuple(filters)))

        def build(table: BoundTable, where: str) -> tuple[str, dict[str, Any]]:
            return scan_sql(table, columns, where), {}

        return self._stream(connection, spec, filters, columns, batch_rows, build)

    def scan_lines(
        self, spec: Dataset, filters: list[Filter], columns: list[str], layout: str,
        batch_rows: int,
    ) -> ScanReader | None:  # fmt: skip
        """The selection as finished text lines, one ``line`` string per row (see pgrender).

        Returns None, and the caller scans and renders batches itself, unless the server
        can render ``layout`` and the selection's ``stats`` have just run: the lines are
        rendered at the time unit those stats chose, which holds only in their snapshot.
        """
        if layout not in LINE_LAYOUTS or self._server_version < LINES_SINCE_VERSION:
            return None
        parked = self._unpark((spec.name, tuple(filters)))
        if parked is None:
            return None
        connection, stats = parked
        bounds = [ns for ns in (stats.first_ns, stats.last_ns) if ns is not None]
        if not all(-(2**63) <= ns < 2**63 for ns in bounds):
            # the batch scan stops on such a time with its own error
            self._park((spec.name, tuple(filters)), connection, stats)
            return None

        def build(table: BoundTable, where: str) -> tuple[str, dict[str, Any]]:
            label = f"table {table.label!r} of {self.where}"
            parts = line_parts(table, columns, stats.time_unit, join_texts=self._utf8)
            assemble = partial(
                assembled_lines,
                parts=parts,
                spec=spec,
                time_unit=stats.time_unit,
                where=label,
                misfit_time=lambda: self._misfit(table, filters, columns, label),
            )
            return line_sql(table, parts, where), {"convert": assemble, "schema": LINE_SCHEMA}

        return self._stream(connection, spec, filters, columns, batch_rows, build)

    def _stream(
        self,
        connection: Any,
        spec: Dataset,
        filters: list[Filter],
        columns: list[str],
        batch_rows: int,
        build: Callable[[BoundTable, str], tuple[str, dict[str, Any]]],
    ) -> ScanReader:
        """Run the query ``build`` makes for the selection on ``connection``, streamed."""
        cursor = None
        try:
            table = self.table(spec, connection)
            params = Params()
            where = where_sql(table, filters, params)
            self._bind_params(connection, params)
            query, options = build(table, where)
            cursor = connection.cursor()
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_HINT_BYTES)}
            )
            cursor.execute(query)
            source = cursor.fetch_record_batch()
        except Exception as exc:
            if cursor is not None:
                cursor.close()
            self._end(connection, False)
            if isinstance(exc, StoreError):
                raise
            raise self._error(exc) from exc

        def finish(ok: bool) -> None:
            try:
                cursor.close()
            except Exception:
                logger.debug("closing a PostgreSQL cursor failed", exc_info=True)
            self._end(connection, ok)

        where_label = f"table {table.label!r} of {self.where}"
        return ScanReader(
            source,
            spec,
            columns,
            batch_rows,
            where_label,
            wrap=self._error,
            cancel=cursor.adbc_cancel,
            on_close=finish,
            **options,
        )

    def _misfit(
        self, table: BoundTable, filters: list[Filter], columns: list[str], label: str
    ) -> StoreError:
        """The error naming the time that made a rendered line NULL (found by a query)."""
        params = Params()
        query = misfit_sql(table, columns, where_sql(table, filters, params))
        found: list[Any] = []
        try:
            connection = self._begin_read()
            with self._ending(connection):
                self._bind_params(connection, params)
                found = self._run(connection, query) if query else []
        except StoreError as exc:
            logger.debug("finding a misfit value failed: %s", exc)
            found = []
        if found and found[0][0] is not None:
            return misfit_error(str(found[0][0]), str(found[0][1]), label, "time")
        return StoreError(
            f"a time in {label} does not fit the time range 1677-09-21 to 2262-04-11 "
            "(nanoseconds in 64 bits); export aborted"
        )

    # -- writing ---------------------------------------------------------------------

    def insert(
        self, parts: Iterable[tuple[Dataset, Iterable[pa.RecordBatch]]]
    ) -> dict[str, InsertResult]:
        connection = self._acquire()
        results: dict[str, InsertResult] = {}
        with self._ending(connection):
            self._run(connection, "BEGIN")
            for spec, batches in parts:
                read, added = self._insert_one(connection, spec, batches)
                before = results.get(spec.name, InsertResult(0, 0))
                results[spec.name] = InsertResult(
                    before.rows_read + read, before.rows_added + added
                )
        return results

    def _insert_one(
        self, connection: Any, spec: Dataset, batches: Iterable[pa.RecordBatch]
    ) -> tuple[int, int]:
        table = self.table(spec, connection)
        if not unique_key_ok(table, self._run(connection, UNIQUE_SQL, [table.mapping.qualified])):
            keys = ", ".join(key_sources(spec, table.mapping))
            raise StoreError(
                f"table {table.label!r} in {self.where} has no unique index on the key "
                f"({keys}), so duplicates could not be skipped; nothing imported",
                table=table.label,
            )
        columns = [name for name, column in table.columns.items() if column.source is not None]
        absent = [name for name, column in table.columns.items() if column.source is None]
        keeps_nanos = {name: nanos is not None for name, nanos in table.nanos.items()}
        counted = [0]

        def iter_converted() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                refuse_values(batch, absent, table)
                counted[0] += batch.num_rows
                yield to_write_batch(batch, spec, columns, keeps_nanos)

        schema = write_schema(spec, columns)
        self._run(connection, f"DROP TABLE IF EXISTS pg_temp.{INCOMING}")
        cursor = connection.cursor()
        try:
            reader = pa.RecordBatchReader.from_batches(schema, iter_converted())
            cursor.adbc_ingest(INCOMING, reader, mode="create", temporary=True)
        finally:
            cursor.close()
        added = self._run(connection, insert_sql(table, schema))[0][0]
        self._run(connection, f"DROP TABLE pg_temp.{INCOMING}")
        return counted[0], int(added)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            parked = [connection for connection, *_ in self._parked.values()]
            self._parked = {}
        for connection in [*parked, *idle]:
            self._discard(connection)


__all__ = ["PostgresStore", "TableMapping", "describe_url"]
