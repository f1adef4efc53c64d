"""Shared checks of the account, order-book, ticker and derivatives tests.

Exports go through ``run_export`` and come back through independent readers (csv, json,
pyarrow.parquet, each codec's own library); every value is turned into one canonical
Python form (Decimal, int nanoseconds, bool, str) so that a row read from the source by
the test and a row read back from an export compare equal only when every value is equal.
"""

from __future__ import annotations

import csv
import io
import json
import re
from calendar import timegm
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from marketexport.datasets import DECIMAL_TYPE, Dataset, get_dataset
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.ingest import Hints, ingest_paths
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import decompress_with_own_library

# Each format once, each with a different codec, so every codec path is exercised.
FORMAT_CODECS = (("csv", "gzip"), ("json", "none"), ("jsonl", "zstd"), ("parquet", "snappy"))
_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1000, "ns": 1}


def iso_ns(text: str) -> int:
    """Nanoseconds of ISO 8601 UTC text, parsed without marketexport."""
    match = _ISO.match(text)
    assert match, text
    seconds = timegm(tuple(int(part) for part in match.groups()[:6]) + (0, 0, 0))
    return seconds * 1_000_000_000 + int((match[7] or "").ljust(9, "0"))


def row_of(spec: Dataset, **values: Any) -> dict[str, Any]:
    """A full expected row: every column, None where not given."""
    unknown = set(values) - set(spec.column_names)
    assert not unknown, unknown
    return {name: values.get(name) for name in spec.column_names}


def canonical(kind: str, value: Any) -> Any:
    """One comparable form per kind; empty CSV fields are nulls."""
    if value is None or value == "":
        return None
    if kind == "decimal":
        assert not isinstance(value, float), f"float {value!r} in an exact export"
        return Decimal(str(value))
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        assert value in ("true", "false"), value
        return value == "true"
    if kind == "time":
        return value if isinstance(value, int) else iso_ns(value)
    assert isinstance(value, str), f"{kind} value {value!r} is not text"
    return value


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    table = pq.read_table(path)
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_timestamp(column.type):
            assert column.type.tz == "UTC"
            factor = _UNIT_NS[column.type.unit]
            ints = pc.cast(column, pa.int64()).to_pylist()
            columns[name] = [None if v is None else v * factor for v in ints]
        else:
            columns[name] = column.to_pylist()
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def read_back(path: Path, fmt: str, codec: str) -> list[dict[str, Any]]:
    """Rows of an export file, read with csv, json or pyarrow (not marketexport)."""
    if fmt == "parquet":
        return _parquet_rows(path)
    text = decompress_with_own_library(path, codec).decode("utf-8")
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if fmt == "jsonl":
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    rows = json.loads(text, parse_float=Decimal)
    assert isinstance(rows, list)
    return rows


def canonical_rows(spec: Dataset, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = {column.name: column.kind for column in spec.columns}
    return [{name: canonical(kinds[name], row[name]) for name in row} for row in rows]


def _sort_key(spec: Dataset, row: dict[str, Any]) -> tuple[str, ...]:
    parts = (row[name] for name in spec.key)
    return tuple(str(v.normalize() if isinstance(v, Decimal) else v) for v in parts)


def assert_exports_match(
    store: DuckDBStore,
    dataset: str,
    expected: list[dict[str, Any]],
    out_dir: Path,
    time_unit: str | None = None,
    formats: tuple[tuple[str, str], ...] = FORMAT_CODECS,
    **request: Any,
) -> None:
    """Export ``dataset`` in csv, json, jsonl and parquet (or ``formats``, pairs of format
    and codec); every row and value must match."""
    spec = get_dataset(dataset)
    want = sorted(canonical_rows(spec, expected), key=lambda row: _sort_key(spec, row))
    assert len({_sort_key(spec, row) for row in want}) == len(want), "expected keys repeat"
    for fmt, codec in formats:
        built = build_request(dataset=dataset, format=fmt, compression=codec, **request)
        result = run_export(built, store, output_dir=out_dir / fmt)

        got = canonical_rows(spec, read_back(result.path, fmt, codec))

        assert result.manifest.rows == len(want), fmt
        if time_unit is not None:
            assert result.manifest.time_unit == time_unit, fmt
        assert sorted(got, key=lambda row: _sort_key(spec, row)) == want, fmt
        assert verify_export(result.path).ok, fmt


def ingest(store: DuckDBStore, *paths: Path, **hints: Any) -> dict[str, dict[str, int]]:
    """Import files; every one must succeed. Returns rows added per dataset, summed."""
    totals: dict[str, dict[str, int]] = {}
    for report in ingest_paths(list(paths), store, Hints(**hints)):
        assert report.ok, report.error
        for name, counts in report.datasets.items():
            into = totals.setdefault(name, {"rows_read": 0, "rows_added": 0})
            into["rows_read"] += counts["rows_read"]
            into["rows_added"] += counts["rows_added"]
    return totals


def float_decimal(value: float | None) -> Decimal | None:
    """A binary float as the store keeps it: its shortest repr, rounded half-even to the
    store's 22 decimal places when the repr is longer (float noise such as ...9999995)."""
    if value is None or value != value:
        return None
    number = Decimal(repr(value))
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_TYPE.scale:
        return number.quantize(
            Decimal(1).scaleb(-DECIMAL_TYPE.scale), ROUND_HALF_EVEN, Context(prec=80)
        )
    return number
