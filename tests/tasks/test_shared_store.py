"""One read-only DuckDB store shared by many threads, as a runner's tasks share it."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from marketexport.config import Settings
from marketexport.datasets import OHLCV
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.tasks.conftest import MINUTE_NS, T0_NS


@pytest.mark.slow
def test_concurrent_stats_and_scans_on_one_store_agree_with_serial_reads(
    task_settings: Settings,
) -> None:
    store = DuckDBStore(Path(task_settings.store_url), read_only=True, threads=1)
    requests = [
        build_request(
            dataset="ohlcv",
            format="csv",
            start=str((T0_NS + i * 1000 * MINUTE_NS) // 1_000_000),
            end=str((T0_NS + (i * 1000 + 3000) * MINUTE_NS) // 1_000_000),
        )
        for i in range(10)
    ]

    def read(index: int) -> tuple[int, int, pa.Table]:
        request = requests[index]
        stats = store.stats(OHLCV, request.filters())
        reader = store.scan(OHLCV, request.filters(), ["time", "close", "trades"], 700)
        try:
            table = pa.Table.from_batches(list(reader))
        finally:
            reader.close()
        return index, stats.rows, table

    expected = [read(i) for i in range(10)]
    results: list[tuple[int, int, pa.Table]] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for round_ in range(5):
                results.append(read((offset + round_) % 10))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    assert errors == []
    assert len(results) == 50
    for index, rows, table in results:
        assert rows == expected[index][1] == table.num_rows == 3000
        assert table.equals(expected[index][2])
