"""The embedded store: one DuckDB file under the data directory, no server."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..datasets import DATASETS, DECIMAL_SQL, Dataset
from ..errors import BUSY_HINT, ConfigError, StoreError, TransientStoreError
from ..request import Filter
from .base import InsertResult, ScanStats
from .sql import order_clause, quote_ident, where_clause
from .windows import WINDOW_ROWS, Window, WindowedReader, bucket_width, plan_windows

logger = logging.getLogger(__name__)

SQL_TYPES = {
    "text": "VARCHAR",
    "id": "VARCHAR",
    "decimal": DECIMAL_SQL,
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "time": "TIMESTAMP_NS",
}


def table_ddl(spec: Dataset) -> str:
    """The CREATE TABLE statement of a dataset, with its primary key."""
    columns = [
        f"{quote_ident(c.name)} {SQL_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}"
        for c in spec.columns
    ]
    key = ", ".join(quote_ident(name) for name in spec.key)
    body = ",\n  ".join([*columns, f"PRIMARY KEY ({key})"])
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(spec.name)} (\n  {body}\n)"


def _placeholder(value: Any, kind: str) -> tuple[str, Any]:
    if kind == "decimal":
        return f"CAST(? AS {DECIMAL_SQL})", str(value if isinstance(value, Decimal) else value)
    if kind == "time":
        return "make_timestamp_ns(CAST(? AS BIGINT))", int(value)
    return "?", value


# DuckDB's words for a file another process holds (not "pin block", an out-of-memory).
_BUSY = re.compile(r"could not set lock on file|conflicting lock|lock is held", re.I)


def _wrap(exc: Exception, path: Path) -> StoreError:
    text = str(exc)
    if _BUSY.search(text):
        return TransientStoreError(
            f"the store {path} is busy (held by another process): {text.splitlines()[0]}; "
            "will retry",
            path=str(path),
            hint=BUSY_HINT,
        )
    return StoreError(
        f"store {path}: {text.splitlines()[0] if text else type(exc).__name__}", path=str(path)
    )


# The text of the RuntimeError that DuckDB raises in place of the KeyboardInterrupt when
# SIGINT (or the CLI's SIGTERM/SIGHUP handler) interrupts a running query: DuckDB's Python
# client consumes the KeyboardInterrupt to stop the query, and hands back this instead.
_INTERRUPTED = "Query interrupted"


def _is_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.InterruptException) or (
        type(exc) is RuntimeError and str(exc) == _INTERRUPTED
    )


@contextmanager
def _engine(path: Path) -> Iterator[None]:
    """DuckDB's errors as StoreErrors, and an interrupted query as the KeyboardInterrupt it
    was, so that Ctrl-C always takes the CLI's one clean path (exit 130, output removed)."""
    try:
        yield
    except (duckdb.Error, RuntimeError) as exc:
        if _is_interrupt(exc):
            raise KeyboardInterrupt from exc
        if isinstance(exc, duckdb.Error):
            raise _wrap(exc, path) from exc
        raise


# Bytes 8-11 of every DuckDB database file.
_MAGIC = b"DUCK"


def _refuse_other_files(path: Path) -> None:
    """A store path that holds some other file (CSV, Parquet...) is refused: DuckDB would open
    it as an empty in-memory database, and whatever an import added there would be lost.

    Raises:
        ConfigError: ``path`` exists and is not a DuckDB database file.
    """
    if path.is_dir():
        raise ConfigError(
            f"store {path} is a directory (expected a DuckDB store file, e.g. "
            f"{path / 'store.duckdb'}, or a path that does not exist yet)",
            path=str(path),
        )
    if not path.exists():
        return  # a new store
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return  # DuckDB reports what it cannot open
    if head[8:12] != _MAGIC:
        raise ConfigError(
            f"store {path} exists but is not a DuckDB database (expected a store that "
            "marketexport made, or a path that does not exist yet)",
            path=str(path),
        )


