"""Connection faults: a backend killed mid-export, a wrong password, a missing server.

The errors are clear, name the database and never the password; a dropped connection is
retryable, leaves no file, and the task runner's retry then completes the export.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from marketexport.config import Settings
from marketexport.datasets import OHLCV
from marketexport.errors import StoreError, TransientStoreError
from marketexport.export.pipeline import ExportResult, Progress, run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from tests.store.conftest import run_sql

pytestmark = pytest.mark.postgres

# Enough rows that the server still streams when the first batch reaches the pipeline: the
# scan reads ahead a few batches, and a CSV export's rows are quick to make (the server
# renders them, see store/pgrender.py).
ROWS = 500_000
T0_US = 1_700_000_000_000_000
SECRET = "s3cret-Pa55word-4242"


def fill_candles(url: str, schema: str, rows: int) -> None:
    """``rows`` one-minute candles written by SQL, large enough for several batches."""
    run_sql(
        url,
        f'INSERT INTO "{schema}".ohlcv (exchange, symbol, timeframe, price_type, time, open, '
        "high, low, close, volume, trades) SELECT 'binance', 'BTC/USDT', '1m', 'trade', "
        f"timestamptz 'epoch' + ({T0_US} + i * 60000000) * interval '1 microsecond', "
        "30000 + (i % 9973) * 0.01, 30010.5, 0.00001234, 75036192.45844001, "
        f"(i % 1000) * 0.00001, i FROM generate_series(0::bigint, {rows - 1}) AS i",
    )


# marketexport's backends that run a query holding a lock on a table of schema $1. The
# query's text cannot tell: pg_stat_activity cuts it at 1024 bytes, and a query that renders
# CSV lines names its table after that.
READING_FROM_SCHEMA = (
    "a.application_name = 'marketexport' AND a.backend_type = 'client backend' "
    "AND a.state = 'active' AND EXISTS (SELECT 1 FROM pg_locks l "
    "JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE l.pid = a.pid AND n.nspname = $1)"
)


def terminate_export_backend(url: str, schema: str) -> int:
    """Kill the backend streaming a COPY from ``schema`` for marketexport; how many were."""
    rows = run_sql(
        url,
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a "
        f"WHERE a.query LIKE 'COPY%' AND {READING_FROM_SCHEMA}",
        [schema],
    )
    return len(rows)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow
def test_killed_backend_is_retryable_and_leaves_no_file(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    fill_candles(pg_url, pg_schema, ROWS)
    candles = pg_store
    killed: list[int] = []

    def kill_after_first_batch(progress: Progress) -> None:
        if progress.rows_done and not killed:
            killed.append(terminate_export_backend(pg_url, pg_schema))

    with pytest.raises(TransientStoreError) as raised:
        run_export(
            build_request(dataset="ohlcv", format="csv"),
            candles,
            output_dir=tmp_path / "out",
            batch_rows=1000,
            progress=kill_after_first_batch,
            progress_interval_s=0,
        )

    assert killed == [1]
    assert raised.value.retryable
    assert "will retry" in str(raised.value) and 'database "test"' in str(raised.value)
    assert isinstance(pickle.loads(pickle.dumps(raised.value)), TransientStoreError)
    assert files_under(tmp_path / "out") == []
    # the store drops the dead connection; the next export works
    result = run_export(
        build_request(dataset="ohlcv", format="csv"), candles, output_dir=tmp_path / "again"
    )
    assert result.manifest.rows == ROWS


@pytest.mark.slow
def test_task_with_killed_backend_is_retried_and_completes_with_one_output(
    pg_settings: Settings, pg_store: Any, pg_url: str, pg_schema: str
) -> None:
    from marketexport.tasks.model import TaskState
    from marketexport.tasks.runner import Runner
    from marketexport.tasks.store import TaskStore

    fill_candles(pg_url, pg_schema, ROWS)
    settings = replace(pg_settings, batch_rows=1000)
    attempts: list[int] = []

    def export_killed_once(*args: Any, **kwargs: Any) -> ExportResult:
        attempts.append(len(attempts) + 1)
        progress = kwargs.get("progress")

        def killing(update: Progress) -> None:
            if len(attempts) == 1 and update.rows_done:
                terminate_export_backend(pg_url, pg_schema)
            if progress is not None:
                progress(update)

        kwargs.update(progress=killing, progress_interval_s=0)
        return run_export(*args, **kwargs)

    tasks = TaskStore.open(settings)
    try:
        task = tasks.submit(build_request(dataset="ohlcv", format="csv"))
        runner = Runner(settings, tasks, poll_s=0.02, retry_delay_s=0.05, export=export_killed_once)
        runner.run(until_idle=True, grace_s=5)
        done = tasks.get(task.id)
    finally:
        tasks.close()

    assert attempts == [1, 2]
    assert done.state == TaskState.COMPLETED and done.attempts == 2
    outputs = files_under(done.output_dir(settings.export_path))
    data_files = [p for p in outputs if p.name.endswith(".csv")]
    assert len(data_files) == 1 and not [p for p in outputs if p.name.endswith(".part")]
    assert verify_export(data_files[0]).ok
    assert data_files[0].read_bytes().count(b"\n") == ROWS + 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_password_never_shows(
    pg_settings: Settings, pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from marketexport.datasets import TRADES
    from marketexport.store.postgres import PostgresStore

    schema = str(pg_settings.postgres["schema"])
    with_password = pg_url.replace("postgres@", f"postgres:{SECRET}@")
    mapped = {"schema": schema, "tables": {"trades": {"table": "no_such_table"}}}
    settings = replace(pg_settings, store=with_password, postgres=mapped)
    nowhere = f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/test"
    caplog.set_level(logging.DEBUG)

    store = PostgresStore(with_password, settings=settings)
    try:
        store.init_schema()
        run_sql(pg_url, f'DROP TABLE "{schema}".no_such_table')
        fill_candles(pg_url, schema, 10)
        run_export(build_request(dataset="ohlcv", format="csv"), store, output_dir=tmp_path)
        with pytest.raises(StoreError) as missing:
            store.stats(TRADES, [])
    finally:
        store.close()
    with pytest.raises(TransientStoreError) as unreachable:
        PostgresStore(nowhere, settings=settings)

    assert "no_such_table" in str(missing.value) and 'database "test"' in str(missing.value)
    assert str(nowhere.split("@")[1].split("/")[0]) in str(unreachable.value)
    shown = [repr(store), str(settings), repr(settings), caplog.text]
    shown += [str(missing.value), str(unreachable.value), repr(unreachable.value)]
    shown += [path.read_text() for path in files_under(tmp_path)]
    assert len(shown) > 6 and not [text for text in shown if SECRET in text]
    assert "***" in repr(store)


@pytest.fixture(scope="module")
def password_server() -> Iterator[int]:
    """A private PostgreSQL server on 127.0.0.1 that checks passwords (SCRAM), its port."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if os.geteuid() != 0 or not binaries or not shutil.which("runuser"):
        pytest.skip("needs root, runuser and PostgreSQL's initdb to start a password server")
    bindir = binaries[-1].parent
    home = Path(
        subprocess.check_output(["mktemp", "-d", "/tmp/mx-pgauth-XXXXXX"], text=True).strip()
    )
    shutil.chown(home, "postgres")
    (home / "pw").write_text("right-password\n")
    shutil.chown(home / "pw", "postgres")
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(home / "data"), "-U", "postgres",
             "--auth=scram-sha-256", f"--pwfile={home / 'pw'}", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(home / "data"), "-o", options,
             "-l", str(home / "log"), "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield port
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate",
             "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_wrong_password_is_a_clear_error_without_the_password(
    password_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketexport.store.postgres import PostgresStore

    wrong = f"postgresql://postgres:{SECRET}@127.0.0.1:{password_server}/postgres"
    without = f"postgresql://postgres@127.0.0.1:{password_server}/postgres"

    with pytest.raises(StoreError) as raised:
        PostgresStore(wrong)
    # the password can stay out of the URL: libpq reads PGPASSWORD (or ~/.pgpass)
    monkeypatch.setenv("PGPASSWORD", "right-password")
    store = PostgresStore(without)
    try:
        with pytest.raises(StoreError, match="not found in PostgreSQL database"):
            store.check_table(OHLCV)  # logged in: the server answered that the table is missing
    finally:
        store.close()

    message = str(raised.value)
    assert "password" in message and "login refused" in message
    assert f'database "postgres" at 127.0.0.1:{password_server} (user postgres)' in message
    assert SECRET not in message and not raised.value.retryable
    assert type(raised.value) is StoreError


