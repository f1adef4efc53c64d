"""Where the task store keeps its tables: a SQLite file, or a PostgreSQL database.

The task store, the schedules and the Celery side tables write their SQL once, in the
part of SQLite's dialect that PostgreSQL also runs (``INSERT ... ON CONFLICT``,
``UPDATE ... RETURNING``, ``CASE`` instead of two-argument ``max``). A database object
only runs it: :class:`SqliteTaskDatabase` as it is, ``pgdatabase.PostgresTaskDatabase``
through its small translation (placeholders, column types). Both give rows that are read
by column name or by position, and a transaction object whose ``execute`` returns a
cursor with ``fetchall()`` and ``rowcount``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import BUSY_HINT, StoreError, TransientStoreError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Row(Protocol):
    """One result row: ``row["state"]`` or ``row[0]``; ``dict(row)`` gives every column."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What a statement run in a transaction gives back."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The handle of one open transaction."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...


class TaskDatabase(Protocol):
    """A database that holds the task store's tables."""

    # The database as messages name it (a file path, or host, port and database name).
    where: str

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction; it commits when the block ends, rolls back on error."""

    def read(self, sql: str, params: Any = ()) -> list[Row]:
        """Run one read query and return every row."""

    def create_tables(self, statements: Sequence[str]) -> None:
        """Run ``CREATE ... IF NOT EXISTS`` statements in one transaction."""

    def close(self) -> None: ...


def is_postgres_url(where: Path | str) -> bool:
    return isinstance(where, str) and where.startswith(POSTGRES_SCHEMES)


def split_script(script: str) -> list[str]:
    """The statements of a script of ``;``-separated DDL statements."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def open_task_database(where: Path | str, *, busy_timeout_s: float = 30.0) -> TaskDatabase:
    """The database of a task store: a postgresql:// URL, or else a SQLite file path."""
    if is_postgres_url(where):
        from .pgdatabase import PostgresTaskDatabase

        return PostgresTaskDatabase(str(where), busy_timeout_s=busy_timeout_s)
    return SqliteTaskDatabase(Path(where), busy_timeout_s=busy_timeout_s)


class SqliteTaskDatabase:
    """A SQLite file in WAL mode; safe to share between threads and processes.

    Every write transaction is ``BEGIN IMMEDIATE``, so writers queue (for up to the busy
    timeout) instead of failing, while the CLI and the HTTP API keep reading.
    """

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        from .schema import SCHEMA_VERSION

        self.path = path
        self.where = str(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            self._con.row_factory = sqlite3.Row
            self._con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._use_wal(busy_timeout_s)
            # FULL: a state change survives a power cut once it has been reported.
            self._con.execute("PRAGMA synchronous = FULL")
            self._con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise self._wrap(exc) from exc

    def __repr__(self) -> str:
        return f"SqliteTaskDatabase({self.where!r})"

    def _use_wal(self, busy_timeout_s: float) -> None:
        """Switch the file to WAL. Connections opening a new file at the same moment all try
        the switch, and SQLite refuses it at once ("database is locked") while another
        holds a lock, without waiting for the busy timeout: so it is tried again here."""
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                self._con.execute("PRAGMA journal_mode = WAL").fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _wrap(self, exc: BaseException) -> StoreError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return TransientStoreError(
                f"the task store {self.path} is busy: {text}; will retry",
                path=str(self.path),
                hint=BUSY_HINT,
            )
        return StoreError(f"task store {self.path}: {text}", path=str(self.path))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                yield self._con
                self._con.execute("COMMIT")
            except BaseException as exc:
                if self._con.in_transaction:
                    self._con.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._wrap(exc) from exc
                raise

    def read(self, sql: str, params: Any = ()) -> list[Row]:
        with self._lock:
            try:
                return self._con.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._wrap(exc) from exc

    def create_tables(self, statements: Sequence[str]) -> None:
        # BEGIN IMMEDIATE: processes starting together create the tables one after another.
        with self.transaction() as con:
            for statement in statements:
                con.execute(statement)
