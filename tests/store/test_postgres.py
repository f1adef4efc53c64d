"""The PostgreSQL store against a real server: same rows, order, stats and keys as DuckDB."""

from __future__ import annotations

import pickle
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from marketexport.config import Settings
from marketexport.datasets import DATASETS, OHLCV, TRADES, Dataset
from marketexport.errors import StoreError
from marketexport.request import Filter
from marketexport.store.duckdb import DuckDBStore
from tests.store.conftest import run_sql
from tests.store.samples import STEP_NS, T0_NS, sample_table

pytestmark = pytest.mark.postgres


def scan_all(store: Any, spec: Dataset, filters: list[Filter], rows: int = 7) -> pa.Table:
    reader = store.scan(spec, filters, spec.column_names, rows)
    try:
        batches = list(reader)
    finally:
        reader.close()
    assert all(batch.num_rows <= rows for batch in batches)
    # DuckDB's batches mark every field nullable, its reader's schema does not
    return (
        pa.Table.from_batches(batches).cast(reader.schema)
        if batches
        else reader.schema.empty_table()
    )


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_every_dataset_round_trips_like_duckdb(pg_store: Any, duck: DuckDBStore, unit: str) -> None:
    tables = {spec.name: sample_table(spec, 40, unit) for spec in DATASETS.values()}

    parts = [(DATASETS[name], table.to_batches(max_chunksize=9)) for name, table in tables.items()]
    added_pg = pg_store.insert(parts)
    added_duck = duck.insert([(DATASETS[n], t.to_batches()) for n, t in tables.items()])

    assert added_pg == added_duck
    for name, table in tables.items():
        spec = DATASETS[name]
        from_pg, from_duck = scan_all(pg_store, spec, []), scan_all(duck, spec, [])
        assert from_pg.schema == from_duck.schema == spec.store_schema
        assert from_pg.equals(from_duck), name
        assert from_pg.num_rows == table.num_rows
        assert pg_store.stats(spec, []) == duck.stats(spec, [])
        assert pg_store.stats(spec, []).time_unit == unit


def test_nanoseconds_are_kept_in_the_companion_column(pg_store: Any, pg_schema: str) -> None:
    table = sample_table(OHLCV, 6, "ns")

    pg_store.insert([(OHLCV, table.to_batches())])
    stored = run_sql(
        str(pg_store._url),
        f"SELECT time_nanos, to_char(time, 'US') FROM \"{pg_schema}\".ohlcv ORDER BY time",
    )

    assert {row[0] for row in stored} == {0, 789}
    assert pg_store.stats(OHLCV, []).time_unit == "ns"
    assert (
        scan_all(pg_store, OHLCV, [])
        .column("time")
        .equals(table.sort_by([("time", "ascending"), ("exchange", "ascending")]).column("time"))
    )


def test_duplicates_are_skipped_within_and_across_inserts(pg_store: Any) -> None:
    table = sample_table(TRADES, 30)
    doubled = pa.concat_tables([table, table.slice(0, 10)])

    first = pg_store.insert([(TRADES, doubled.to_batches(max_chunksize=8))])
    again = pg_store.insert([(TRADES, table.to_batches())])

    assert first["trades"].rows_read == 40 and first["trades"].rows_added == 30
    assert again["trades"].rows_added == 0 and again["trades"].rows_skipped == 30
    assert pg_store.stats(TRADES, []).rows == 30


def test_insert_is_one_transaction(pg_store: Any, pg_url: str, pg_schema: str) -> None:
    good = sample_table(OHLCV, 10)
    run_sql(pg_url, f'ALTER TABLE "{pg_schema}".trades ADD CHECK (price > 1000000000)')

    with pytest.raises(StoreError) as raised:
        pg_store.insert([(OHLCV, good.to_batches()), (TRADES, sample_table(TRADES).to_batches())])

    assert "trades" in str(raised.value)
    assert pg_store.stats(OHLCV, []).rows == 0


FILTERS = [
    [Filter("exchange", "in", ("binance",))],
    [Filter("symbol", "in", ("btc/usdt", "ÄBC/USD"))],
    [Filter("symbol", ">", ("B",)), Filter("symbol", "<=", ("a",))],
    [Filter("time", ">=", (T0_NS + 3 * STEP_NS + 123_456_789,))],
    [Filter("time", ">", (T0_NS + 3 * STEP_NS + 123_456_789,))],
    [Filter("time", "<", (T0_NS + 5 * STEP_NS + 123_456_789,))],
    [Filter("time", "<=", (T0_NS + 5 * STEP_NS + 123_456_789,))],
    [Filter("time", "=", (T0_NS + 5 * STEP_NS + 123_456_789,))],
    [Filter("time", "!=", (T0_NS + 5 * STEP_NS + 123_456_789,))],
    [Filter("time", "in", (T0_NS, T0_NS + STEP_NS + 123_456_789))],
    [Filter("time", ">=", (T0_NS + 2 * STEP_NS,)), Filter("time", "<", (T0_NS + 9 * STEP_NS,))],
    [Filter("close", ">", (Decimal("0.00001"),)), Filter("volume", "!=", (Decimal("0"),))],
    [Filter("trades", "<=", (3,))],
]