def test_database_that_does_not_exist_is_named(pg_url: str) -> None:
    from marketexport.store.postgres import PostgresStore

    url = pg_url.rsplit("/", 1)[0] + "/no_such_database_mx"

    with pytest.raises(StoreError) as raised:
        PostgresStore(url)

    assert "no_such_database_mx" in str(raised.value) and not raised.value.retryable


class _CancelAfter:
    """A cancel token that turns true once ``rows`` rows were reported."""

    def __init__(self) -> None:
        self.rows_seen = 0

    def is_cancelled(self) -> bool:
        return self.rows_seen > 0


@pytest.mark.slow
def test_cancelled_export_stops_the_server_query_and_leaves_no_file(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    from marketexport.errors import TaskCancelled

    fill_candles(pg_url, pg_schema, ROWS)
    token = _CancelAfter()

    def seen(progress: Progress) -> None:
        token.rows_seen = progress.rows_done

    started = time.perf_counter()
    with pytest.raises(TaskCancelled):
        run_export(
            build_request(dataset="ohlcv", format="csv"),
            pg_store,
            output_dir=tmp_path / "out",
            batch_rows=1000,
            progress=seen,
            progress_interval_s=0,
            cancel=token,
        )
    elapsed_s = time.perf_counter() - started
    running = run_sql(
        pg_url, f"SELECT count(*) FROM pg_stat_activity a WHERE {READING_FROM_SCHEMA}", [pg_schema]
    )

    assert files_under(tmp_path / "out") == []
    assert running == [(0,)]
    assert elapsed_s < 30
    assert pg_store.stats(OHLCV, []).rows == ROWS  # the connection came back usable


def test_one_store_serves_scans_from_several_threads(pg_store: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.store.samples import sample_table

    table = sample_table(OHLCV, 40)
    pg_store.insert([(OHLCV, table.to_batches())])

    def read_all(_: int) -> int:
        pg_store.stats(OHLCV, [])
        reader = pg_store.scan(OHLCV, [], OHLCV.column_names, 3)
        try:
            return sum(batch.num_rows for batch in reader)
        finally:
            reader.close()

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(read_all, range(12)))

    assert counts == [40] * 12
