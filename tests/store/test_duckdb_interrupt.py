"""Ctrl-C while DuckDB runs a query. DuckDB's client takes the KeyboardInterrupt to stop the
query and raises ``RuntimeError('Query interrupted')`` instead (measured with DuckDB 2.0.1:
SIGINT during ``execute``, ``to_arrow_reader`` and a reader's batches); the store turns it
back into the KeyboardInterrupt, so the CLI takes its one clean path (exit 130, nothing left).

When the signal lands inside DuckDB is a matter of timing, so these tests make DuckDB's
connection answer the way it does when interrupted, at each place the store queries it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from marketexport.cli import main
from marketexport.datasets import OHLCV
from marketexport.export.pipeline import run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore, _engine
from tests.helpers import table_of

INTERRUPTED = "Query interrupted"  # DuckDB's text


class _InterruptedCursor:
    """A DuckDB cursor whose queries end as an interrupted query does."""

    def __init__(self, real: Any, on: str) -> None:
        self._real = real
        self._on = on

    def execute(self, query: str, *args: Any) -> Any:
        if self._on == "execute" and query.lstrip().upper().startswith("SELECT"):
            raise RuntimeError(INTERRUPTED)
        return self._real.execute(query, *args)

    def sql(self, query: str, **kwargs: Any) -> Any:
        relation = self._real.sql(query, **kwargs)
        return _InterruptedRelation(relation) if self._on == "batches" else relation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _InterruptedRelation:
    def __init__(self, relation: Any) -> None:
        self._relation = relation

    def to_arrow_reader(self, rows: int) -> Any:
        reader = self._relation.to_arrow_reader(rows)

        def batches() -> Any:
            yield reader.read_next_batch()
            raise RuntimeError(INTERRUPTED)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _interrupt_queries(store: DuckDBStore, on: str) -> None:
    real_connection = store._con

    class Connection:
        def cursor(self) -> _InterruptedCursor:
            return _InterruptedCursor(real_connection.cursor(), on)

        def __getattr__(self, name: str) -> Any:
            return getattr(real_connection, name)

    store._con = Connection()


@pytest.fixture
def candles(store: DuckDBStore) -> DuckDBStore:
    rows = [
        {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "price_type": "trade",
         "time": 1_700_000_000_000 + 60_000 * i, "open": "1", "high": "2", "low": "0.5",
         "close": "1.5", "volume": "3"}
        for i in range(300)
    ]  # fmt: skip
    store.insert([(OHLCV, table_of(OHLCV, rows).to_batches())])
    return store


def test_interrupted_query_becomes_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt) as caught, _engine(Path("store.duckdb")):
        raise RuntimeError(INTERRUPTED)

    assert str(caught.value.__cause__) == INTERRUPTED


def test_other_runtime_errors_pass_unchanged() -> None:
    with pytest.raises(RuntimeError, match="something else"), _engine(Path("store.duckdb")):
        raise RuntimeError("something else")


@pytest.mark.parametrize(
    "call",
    [
        lambda store: store.stats(OHLCV, []),
        lambda store: store.count(OHLCV),
        lambda store: store.distinct_values(OHLCV, "symbol", []),
        lambda store: list(store.scan(OHLCV, [], ["time"], 100)),
    ],
    ids=["stats", "count", "distinct", "scan-windows"],
)
def test_every_store_query_turns_an_interrupt_back_into_keyboard_interrupt(
    candles: DuckDBStore, call: Any
) -> None:
    _interrupt_queries(candles, "execute")

    with pytest.raises(KeyboardInterrupt):
        call(candles)


def test_interrupted_import_rolls_back_and_raises_keyboard_interrupt(
    candles: DuckDBStore,
) -> None:
    before = candles.count(OHLCV)
    rows = [{"exchange": "binance", "symbol": "ETH/USDT", "timeframe": "1m",
             "price_type": "trade", "time": 0, "open": "1", "high": "1", "low": "1",
             "close": "1", "volume": "1"}]  # fmt: skip
    real = candles._con

    class Connection:
        def cursor(self) -> Any:
            cursor = real.cursor()

            class Cursor:
                def execute(self, query: str, *args: Any) -> Any:
                    if query.startswith("INSERT"):
                        raise RuntimeError(INTERRUPTED)
                    return cursor.execute(query, *args)

                def __getattr__(self, name: str) -> Any:
                    return getattr(cursor, name)

            return Cursor()

    candles._con = Connection()  # type: ignore[assignment]

    with pytest.raises(KeyboardInterrupt):
        candles.insert([(OHLCV, table_of(OHLCV, rows).to_batches())])
    candles._con = real

    assert candles.count(OHLCV) == before


def test_interrupt_while_reading_batches_removes_the_partial_export(
    candles: DuckDBStore, tmp_path: Path
) -> None:
    _interrupt_queries(candles, "batches")
    out = tmp_path / "out"
    request = build_request(dataset="ohlcv", format="csv")

    with pytest.raises(KeyboardInterrupt):
        run_export(request, candles, output_dir=out, batch_rows=10)

    assert list(out.iterdir()) == []


def test_cli_interrupted_query_exits_130_with_one_line(
    candles: DuckDBStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = candles.path
    candles.close()
    opened = DuckDBStore.__init__

    def interrupted_store(self: DuckDBStore, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        _interrupt_queries(self, "batches")

    monkeypatch.setattr(DuckDBStore, "__init__", interrupted_store)
    out = tmp_path / "out"

    code = main(["--store", str(path), "export", "ohlcv", "--format", "csv", "--output", str(out)])

    assert code == 130
    assert capsys.readouterr().err == "\nInterrupted.\n"
    assert list(out.iterdir()) == []
