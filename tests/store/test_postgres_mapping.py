"""A collector's own tables, mapped by configuration; ``marketexport db init`` and ``check``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from marketexport.cli import main
from marketexport.config import Settings, load_settings
from marketexport.datasets import DATASETS, OHLCV, TRADES
from marketexport.errors import ConfigError, StoreError
from marketexport.export.pipeline import run_export
from marketexport.request import Filter, build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import table_of
from tests.store.conftest import run_sql

pytestmark = pytest.mark.postgres

MAPPING = {
    "tables": {
        "ohlcv": {
            "table": "candles",
            "columns": {
                "exchange": "venue",
                "symbol": "pair",
                "timeframe": "tf",
                "price_type": "kind",
                "time": "ts",
                "open": "o",
                "high": "h",
                "low": "l",
                "close": "c",
                "volume": "v",
                "trades": "n",
                "quote_volume": "",
                "taker_buy_volume": "",
                "taker_buy_quote_volume": "",
            },
        },
        "trades": {"table": "fills_feed", "columns": {"time": "at"}},
    }
}
COLLECTOR_SQL = """
CREATE TABLE "{schema}".candles (
  venue text NOT NULL, pair varchar(20) NOT NULL, tf text NOT NULL, kind text NOT NULL,
  ts timestamp without time zone NOT NULL, o double precision NOT NULL,
  h numeric(20, 8) NOT NULL, l numeric NOT NULL, c numeric NOT NULL, v numeric, n integer,
  PRIMARY KEY (venue, pair, tf, kind, ts));
INSERT INTO "{schema}".candles VALUES
  ('binance', 'BTC/USDT', '1m', 'trade', '2023-11-14 22:13:20.123', 0.1, 78189.2, 0.00001234,
   75036192.45844001, NULL, 7),
  ('binance', 'BTC/USDT', '1m', 'trade', '2023-11-14 22:14:20', 1e-05, 1, 2, 3, 0, NULL);
CREATE TABLE "{schema}".fills_feed (
  exchange text NOT NULL, symbol text NOT NULL, at timestamptz NOT NULL,
  trade_id bigint NOT NULL, side text, price double precision NOT NULL, amount numeric NOT NULL,
  cost numeric, is_buyer_maker boolean, aggregated boolean NOT NULL, first_trade_id bigint,
  last_trade_id bigint, is_best_match boolean,
  UNIQUE (exchange, symbol, aggregated, trade_id));
INSERT INTO "{schema}".fills_feed (exchange, symbol, at, trade_id, price, amount, aggregated)
VALUES ('kraken', 'ETH/EUR', '2024-01-01 00:00:00.000001+00', 10, 2200.15, 0.5, false),
       ('kraken', 'ETH/EUR', '2024-01-01 00:00:00.000001+00', 9, 2200.1, 1.25, false);
