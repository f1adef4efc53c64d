"""CSV rendered by the PostgreSQL server (store/pgrender.py): the same bytes as DuckDB's.

The server writes each row as a finished CSV line; these tests pin that the lines are the
embedded store's export byte for byte, that values the embedded store could not hold still
stop the export with their name, and when the batch scan is used instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from marketexport.datasets import DATASETS, OHLCV, ORDERBOOK, ORDERS, TICKER, Dataset
from marketexport.errors import StoreError
from marketexport.export.pipeline import ExportResult, run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from marketexport.store.pgrender import find_decimal_misfit, line_parts
from tests.store.conftest import run_sql
from tests.store.samples import sample_table

pytestmark = pytest.mark.postgres


def lines_only(store: Any) -> Any:
    """The store, with its batch scan refused: a CSV export must take the lines."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the batch scan ran where the server should render lines")

    store.scan = refuse
    return store


def export_both(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path, **request: Any
) -> tuple[ExportResult, ExportResult]:
    built = build_request(format="csv", **request)
    from_pg = run_export(built, pg_store, output_dir=tmp_path / "pg", batch_rows=7)
    from_duck = run_export(built, duck, output_dir=tmp_path / "duck", batch_rows=7)
    return from_pg, from_duck


def assert_same(from_pg: ExportResult, from_duck: ExportResult) -> None:
    assert from_pg.path.name == from_duck.path.name
    assert from_pg.path.read_bytes() == from_duck.path.read_bytes()
    for field in ("rows", "time_unit", "first_time", "last_time", "payload_sha256"):
        assert getattr(from_pg.manifest, field) == getattr(from_duck.manifest, field), field


def fill(pg_store: Any, duck: DuckDBStore, spec: Dataset, table: pa.Table) -> None:
    pg_store.insert([(spec, table.to_batches())])
    duck.insert([(spec, table.to_batches())])


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_every_dataset_renders_like_duckdb_in_every_unit(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path, unit: str
) -> None:
    for spec in DATASETS.values():
        fill(pg_store, duck, spec, sample_table(spec, 30, unit))
    lines_only(pg_store)

    for spec in DATASETS.values():
        from_pg, from_duck = export_both(pg_store, duck, tmp_path / spec.name, dataset=spec.name)

        assert from_pg.manifest.rows > 0
        assert_same(from_pg, from_duck)


@pytest.mark.parametrize(
    "request_args",
    [
        {"exchanges": ["coinbase"]},
        {"symbols": ["btc/usdt", "B-TC/USD"], "start": "2023-11-14T22:15:20.123456789Z"},
        {"end": "2023-11-14T22:18:20.123Z", "columns": ["close", "symbol", "time"]},
        {"where": ["volume>0.00001234"], "columns": ["volume"]},
    ],
    ids=["exchange", "symbols-start", "end-columns", "where-decimal"],
)
def test_filters_and_columns_render_like_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path, request_args: dict[str, Any]
) -> None:
    fill(pg_store, duck, OHLCV, sample_table(OHLCV, 40, "ns"))
    lines_only(pg_store)

    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="ohlcv", **request_args)

    assert 0 < from_pg.manifest.rows < 40
    assert_same(from_pg, from_duck)


def test_compressed_export_carries_the_same_payload(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    fill(pg_store, duck, OHLCV, sample_table(OHLCV, 30))
    lines_only(pg_store)

    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="ohlcv", compression="zstd")

    assert from_pg.manifest.payload_sha256 == from_duck.manifest.payload_sha256
    assert from_pg.manifest.rows == from_duck.manifest.rows > 0


def test_empty_selection_renders_like_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    fill(pg_store, duck, OHLCV, sample_table(OHLCV, 10))
    lines_only(pg_store)

    from_pg, from_duck = export_both(
        pg_store, duck, tmp_path, dataset="ohlcv", where=["close<-99999999"]
    )

    assert from_pg.manifest.rows == 0 and from_pg.manifest.first_time is None
    assert_same(from_pg, from_duck)


