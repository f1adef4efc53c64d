"""Every real OHLCV, trades and aggTrades file: import, export in every format x codec, and
compare what comes back (read by independent readers) with the file read independently."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketexport.datasets import get_dataset
from marketexport.export.compression import CODECS
from marketexport.export.pipeline import run_export
from marketexport.ingest import Hints, ingest_file
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.conftest import REAL
from tests.helpers import decompress_with_own_library
from tests.ingest.expected import MS, US, Case, Row, ns_of
from tests.ingest.market_cases import BROKEN, CASES

FORMATS = ("csv", "json", "jsonl", "parquet")
UNIT_NS = {"ms": MS, "us": US, "ns": 1}
FRACTION_DIGITS = {"ms": 3, "us": 6, "ns": 9}
Imported = tuple[Path, list[Row]]


def _case_params() -> list[Any]:
    return [
        pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.slow else [])
        for case in CASES
    ]


@pytest.fixture(scope="session")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Case], Imported]]:
    """Imports a case's file into its own fresh store once; returns the store path and the
    rows the file should have become (read independently)."""
    done: dict[str, Imported] = {}

    def load(case: Case) -> Imported:
        if case.name not in done:
            if not REAL.is_dir():
                pytest.skip(f"real data folder {REAL} not found")
            path = tmp_path_factory.mktemp("store") / "store.duckdb"
            store = DuckDBStore(path)
            try:
                report = ingest_file(REAL / case.path, store, Hints(**case.hints))
            finally:
                store.close()
            assert report.ok, report.error
            done[case.name] = (path, case.expected(REAL))
        return done[case.name]

    yield load


def expected_unit(rows: list[Row]) -> str:
    """The coarsest of ms/us/ns that holds every expected time exactly."""
    if all(row["time"] % MS == 0 for row in rows):
        return "ms"
    return "us" if all(row["time"] % US == 0 for row in rows) else "ns"


def _iso_ns(text: str, unit: str) -> int:
    fraction = text.rstrip("Z").split(".")[1] if "." in text else ""
    assert text.endswith("Z") and len(fraction) == FRACTION_DIGITS[unit], text
    return ns_of(datetime.fromisoformat(text))


def _typed(kind: str, value: Any, unit: str) -> Any:
    """A value read back from a text format, as a Python value of the column's kind."""
    if value is None or value == "":
        return None
    if kind == "time":
        return _iso_ns(value, unit)
    if kind == "decimal":
        text = str(value)
        assert "e" not in text.lower(), f"decimal in E-notation: {text}"
        return Decimal(text)
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        assert value in ("true", "false"), value
        return value == "true"
    return value


def read_back(path: Path, fmt: str, codec: str, dataset: str, unit: str) -> list[Row]:
    """The exported rows, read with csv / json (decimals as Decimal) / pyarrow.parquet."""
    kinds = {column.name: column.kind for column in get_dataset(dataset).columns}
    if fmt == "parquet":
        table = pq.read_table(path)
        time_type = table.schema.field("time").type
        assert time_type.unit == unit and time_type.tz == "UTC", time_type
        times = table["time"].cast(pa.int64()).to_pylist()
        rows = table.to_pylist()
        for row, raw in zip(rows, times, strict=True):
            row["time"] = raw * UNIT_NS[unit]
        return rows
    text = decompress_with_own_library(path, codec).decode("utf-8")
    if fmt == "csv":
        raw_rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    elif fmt == "jsonl":
        raw_rows = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    else:
        raw_rows = json.loads(text, parse_float=Decimal)
    return [
        {name: _typed(kinds[name], value, unit) for name, value in row.items()} for row in raw_rows
    ]


def assert_same_rows(dataset: str, expected: list[Row], actual: list[Row]) -> None:
    """Same keys, and every column equal (columns the source lacks are null)."""
    spec = get_dataset(dataset)
    key = spec.key

    def by_key(rows: list[Row]) -> dict[tuple[Any, ...], Row]:
        return {tuple(row[name] for name in key): row for row in rows}

    wanted, got = by_key(expected), by_key(actual)
    assert len(wanted) == len(expected), "the source repeats a key"
    assert len(got) == len(actual) == len(expected)
    assert wanted.keys() == got.keys()
    for row_key, want in wanted.items():
        have = got[row_key]
        for column in spec.columns:
            expected_value = want.get(column.name)
            assert have[column.name] == expected_value, (row_key, column.name)
            if column.kind == "decimal" and expected_value is not None:
                assert isinstance(have[column.name], Decimal)
    times = [row["time"] for row in actual]
    assert times == sorted(times)


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", _case_params())
def test_real_file_survives_import_and_export(
    imported: Callable[[Case], Imported], tmp_path: Path, case: Case, fmt: str, codec: str
) -> None:
    store_path, expected = imported(case)
    request = build_request(dataset=case.dataset, format=fmt, compression=codec)

    store = DuckDBStore(store_path, read_only=True)
    try:
        result = run_export(request, store, output_dir=tmp_path)
    finally:
        store.close()
    unit = expected_unit(expected)
    rows = read_back(result.path, fmt, codec, case.dataset, unit)

    assert result.manifest.rows == len(expected)
    assert_same_rows(case.dataset, expected, rows)


def test_every_market_file_has_a_case(real: Path) -> None:
    """Each file under ohlcv/, trades/ and aggtrades/ is covered here, or is the broken one."""
    on_disk = {
        str(path.relative_to(real))
        for folder in ("ohlcv", "trades", "aggtrades")
        for path in (real / folder).rglob("*")
        if path.is_file()
    }

    covered = {case.path for case in CASES} | {BROKEN}

    assert on_disk == covered