"""
MS = 1_000_000
EXPECTED_CANDLES = [
    {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "price_type": "trade",
     "time": 1_700_000_000_123 * MS, "open": "0.1", "high": "78189.2", "low": "0.00001234",
     "close": "75036192.45844001", "volume": None, "trades": 7},
    {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "price_type": "trade",
     "time": 1_700_000_060_000 * MS, "open": "0.00001", "high": "1", "low": "2", "close": "3",
     "volume": "0", "trades": None},
]  # fmt: skip
EXPECTED_TRADES = [
    {"exchange": "kraken", "symbol": "ETH/EUR", "time": 1_704_067_200_000_001_000,
     "trade_id": trade_id, "price": price, "amount": amount, "aggregated": False}
    for trade_id, price, amount in (("10", "2200.15", "0.5"), ("9", "2200.1", "1.25"))
]  # fmt: skip


@pytest.fixture
def collector(pg_settings: Settings, pg_url: str, pg_schema: str) -> Any:
    from marketexport.store.postgres import PostgresStore

    for statement in COLLECTOR_SQL.format(schema=pg_schema).split(";"):
        if statement.strip():
            run_sql(pg_url, statement)
    settings = replace(pg_settings, postgres={"schema": pg_schema, **MAPPING})
    store = PostgresStore(pg_url, settings=settings)
    yield store
    store.close()


def test_mapped_tables_read_like_the_embedded_store(
    collector: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    duck.insert([(OHLCV, table_of(OHLCV, EXPECTED_CANDLES).to_batches())])
    duck.insert([(TRADES, table_of(TRADES, EXPECTED_TRADES).to_batches())])

    for spec in (OHLCV, TRADES):
        reader = collector.scan(spec, [], spec.column_names, 100)
        got = pa.Table.from_batches(list(reader), schema=reader.schema)
        assert got.equals(table_of(spec, EXPECTED_CANDLES if spec is OHLCV else EXPECTED_TRADES))
        assert collector.stats(spec, []) == duck.stats(spec, [])
        request = build_request(dataset=spec.name, format="csv")
        mine = run_export(request, collector, output_dir=tmp_path / "pg")
        theirs = run_export(request, duck, output_dir=tmp_path / "duck")
        assert mine.path.read_bytes() == theirs.path.read_bytes()

    after = [Filter("time", ">=", (1_700_000_000_123 * MS + 1,))]
    assert collector.stats(OHLCV, after).rows == 1
    assert collector.distinct_values(OHLCV, "symbol", after) == ["BTC/USDT"]


def test_import_into_a_mapped_table_keeps_its_limits(collector: Any) -> None:
    more = [dict(row, time=row["time"] + 3600 * 10**9) for row in EXPECTED_CANDLES]
    with_nanos = [dict(more[0], time=more[0]["time"] + 5 * 60 * 10**9 + 1)]
    with_quote = [dict(more[0], time=more[0]["time"] + 9 * 60 * 10**9, quote_volume="1")]

    added = collector.insert([(OHLCV, table_of(OHLCV, more).to_batches())])
    with pytest.raises(StoreError) as nanos:
        collector.insert([(OHLCV, table_of(OHLCV, with_nanos).to_batches())])
    with pytest.raises(StoreError) as absent:
        collector.insert([(OHLCV, table_of(OHLCV, with_quote).to_batches())])

    assert added["ohlcv"].rows_added == 2
    assert "nanoseconds" in str(nanos.value) and "time_nanos" in str(nanos.value)
    assert "quote_volume" in str(absent.value) and "candles" in str(absent.value)
    assert collector.stats(OHLCV, []).rows == 4


def test_mapped_table_without_unique_key_refuses_imports(
    collector: Any, pg_url: str, pg_schema: str
) -> None:
    run_sql(
        pg_url,
        f'ALTER TABLE "{pg_schema}".fills_feed '
        "DROP CONSTRAINT fills_feed_exchange_symbol_aggregated_trade_id_key",
    )
    rows = table_of(TRADES, [dict(EXPECTED_TRADES[0], trade_id="11")])

    with pytest.raises(StoreError) as raised:
        collector.insert([(TRADES, rows.to_batches())])

    assert "unique index" in str(raised.value) and "fills_feed" in str(raised.value)


def test_missing_or_mistyped_column_is_named(
    pg_settings: Settings, pg_url: str, pg_schema: str
) -> None:
    from marketexport.store.postgres import PostgresStore

    run_sql(
        pg_url,
        f'CREATE TABLE "{pg_schema}".bars '
        "(exchange text, symbol text, timeframe text, price_type text, ts text)",
    )
    wrong_name = {"tables": {"ohlcv": {"table": "bars", "columns": {"time": "when"}}}}
    wrong_type = {"tables": {"ohlcv": {"table": "bars", "columns": {"time": "ts"}}}}
    errors = []
    for mapping in (wrong_name, wrong_type):
        store = PostgresStore(
            pg_url, settings=replace(pg_settings, postgres={"schema": pg_schema, **mapping})
        )
        try:
            with pytest.raises(StoreError) as raised:
                store.stats(OHLCV, [])
            errors.append(str(raised.value))
        finally:
            store.close()

    assert "no column 'when'" in errors[0] and "bars" in errors[0]
    assert "'ts'" in errors[1] and "type text" in errors[1] and "timestamp" in errors[1]


def test_mapping_keys_are_checked_when_settings_load(tmp_path: Path) -> None:
    config = tmp_path / "marketexport.toml"
    config.write_text(
        '[postgres.tables.ohlcv]\ntable = "candles"\n[postgres.tables.ohlcv.columns]\ntime = "ts"\n'
    )
    loaded = load_settings({}, config_file=config, environ={})
    bad = [
        {"tables": {"candles": {}}},
        {"tables": {"ohlcv": {"tabel": "x"}}},
        {"tables": {"ohlcv": {"columns": {"tme": "ts"}}}},
        {"tables": {"ohlcv": {"columns": {"time": ""}}}},
        {"schemas": "x"},
    ]

    beside = tmp_path / "beside.toml"
    beside.write_text('[marketexport]\nbatch_rows = 500\n[postgres]\nschema = "market"\n')
    both = load_settings({}, config_file=beside, environ={})

    assert loaded.postgres["tables"]["ohlcv"]["columns"] == {"time": "ts"}
    assert both.postgres == {"schema": "market"} and both.batch_rows == 500
    env = load_settings({}, environ={"MARKETEXPORT_POSTGRES": json.dumps({"schema": "m"})})
    assert env.postgres == {"schema": "m"}
    for raw in bad:
        with pytest.raises(ConfigError):
            load_settings({"postgres": raw}, environ={})


def test_db_init_creates_tables_keys_and_indexes(
    pg_url: str, pg_schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "marketexport.toml"
    config.write_text(f'[postgres]\nschema = "{pg_schema}"\n')
    base = ["--data-dir", str(tmp_path / "data"), "--config", str(config)]

    first = main([*base, "db", "init", "--store", pg_url, "--json"])
    created = json.loads(capsys.readouterr().out)
    second = main([*base, "db", "init", "--store", pg_url])
    again = capsys.readouterr().out
    checked = main([*base, "--store", pg_url, "db", "check"])
    types = dict(
        run_sql(
            pg_url,
            "SELECT column_name::text, data_type::text FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'ohlcv'",
            [pg_schema],
        )
    )
    keys = run_sql(
        pg_url,
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index "
        f"WHERE indrelid = '\"{pg_schema}\".ohlcv'::regclass ORDER BY 1",
    )

    assert first == second == checked == 0
    assert [t["dataset"] for t in created["tables"]] == list(DATASETS)
    assert all(t["created"] for t in created["tables"]) and "exists" in again
    assert types["close"] == "numeric" and types["time"] == "timestamp with time zone"
    assert types["time_nanos"] == "smallint" and types["trades"] == "bigint"
    indexes = " ".join(str(row[0]) for row in keys)
    assert (
        "UNIQUE" in indexes
        and '(exchange, symbol, timeframe, price_type, "time", time_nanos)' in indexes
    )
    assert '("time", time_nanos)' in indexes and '(exchange, symbol, "time")' in indexes


def test_db_check_reports_a_missing_table(
    pg_url: str, pg_schema: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "marketexport.toml"
    config.write_text(f'[postgres]\nschema = "{pg_schema}"\n')

    code = main(["--config", str(config), "--store", pg_url, "db", "check"])
    out = capsys.readouterr().out

    assert code == 1
    assert f"table '{pg_schema}.ohlcv' for dataset 'ohlcv' not found" in out