class DuckDBStore:
    """A DuckDB database file holding one table per dataset."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        threads: int | None = None,
        memory_limit_mb: int | None = 256,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = int(threads)
        if memory_limit_mb:
            config["memory_limit"] = f"{int(memory_limit_mb)}MB"
        with _engine(self.path):
            if not read_only:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(
                        f"store {self.path} cannot be created: {exc.strerror} "
                        f"({self.path.parent} must be a directory or a path that can be made)",
                        path=str(self.path),
                    ) from None
            elif not self.path.exists():
                raise ConfigError(
                    f"store {self.path} does not exist (import data first with "
                    "'marketexport ingest', or give --store / --data-dir of an existing store)",
                    path=str(self.path),
                )
            _refuse_other_files(self.path)
            self._con = duckdb.connect(str(self.path), read_only=read_only, config=config)
            if not read_only:
                for spec in DATASETS.values():
                    self._con.execute(table_ddl(spec)).fetchall()
                self._check_tables()

    def _check_tables(self) -> None:
        """Refuse a store whose tables an older marketexport made with other columns."""
        rows = self._con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
        ).fetchall()
        found: dict[str, list[str]] = {}
        for table, column in rows:
            found.setdefault(table, []).append(column)
        for spec in DATASETS.values():
            missing = [name for name in spec.column_names if name not in found.get(spec.name, [])]
            if missing:
                raise ConfigError(
                    f"store {self.path}: table {spec.name!r} was made by an older marketexport "
                    f"and has no column {', '.join(missing)}; import into a new store "
                    "(--data-dir or --store) and export the old one's other datasets from it",
                    path=str(self.path),
                )

    def __repr__(self) -> str:
        return f"DuckDBStore({str(self.path)!r}, read_only={self.read_only})"

    def _select(
        self, spec: Dataset, filters: list[Filter], what: str, ordered: bool
    ) -> tuple[str, list[Any]]:
        where, params = where_clause(spec, filters, _placeholder)
        order = order_clause(spec) if ordered else ""
        return f"SELECT {what} FROM {quote_ident(spec.name)} {where} {order}", params

    def stats(self, spec: Dataset, filters: list[Filter]) -> ScanStats:
        time_columns = [c.name for c in spec.columns if c.kind == "time"]
        remainders = " OR ".join(
            f"epoch_ns({quote_ident(name)}) % {{m}} != 0" for name in time_columns
        )
        main = quote_ident(spec.time_column)
        what = (
            f"count(*), epoch_ns(min({main})), epoch_ns(max({main})), "
            f"coalesce(bool_or({remainders.format(m=1000)}), false), "
            f"coalesce(bool_or({remainders.format(m=1_000_000)}), false)"
        )
        query, params = self._select(spec, filters, what, ordered=False)
        with _engine(self.path):
            rows, first, last, needs_ns, needs_us = (
                self._con.cursor().execute(query, params).fetchall()[0]
            )
        unit = "ns" if needs_ns else "us" if needs_us else "ms"
        return ScanStats(int(rows), first, last, unit)

    def distinct_values(self, spec: Dataset, column: str, filters: list[Filter]) -> list[str]:
        name = quote_ident(spec.column(column).name)
        query, params = self._select(spec, filters, f"DISTINCT {name}", ordered=False)
        with _engine(self.path):
            rows = self._con.cursor().execute(query + f" ORDER BY {name}", params).fetchall()
        return [str(row[0]) for row in rows]

    def scan(
        self, spec: Dataset, filters: list[Filter], columns: list[str], batch_rows: int
    ) -> WindowedReader:
        schema = pa.schema([spec.store_schema.field(name) for name in columns])
        what = ", ".join(quote_ident(name) for name in columns)

        def open_window(window: Window) -> _GuardedReader:
            query, params = self._select(spec, [*filters, *window.filters(spec)], what, True)
            with _engine(self.path):
                cursor = self._con.cursor()
                reader = cursor.sql(query, params=params).to_arrow_reader(batch_rows)
            return _GuardedReader(reader, cursor, self.path)

        return WindowedReader(schema, self._windows(spec, filters), open_window)

    def _windows(self, spec: Dataset, filters: list[Filter]) -> list[Window]:
        """Time windows that each hold at most WINDOW_ROWS of the selected rows."""
        time_sql = f"epoch_ns({quote_ident(spec.time_column)})"
        query, params = self._select(
            spec, filters, f"count(*), min({time_sql}), max({time_sql})", ordered=False
        )
        cursor = self._con.cursor()
        try:
            with _engine(self.path):
                rows, first, last = cursor.execute(query, params).fetchall()[0]
                if not rows:
                    return []
                if rows <= WINDOW_ROWS:
                    return [Window(first, last + 1)]
                width = bucket_width(first, last)
                # in 128 bits: from 1677 to 2262 the difference passes 64-bit nanoseconds
                bucket = f"(CAST({time_sql} AS HUGEINT) - {int(first)}) // {width}"
                query, params = self._select(spec, filters, f"{bucket} AS b, count(*)", False)
                counts = cursor.execute(query + " GROUP BY b", params).fetchall()
        finally:
            cursor.close()
        return plan_windows(first, width, [(int(b), int(n)) for b, n in counts], last_ns=last)

    def insert(
        self, parts: Iterable[tuple[Dataset, Iterable[pa.RecordBatch]]]
    ) -> dict[str, InsertResult]:
        cursor = self._con.cursor()
        results: dict[str, InsertResult] = {}
        try:
            cursor.execute("BEGIN TRANSACTION").fetchall()
            for spec, batches in parts:
                names = ", ".join(quote_ident(name) for name in spec.column_names)
                sql = (
                    f"INSERT OR IGNORE INTO {quote_ident(spec.name)} ({names}) "
                    f"SELECT {names} FROM incoming_rows"
                )
                read = added = 0
                for batch in batches:
                    incoming = pa.Table.from_batches([batch]).cast(spec.store_schema)
                    cursor.register("incoming_rows", incoming)
                    result = cursor.execute(sql).fetchall()
                    cursor.unregister("incoming_rows")
                    read += incoming.num_rows
                    added += int(result[0][0]) if result else 0
                before = results.get(spec.name, InsertResult(0, 0))
                results[spec.name] = InsertResult(
                    before.rows_read + read, before.rows_added + added
                )
            cursor.execute("COMMIT").fetchall()
        except BaseException as exc:
            try:
                cursor.execute("ROLLBACK").fetchall()
            except duckdb.Error:
                logger.debug("rollback after a failed insert also failed", exc_info=True)
            if _is_interrupt(exc):
                raise KeyboardInterrupt from exc
            if isinstance(exc, duckdb.Error):
                raise _wrap(exc, self.path) from exc
            raise
        return results

    def count(self, spec: Dataset) -> int:
        """Rows in a dataset's table."""
        with _engine(self.path):
            return int(
                self._con.cursor()
                .execute(f"SELECT count(*) FROM {quote_ident(spec.name)}")
                .fetchall()[0][0]
            )

    def close(self) -> None:
        self._con.close()


class _GuardedReader:
    """Wraps a DuckDB reader so that engine errors surface as StoreErrors."""

    def __init__(self, reader: pa.RecordBatchReader, cursor: Any, path: Path) -> None:
        self._reader = reader
        self._cursor = cursor
        self._path = path
        self.schema = reader.schema

    def __iter__(self) -> _GuardedReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        try:
            with _engine(self._path):
                return self._reader.read_next_batch()
        except pa.ArrowException as exc:
            raise _wrap(exc, self._path) from exc

    def close(self) -> None:
        self._reader.close()
        self._cursor.close()