def test_times_before_1970_render_like_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    table = sample_table(OHLCV, 20, "ns")
    times = pa.array(
        [-86_400_000_000_001 + i * 999 for i in range(table.num_rows)], pa.timestamp("ns")
    )
    fill(pg_store, duck, OHLCV, table.set_column(table.column_names.index("time"), "time", times))
    lines_only(pg_store)

    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="ohlcv")

    assert from_pg.manifest.first_time == "1969-12-30T23:59:59.999999999Z"
    assert_same(from_pg, from_duck)


@pytest.mark.parametrize(
    "symbols",
    [("plain", "BTC/USDT"), ('q"uote', "new\nline", "", "cr\rhere", "a,b", "plain")],
    ids=["plain", "awkward"],
)
def test_text_joined_by_the_server_renders_like_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path, symbols: tuple[str, ...]
) -> None:
    """exchange, symbol, timeframe and price_type are never NULL, so the server sends them
    as one value joined with 0xFF; the client turns that into commas, or splits the values
    apart to quote them when one holds a quote, comma, line break or nothing."""
    table = sample_table(OHLCV, 30, "ms")
    names = pa.array([symbols[i % len(symbols)] for i in range(table.num_rows)], pa.string())
    fill(
        pg_store, duck, OHLCV, table.set_column(table.column_names.index("symbol"), "symbol", names)
    )
    lines_only(pg_store)

    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="ohlcv")

    assert_same(from_pg, from_duck)
    text = from_pg.path.read_bytes()
    for symbol in symbols:
        quoted = any(c in symbol for c in ',"\r\n') or not symbol
        field = f'"{symbol.replace(chr(34), chr(34) * 2)}"' if quoted else symbol
        assert f",{field},".encode() in text


def test_parts_join_neighbours_and_leave_nanos_out_unless_needed(pg_store: Any) -> None:
    pg_store.insert([(OHLCV, sample_table(OHLCV, 10).to_batches())])
    connection = pg_store._begin_read()
    try:
        table = pg_store.table(OHLCV, connection)
    finally:
        pg_store._end(connection, True)
    names = ["exchange", "symbol", "time", "open", "close", "timeframe"]

    joined = line_parts(table, names, "ms", join_texts=True)
    apart = line_parts(table, names, "ns", join_texts=False)

    assert [(p.kind, p.names, p.nanos) for p in joined] == [
        ("text", ("exchange", "symbol"), False),
        ("time", ("time",), False),
        ("numbers", ("open", "close"), False),
        ("text", ("timeframe",), False),
    ]
    assert [(p.kind, p.names, p.nanos) for p in apart] == [
        ("text", ("exchange",), False),
        ("text", ("symbol",), False),
        ("time", ("time",), True),
        ("numbers", ("open", "close"), False),
        ("text", ("timeframe",), False),
    ]


@pytest.mark.parametrize(
    "value",
    ["12345678901234567", "0.00000000000000000000001", "-99999999999999999.5", "NaN", "-Infinity"],
)
def test_decimal_the_embedded_store_cannot_hold_stops_the_export(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path, value: str
) -> None:
    pg_store.insert([(OHLCV, sample_table(OHLCV, 30).to_batches())])
    run_sql(
        pg_url,
        f"UPDATE \"{pg_schema}\".ohlcv SET quote_volume = '{value}' "
        f'WHERE time = (SELECT max(time) FROM "{pg_schema}".ohlcv)',
    )
    lines_only(pg_store)

    with pytest.raises(StoreError) as raised:
        run_export(build_request(dataset="ohlcv", format="csv"), pg_store, output_dir=tmp_path)

    assert f"value '{value}' of column 'quote_volume'" in str(raised.value)
    assert "decimal(38, 22)" in str(raised.value) and not raised.value.retryable
    assert list(tmp_path.iterdir()) == []
    assert pg_store.stats(OHLCV, []).rows > 0  # the connection came back usable


@pytest.mark.parametrize("spec", [TICKER, ORDERBOOK], ids=lambda spec: spec.name)
def test_time_the_embedded_store_cannot_hold_stops_the_export(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path, spec: Dataset
) -> None:
    pg_store.insert([(spec, sample_table(spec, 10).to_batches())])
    run_sql(pg_url, f"UPDATE \"{pg_schema}\".{spec.name} SET receive_time = '2300-01-01 00:00Z'")
    lines_only(pg_store)

    with pytest.raises(StoreError) as raised:
        run_export(build_request(dataset=spec.name, format="csv"), pg_store, output_dir=tmp_path)

    message = str(raised.value)
    assert "2300-01-01 00:00:00+00" in message and "'receive_time'" in message
    assert "1677-09-21 to 2262-04-11" in message
    assert list(tmp_path.iterdir()) == []


