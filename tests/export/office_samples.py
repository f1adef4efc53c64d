"""Synthetic rows for every dataset and the independent checks the xlsx and XML tests share.

The rows hold the values the formats find hard: ids of 19 digits, decimals of 16 and more
significant digits, tiny and negative decimals, integers beyond 2**53, nulls, booleans and
millisecond times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketexport.datasets import Dataset
from marketexport.export.pipeline import ExportResult, run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import table_of

T0_MS = 1_700_000_000_000
DECIMALS = [
    "0.00001234",
    "78189.2",
    "75036192.45844001",  # 16 significant digits: Excel would round it
    "-0.5",
    "0",
    "123456789012345",  # 15 digits: Excel holds it
    "1234567890.123456789",
    "0.000000000000000001",
]
INTEGERS = [0, 9_007_199_254_740_993, -5, 42, 10**15 - 1]
TEXTS = ["BTC/USDT", "buy", "x", "limit order", "ÄÖü €"]


def sample_rows(spec: Dataset, rows: int) -> list[dict[str, Any]]:
    """``rows`` rows of ``spec`` with every column filled by kind (nulls where allowed)."""
    out = []
    for i in range(rows):
        row: dict[str, Any] = {}
        for n, column in enumerate(spec.columns):
            if column.nullable and column.name != spec.time_column and (i + n) % 5 == 4:
                row[column.name] = None
                continue
            row[column.name] = _value(column.kind, column.name, i, n)
        out.append(row)
    return out


def _value(kind: str, name: str, i: int, n: int) -> Any:
    if kind == "time":
        return (T0_MS + i * 60_123 + n) * 1_000_000
    if kind == "id":
        return str(10**18 + 7_919 * i + n)  # 19 digits, beyond 2**53
    if kind == "decimal":
        return DECIMALS[(i + n) % len(DECIMALS)]
    if kind == "integer":
        return INTEGERS[(i + n) % len(INTEGERS)]
    if kind == "boolean":
        return (i + n) % 2 == 0
    if name == "exchange":
        return "binance"
    return TEXTS[(i + n) % len(TEXTS)]


def filled_store(store: DuckDBStore, spec: Dataset, rows: list[dict[str, Any]]) -> DuckDBStore:
    store.insert([(spec, table_of(spec, rows).to_batches())])
    return store


def export(
    store: DuckDBStore, tmp_path: Path, dataset: str, fmt: str, batch_rows: int = 7, **fields: Any
) -> ExportResult:
    """Export through the real pipeline, in small batches so that several are written."""
    request = build_request(dataset=dataset, format=fmt, **fields)
    return run_export(request, store, output_dir=tmp_path / "out", batch_rows=batch_rows)


def store_rows(
    store: DuckDBStore, spec: Dataset, columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """The rows as the store holds them, in export order; times as epoch ns integers."""
    names = columns or spec.column_names
    reader = store.scan(spec, [], names, 65_536)
    batches = [pa.Table.from_batches([batch]) for batch in reader]
    reader.close()
    if not batches:
        return []
    table = pa.concat_tables(batches, promote_options="permissive")
    for i, column in enumerate(names):
        if spec.column(column).kind == "time":
            table = table.set_column(i, column, table.column(i).cast(pa.int64()))
    return table.to_pylist()


def epoch_ns(moment: datetime) -> int:
    """Epoch nanoseconds of a naive-UTC or aware datetime, exactly (no float)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


def iso_ns(text: str) -> int:
    """Epoch nanoseconds of an ISO 8601 UTC text with any number of fraction digits."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    assert match, text
    whole = datetime.fromisoformat(match[1]).replace(tzinfo=UTC)
    fraction = (match[2] or "").ljust(9, "0")
    return epoch_ns(whole) + int(fraction)


def significant_digits(value: Decimal) -> int:
    return len(value.normalize().as_tuple().digits) if value != 0 else 1


def unescape_xstring(text: str) -> str:
    """ECMA-376 ST_Xstring decoding, as Excel applies it: _xHHHH_ is one character."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)