@pytest.fixture(scope="module")
def filled_pair(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Both stores holding the same 40 nanosecond candles, shared by the filter tests."""
    from marketexport.store.postgres import PostgresStore

    schema = f"mx_test_{secrets.token_hex(4)}"
    run_sql(pg_url, f'CREATE SCHEMA "{schema}"')
    pg = PostgresStore(pg_url, settings=Settings(postgres={"schema": schema}))
    duck = DuckDBStore(tmp_path_factory.mktemp("filters") / "store.duckdb")
    try:
        pg.init_schema()
        table = sample_table(OHLCV, 40, "ns")
        pg.insert([(OHLCV, table.to_batches())])
        duck.insert([(OHLCV, table.to_batches())])
        yield pg, duck
    finally:
        pg.close()
        duck.close()
        run_sql(pg_url, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.parametrize("filters", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filters_select_what_duckdb_selects(
    filled_pair: tuple[Any, Any], filters: list[Filter]
) -> None:
    pg_store, duck = filled_pair

    from_pg, from_duck = scan_all(pg_store, OHLCV, filters), scan_all(duck, OHLCV, filters)

    assert 0 < from_pg.num_rows < 40
    assert from_pg.equals(from_duck)
    assert pg_store.stats(OHLCV, filters) == duck.stats(OHLCV, filters)
    for column in ("exchange", "symbol"):
        assert pg_store.distinct_values(OHLCV, column, filters) == duck.distinct_values(
            OHLCV, column, filters
        )


def test_empty_selection_stats_and_column_subset(pg_store: Any, duck: DuckDBStore) -> None:
    table = sample_table(OHLCV, 12)
    pg_store.insert([(OHLCV, table.to_batches())])
    duck.insert([(OHLCV, table.to_batches())])
    nothing = [Filter("exchange", "in", ("kraken",))]

    reader = pg_store.scan(OHLCV, [], ["close", "time"], 5)
    subset = pa.Table.from_batches(list(reader), schema=reader.schema)

    assert pg_store.stats(OHLCV, nothing) == duck.stats(OHLCV, nothing)
    assert pg_store.stats(OHLCV, nothing).rows == 0
    empty = pg_store.scan(OHLCV, nothing, ["time"], 5)
    assert list(empty) == [] and empty.schema == pa.schema([OHLCV.store_schema.field("time")])
    assert subset.column_names == ["close", "time"]
    assert subset.equals(scan_all(duck, OHLCV, []).select(["close", "time"]))


def test_missing_table_names_database_and_table(pg_settings: Settings) -> None:
    from marketexport.store.postgres import PostgresStore

    store = PostgresStore(str(pg_settings.store), settings=pg_settings)
    try:
        with pytest.raises(StoreError) as raised:
            store.stats(OHLCV, [])
    finally:
        store.close()

    message = str(raised.value)
    assert "ohlcv" in message and 'database "test"' in message and "db init" in message
    assert not raised.value.retryable
    assert str(pickle.loads(pickle.dumps(raised.value))) == message


def test_out_of_range_decimal_is_named(pg_store: Any, pg_url: str, pg_schema: str) -> None:
    pg_store.insert([(OHLCV, sample_table(OHLCV, 3).to_batches())])
    run_sql(pg_url, f'UPDATE "{pg_schema}".ohlcv SET close = 0.00000000000000000000001')

    with pytest.raises(StoreError) as raised:
        scan_all(pg_store, OHLCV, [])

    assert "0.00000000000000000000001" in str(raised.value) and "close" in str(raised.value)
    # the failed scan gave its connection back in a usable state
    assert pg_store.stats(OHLCV, []).rows == 3


def test_scan_sees_the_rows_that_stats_counted(pg_store: Any, pg_url: str, pg_schema: str) -> None:
    """A collector writing between stats and scan changes neither count nor rows."""
    pg_store.insert([(OHLCV, sample_table(OHLCV, 20).to_batches())])
    later = sample_table(OHLCV, 40).slice(20)

    counted = pg_store.stats(OHLCV, [])
    other = store_for(pg_url, pg_schema)
    try:
        other.insert([(OHLCV, later.to_batches())])
    finally:
        other.close()
    scanned = scan_all(pg_store, OHLCV, [])

    assert counted.rows == scanned.num_rows == 20
    assert pg_store.stats(OHLCV, []).rows == 40


def store_for(url: str, schema: str) -> Any:
    from marketexport.store.postgres import PostgresStore

    return PostgresStore(url, settings=Settings(postgres={"schema": schema}))
