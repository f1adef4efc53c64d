"""The export pipeline on a small synthetic store: every format x codec, exact values."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from marketexport.datasets import OHLCV, TRADES
from marketexport.errors import ConfigError, RequestError, TaskCancelled, TransientStoreError
from marketexport.export.compression import CODECS
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import decompress_with_own_library, table_of

T0_MS = 1_700_000_000_000
CANDLES = [
    {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "price_type": "trade",
        "time": (T0_MS + i * 60_000) * 1_000_000,
        "open": "0.00001234",
        "high": "78189.20000000",
        "low": "0.0000000001",
        "close": "75036192.45844001",
        "volume": "0" if i % 2 else None,
        "trades": 9_007_199_254_740_993 if i == 2 else i,
    }
    for i in range(5)
]


@pytest.fixture
def filled(store: DuckDBStore) -> DuckDBStore:
    store.insert([(OHLCV, table_of(OHLCV, CANDLES).to_batches())])
    return store


def _rows_back(path: Path, fmt: str, codec: str) -> list[dict[str, object]]:
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    text = decompress_with_own_library(path, codec).decode()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if fmt == "jsonl":
        return [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
    return json.loads(text, parse_float=Decimal)


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_every_format_and_codec_keeps_values(
    filled: DuckDBStore, tmp_path: Path, fmt: str, codec: str
) -> None:
    request = build_request(dataset="ohlcv", format=fmt, compression=codec)

    result = run_export(request, filled, output_dir=tmp_path)
    rows = _rows_back(result.path, fmt, codec)

    assert len(rows) == len(CANDLES) == result.manifest.rows
    for source, row in zip(CANDLES, rows, strict=True):
        for name in ("open", "high", "low", "close"):
            assert Decimal(str(row[name])) == Decimal(str(source[name]))
        assert row["volume"] in ("", None, "0", 0, Decimal(0))
    if fmt != "parquet":
        text = decompress_with_own_library(result.path, codec).decode()
        assert "0.00001234" in text and "0.0000000001" in text and "75036192.45844001" in text
        assert "E-" not in text and "e-" not in text
    assert verify_export(result.path).ok


def test_json_keeps_big_integers_as_strings(filled: DuckDBStore, tmp_path: Path) -> None:
    request = build_request(dataset="ohlcv", format="jsonl")

    result = run_export(request, filled, output_dir=tmp_path)
    rows = [json.loads(line) for line in result.path.read_text().splitlines()]

    assert rows[2]["trades"] == "9007199254740993"
    assert rows[1]["trades"] == 1
    assert rows[0]["time"] == "2023-11-14T22:13:20.000Z"


def test_filters_are_half_open_and_typed(filled: DuckDBStore, tmp_path: Path) -> None:
    request = build_request(
        dataset="ohlcv",
        format="csv",
        start=str(T0_MS + 60_000),
        end=str(T0_MS + 180_000),
        where=["trades in (1, 9007199254740993, 3)", "open >= 0.00001"],
    )

    result = run_export(request, filled, output_dir=tmp_path)

    assert result.manifest.rows == 2
    assert result.manifest.first_time == "2023-11-14T22:14:20.000Z"
    assert result.manifest.last_time == "2023-11-14T22:15:20.000Z"


class _CancelAfter:
    def __init__(self, checks: int) -> None:
        self.checks = checks

    def is_cancelled(self) -> bool:
        self.checks -= 1
        return self.checks < 0


def test_cancelled_export_leaves_nothing(filled: DuckDBStore, tmp_path: Path) -> None:
    request = build_request(dataset="ohlcv", format="csv", compression="gzip")

    out = tmp_path / "out"

    with pytest.raises(TaskCancelled):
        run_export(request, filled, output_dir=out, batch_rows=1, cancel=_CancelAfter(2))

    assert list(out.iterdir()) == []


def test_tampered_file_and_manifest_fail_verification(filled: DuckDBStore, tmp_path: Path) -> None:
    result = run_export(build_request(dataset="ohlcv", format="jsonl"), filled, output_dir=tmp_path)
    original = result.path.read_bytes()

    changed = bytearray(original)
    changed[40] ^= 0x01
    result.path.write_bytes(bytes(changed))
    assert not verify_export(result.path).ok

    result.path.write_bytes(original)
    manifest = json.loads(result.manifest_path.read_text())
    manifest["rows"] += 1
    result.manifest_path.write_text(json.dumps(manifest))
    report = verify_export(result.path)
    assert not report.ok
    assert any("rows" in problem for problem in report.problems)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("dataset", "candles", "'candles'"),
        ("format", "parqet", "'parqet'"),
        ("compression", "brotli", "'brotli'"),
        ("columns", "open,bogus", "'bogus'"),
        ("start", "yesterday", "'yesterday'"),
    ],
)
def test_bad_requests_name_the_value(field: str, value: str, named: str) -> None:
    fields = {"dataset": "ohlcv", "format": "csv", field: value}

    with pytest.raises(RequestError) as caught:
        build_request(**fields)  # type: ignore[arg-type]

    assert named in str(caught.value)
    assert "expected" in str(caught.value)


def test_trades_dataset_exports_empty_selection(store: DuckDBStore, tmp_path: Path) -> None:
    assert TRADES.time_column == "time"
    request = build_request(dataset="trades", format="json")

    result = run_export(request, store, output_dir=tmp_path)

    assert json.loads(result.path.read_text()) == []
    assert result.manifest.rows == 0
    assert verify_export(result.path).ok


def test_unknown_symbol_names_the_stored_ones(filled: DuckDBStore, tmp_path: Path) -> None:
    request = build_request(dataset="ohlcv", format="csv", symbols=["BTCUSDT"])

    with pytest.raises(RequestError) as caught:
        run_export(request, filled, output_dir=tmp_path / "out")

    assert "'BTCUSDT'" in str(caught.value)
    assert "BTC/USDT" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_a_request_error(filled: DuckDBStore, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    request = build_request(dataset="ohlcv", format="csv")

    with pytest.raises(ConfigError) as caught:
        run_export(request, filled, output_dir=blocker / "sub")

    assert str(blocker / "sub") in str(caught.value)


class _FailingStore:
    """Delegates to a real store but breaks after the first batch of a scan."""

    def __init__(self, inner: DuckDBStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def scan(self, *args: object, **kwargs: object) -> object:
        batches = iter(self.inner.scan(*args, **kwargs))  # type: ignore[arg-type]

        class Broken:
            schema = None

            def __iter__(self) -> Broken:
                self.sent = False
                return self

            def __next__(self) -> object:
                if self.sent:
                    raise TransientStoreError("connection lost; will retry")
                self.sent = True
                return next(batches)

            def close(self) -> None:
                return None

        return Broken()


def test_failing_export_leaves_nothing(filled: DuckDBStore, tmp_path: Path) -> None:
    out = tmp_path / "out"
    request = build_request(dataset="ohlcv", format="parquet")

    with pytest.raises(TransientStoreError):
        run_export(request, _FailingStore(filled), output_dir=out, batch_rows=1)  # type: ignore[arg-type]

    assert list(out.iterdir()) == []


def test_store_errors_are_classified(tmp_path: Path) -> None:
    from marketexport.store.duckdb import _wrap

    busy = _wrap(OSError('Could not set lock on file "x": Conflicting lock is held'), tmp_path)
    memory = _wrap(OSError("Out of Memory Error: could not allocate block (pin block)"), tmp_path)

    assert busy.retryable and "busy" in str(busy)
    assert not memory.retryable and "busy" not in str(memory)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"where": ["time >= garbage"]}, "'garbage'"),
        ({"start": "9999-12-31"}, "'9999-12-31'"),
        ({"where": ["open >= 12345678901234567890"]}, "'12345678901234567890'"),
        ({"where": ["trades > 99999999999999999999"]}, "'99999999999999999999'"),
    ],
)
def test_out_of_range_values_are_request_errors(fields: dict[str, object], named: str) -> None:
    with pytest.raises(RequestError) as caught:
        build_request(dataset="ohlcv", format="csv", **fields)  # type: ignore[arg-type]

    assert named in str(caught.value)


def test_double_equals_is_equality() -> None:
    request = build_request(dataset="trades", format="csv", where=["side == sell"])

    assert request.where[0].op == "=" and request.where[0].values == ("sell",)


def test_missing_store_is_not_created_for_an_export(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "store.duckdb"

    with pytest.raises(ConfigError) as caught:
        DuckDBStore(path, read_only=True)

    assert str(path) in str(caught.value)
    assert not path.exists()


def test_filtered_exports_get_their_own_names(filled: DuckDBStore, tmp_path: Path) -> None:
    low = build_request(dataset="ohlcv", format="csv", where=["trades < 2"])
    high = build_request(dataset="ohlcv", format="csv", where=["trades >= 2"])

    first = run_export(low, filled, output_dir=tmp_path)
    second = run_export(high, filled, output_dir=tmp_path)

    assert first.path != second.path and first.path.exists() and second.path.exists()