# The last nanosecond the embedded store holds: 2262-04-11T23:47:16.854775807Z.
LAST_NS = 2**63 - 1


@pytest.mark.parametrize("column", ["time", "updated_time"])
def test_the_last_whole_microsecond_the_embedded_store_holds_renders_like_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path, column: str
) -> None:
    table = sample_table(ORDERS, 10, "us")
    times = table.column(column).to_pylist()
    times[-1] = LAST_NS - 807  # 2262-04-11T23:47:16.854775Z, a whole microsecond
    index = table.column_names.index(column)
    table = table.set_column(index, column, pa.array(times, table.schema.field(column).type))
    fill(pg_store, duck, ORDERS, table)
    lines_only(pg_store)

    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="orders")

    assert_same(from_pg, from_duck)
    assert b"2262-04-11T23:47:16.854775Z" in from_pg.path.read_bytes()


def refused_orders_export(pg_store: Any, pg_url: str, change: str, tmp_path: Path) -> str:
    """The message of a CSV export of sample orders after ``change`` (SQL) made a misfit;
    the export must leave no file."""
    pg_store.insert([(ORDERS, sample_table(ORDERS, 10).to_batches())])
    run_sql(pg_url, change)

    with pytest.raises(StoreError) as raised:
        run_export(build_request(dataset="orders", format="csv"), pg_store, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    return str(raised.value)


def test_a_nanosecond_past_the_range_is_named_with_its_nanos(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    lines_only(pg_store)
    change = (
        f"UPDATE \"{pg_schema}\".orders SET updated_time = '2262-04-11 23:47:16.854775+00', "
        "updated_time_nanos = 808 WHERE updated_time IS NOT NULL"
    )

    message = refused_orders_export(pg_store, pg_url, change, tmp_path)

    assert "'2262-04-11 23:47:16.854775+00 + 808 ns'" in message and "'updated_time'" in message


def test_a_main_time_past_the_range_is_named_by_the_batch_scan(
    pg_store: Any, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    change = (
        f"UPDATE \"{pg_schema}\".orders SET time = '2300-01-01 00:00+00' "
        f'WHERE time = (SELECT max(time) FROM "{pg_schema}".orders)'
    )

    message = refused_orders_export(pg_store, pg_url, change, tmp_path)

    assert "value '2300-01-01 00:00:00 + 789 ns' of column 'time'" in message
    assert "1677-09-21 to 2262-04-11" in message


def test_guarded_cells_and_stale_stats_take_the_batch_scan(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    fill(pg_store, duck, OHLCV, sample_table(OHLCV, 20))
    guarded = {"options": {"csv_safe_for_spreadsheets": True}}

    no_stats = pg_store.scan_lines(OHLCV, [], OHLCV.column_names, "csv", 10)
    pg_store.stats(OHLCV, [])
    other_layout = pg_store.scan_lines(OHLCV, [], OHLCV.column_names, "tsv", 10)
    from_pg, from_duck = export_both(pg_store, duck, tmp_path, dataset="ohlcv", **guarded)

    assert no_stats is None and other_layout is None
    assert from_pg.manifest.notes == from_duck.manifest.notes
    assert_same(from_pg, from_duck)


def test_decimal_misfits_are_found_in_quoted_lines() -> None:
    names = ["symbol", "price", "note"]
    fine = pa.array(['"a,b",0.5,12345678901234567890\n', "x,-9999999999999999.5,\n"])
    tiny = pa.array(['"a\nb",0.00000000000000000000001,y\n'])
    nan = pa.array(["NaN,1,\n", "Infinity/USD,NaN,z\n"]).slice(1)

    assert find_decimal_misfit(fine, names, ["price"]) is None
    assert find_decimal_misfit(tiny, names, ["price"]) == ("price", "0.00000000000000000000001")
    assert find_decimal_misfit(nan, names, ["price"]) == ("price", "NaN")
    assert find_decimal_misfit(fine, names, []) is None
