"""Whole exports: every format x codec x scheme, then `marketexport decrypt --decompress`,
read back with independent readers and compared with the source rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from marketexport.cli import main
from marketexport.datasets import OHLCV
from marketexport.errors import RequestError
from marketexport.export.compression import CODECS
from marketexport.export.encryption import SCHEMES, KeyRing
from marketexport.export.formats import FORMATS
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import decompress_with_own_library, table_of

from .conftest import scheme_cases

T0_MS = 1_700_000_000_000
ROWS = [
    {
        "exchange": "binance",
        "symbol": "BTC/USDT" if i % 3 else "ÉTH/€UR",
        "timeframe": "1m",
        "price_type": "trade",
        "time": (T0_MS + i * 60_000) * 1_000_000,
        "open": "0.00001234",
        "high": f"{78189 + i}.20000000",
        "low": "0.0000000001",
        "close": "75036192.45844001",
        "volume": str(i) if i % 2 else None,
        "trades": 9_007_199_254_740_993 if i == 2 else i,
    }
    for i in range(700)
]


@pytest.fixture
def filled(store: DuckDBStore) -> DuckDBStore:
    store.insert([(OHLCV, table_of(OHLCV, ROWS).to_batches())])
    return store


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]] | None:
    """Rows through each format's reference reader; None for a format without one here."""
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if fmt == "jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line, parse_float=Decimal) for line in lines]
    if fmt == "json":
        return list(json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal))
    if fmt == "xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        rows: list[dict[str, Any]] = []
        for sheet in book.worksheets:
            header, *body = list(sheet.iter_rows(values_only=True))
            names = [str(name).split(" ")[0] for name in header]
            rows += [dict(zip(names, values, strict=True)) for values in body]
        book.close()
        return rows
    if fmt == "xml":
        from lxml import etree

        root = etree.parse(str(path)).getroot()
        return [{child.tag: child.text for child in row} for row in root.iter("row")]
    return None


def assert_rows_match(rows: list[dict[str, Any]]) -> None:
    by_time = sorted(ROWS, key=lambda r: (r["time"], r["symbol"]))
    assert len(rows) == len(ROWS)
    for source, row in zip(by_time, rows, strict=True):
        assert row["symbol"] == source["symbol"]
        for name in ("open", "high", "low", "close"):
            assert Decimal(str(row[name])) == Decimal(str(source[name]))
        assert str(row["trades"]) == str(source["trades"])


def cli_decrypt(ring: KeyRing, scheme: str, source: Path, target: Path) -> None:
    offered = scheme_cases(ring.directory)[scheme][1]
    args = ["--data-dir", str(ring.directory.path.parent), "decrypt", str(source)]
    args += ["-o", str(target), "--decompress"]
    for name in offered.keys:
        args += ["--key", name]
    if offered.identity:
        args += ["--identity", offered.identity]
    assert main(args) == 0


@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_encrypted_export_decrypts_to_the_source(
    filled: DuckDBStore, ring: KeyRing, tmp_path: Path, fmt: str, codec: str, scheme: str
) -> None:
    spec, offered = scheme_cases(ring.directory)[scheme]
    try:
        request = build_request(dataset="ohlcv", format=fmt, compression=codec, encryption=spec)
    except RequestError as exc:
        pytest.skip(f"{fmt} does not take {codec}: {exc}")

    try:
        result = run_export(request, filled, output_dir=tmp_path / "out", keys=ring)
    except RequestError:
        # A format may refuse an outer codec only when it starts writing (xlsx does).
        bare = build_request(dataset="ohlcv", format=fmt, compression=codec)
        with pytest.raises(RequestError) as refused:
            run_export(bare, filled, output_dir=tmp_path / "bare")
        pytest.skip(f"{fmt} does not take {codec}: {refused.value}")
    plain = tmp_path / f"plain.{fmt}"
    cli_decrypt(ring, scheme, result.path, plain)

    manifest = result.manifest
    assert result.path.name.endswith(SCHEMES[scheme].extension)
    assert manifest.encryption is not None and manifest.encryption["scheme"] == scheme
    assert _sha256(result.path) == manifest.file_sha256
    assert _sha256(plain) == manifest.payload_sha256
    rows = read_rows(plain, fmt)
    if rows is not None:
        assert_rows_match(rows)
    else:
        summarize = FORMATS[fmt].summarize
        assert summarize is not None
        with plain.open("rb") as stream:
            assert summarize(stream, "time", plain)["rows"] == len(ROWS)
    assert verify_export(result.path, keys=ring, offered=offered).ok


@pytest.mark.slow
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_real_freqtrade_candles_round_trip(
    store: DuckDBStore, ring: KeyRing, tmp_path: Path, real: Path, scheme: str
) -> None:
    from marketexport.ingest import Hints, ingest_paths

    reports = ingest_paths([real / "ohlcv" / "freqtrade"], store, Hints(exchange="binance"))
    assert any(r.ok for r in reports)
    spec, offered = scheme_cases(ring.directory)[scheme]

    for fmt, codec in (("csv", "zstd"), ("parquet", "zstd"), ("jsonl", "gzip")):
        plain_request = build_request(dataset="ohlcv", format=fmt, compression=codec)
        reference = run_export(plain_request, store, output_dir=tmp_path / "plain-out")
        request = build_request(dataset="ohlcv", format=fmt, compression=codec, encryption=spec)
        result = run_export(request, store, output_dir=tmp_path / "enc-out", keys=ring)
        target = tmp_path / f"back-{fmt}"
        cli_decrypt(ring, scheme, result.path, target)

        assert result.manifest.rows == reference.manifest.rows > 1000
        expected_codec = "none" if fmt == "parquet" else codec
        if fmt == "parquet":
            assert pq.read_table(target).equals(pq.read_table(reference.path))
        else:
            expected = decompress_with_own_library(reference.path, expected_codec)
            assert target.read_bytes() == expected
        assert _sha256(target) == result.manifest.payload_sha256
        assert verify_export(result.path, keys=ring, offered=offered).ok
