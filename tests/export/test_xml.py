"""The XML format: parsed by lxml, valid against the shipped XSD, values exact."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from marketexport.cli import main
from marketexport.datasets import DATASETS, FILLS, ORDERS, TRADES, Dataset
from marketexport.export.formats.xsd import dataset_xsd, shipped_xsd
from marketexport.export.verify import verify_export
from marketexport.store.duckdb import DuckDBStore
from tests.conftest import REPO
from tests.export.office_samples import (
    T0_MS,
    export,
    filled_store,
    iso_ns,
    sample_rows,
    store_rows,
)
from tests.helpers import decompress_with_own_library

SCHEMAS = REPO / "src" / "marketexport" / "schemas"


def schema_of(dataset: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{dataset}.xsd")))


def decode(element: Any) -> str:
    """An element's text, undoing the documented \\uHHHH encoding where it is marked."""
    text = element.text or ""
    if element.get("escaped") == "true":
        return re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m[1], 16)), text)
    return text


def parse(data: bytes, dataset: str) -> Any:
    document = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    schema = schema_of(dataset)
    assert schema.validate(document), schema.error_log
    return document


def check_rows(spec: Dataset, root: Any, source: list[dict[str, Any]], columns: list[str]) -> None:
    rows = root.findall("row")
    assert len(rows) == len(source)
    for row, expected in zip(rows, source, strict=True):
        present = [child.tag for child in row]
        assert present == [name for name in columns if expected[name] is not None]
        for child in row:
            check_value(spec.column(child.tag).kind, child, expected[child.tag])


def check_value(kind: str, element: Any, source: Any) -> None:
    text = decode(element)
    if kind in ("text", "id"):
        assert text == source
    elif kind == "decimal":
        assert Decimal(text) == source and "E" not in text and "e" not in text
    elif kind == "integer":
        assert int(text) == source
    elif kind == "boolean":
        assert text == ("true" if source else "false")
    else:
        assert iso_ns(text) == source


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_every_dataset_validates_and_reads_back_exactly(
    store: DuckDBStore, tmp_path: Path, dataset: str
) -> None:
    spec = DATASETS[dataset]
    filled_store(store, spec, sample_rows(spec, 23))

    result = export(store, tmp_path, dataset, "xml")
    root = parse(result.path.read_bytes(), dataset)

    assert root.tag == dataset
    assert root.get("columns") == " ".join(spec.column_names)
    assert root.get("time_unit") == "ms"
    check_rows(spec, root, store_rows(store, spec), spec.column_names)
    assert result.path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert result.manifest.rows == 23
    assert verify_export(result.path).ok


def test_column_subset_in_any_order_validates(store: DuckDBStore, tmp_path: Path) -> None:
    filled_store(store, TRADES, sample_rows(TRADES, 9))
    columns = ["price", "time", "trade_id", "is_buyer_maker"]

    result = export(
        store, tmp_path, "trades", "xml", columns=",".join(columns), exchanges=["binance"]
    )
    root = parse(result.path.read_bytes(), "trades")

    assert root.get("exchanges") == "binance"
    check_rows(TRADES, root, store_rows(store, TRADES, columns), columns)


def test_text_is_escaped_and_illegal_characters_encoded_reversibly(
    store: DuckDBStore, tmp_path: Path
) -> None:
    texts = [
        "<tag>&amp;\"'",
        "]]>",
        "=1+1",
        "a\x01b\\c",
        "cr\rand\r\nlf",
        "tab\tnew\nline",
        "\x00\x1f\ufffe\uffff",
        "back\\slash\\u0041",
        "  padded  ",
        "",
        "x" * 40_000,
    ]
    rows = sample_rows(ORDERS, len(texts))
    for row, text in zip(rows, texts, strict=True):
        row["client_order_id"] = text
    filled_store(store, ORDERS, rows)

    result = export(store, tmp_path, "orders", "xml")
    root = parse(result.path.read_bytes(), "orders")

    elements = root.findall("row/client_order_id")
    assert sorted(decode(element) for element in elements) == sorted(texts)
    marked = sorted(decode(e) for e in elements if e.get("escaped") == "true")
    assert marked == sorted(["a\x01b\\c", "\x00\x1f\ufffe\uffff"])
    notes = result.manifest.notes["escaped_characters"]
    assert notes["cells"] == {"client_order_id": 2}
    unmarked = [e.text or "" for e in elements if e.get("escaped") is None]
    assert "back\\slash\\u0041" in unmarked  # a backslash outside marked elements is literal
    assert b"&#13;" in result.path.read_bytes()


def test_empty_text_and_null_stay_apart(store: DuckDBStore, tmp_path: Path) -> None:
    rows = sample_rows(FILLS, 2)
    rows[0]["fee_currency"] = ""
    rows[1]["fee_currency"] = None
    filled_store(store, FILLS, rows)

    result = export(store, tmp_path, "fills", "xml")
    root = parse(result.path.read_bytes(), "fills")

    found = [row.find("fee_currency") for row in root.findall("row")]
    values = sorted(("absent" if e is None else (e.text or "")) for e in found)
    assert values == ["", "absent"]


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_fine_times_keep_their_digits(store: DuckDBStore, tmp_path: Path, unit: str) -> None:
    rows = sample_rows(TRADES, 3)
    rows[1]["time"] = T0_MS * 1_000_000 + (123_456_000 if unit == "us" else 123_456_789)
    filled_store(store, TRADES, rows)

    result = export(store, tmp_path, "trades", "xml")
    root = parse(result.path.read_bytes(), "trades")

    assert root.get("time_unit") == unit == result.manifest.time_unit
    times = [row.findtext("time") for row in root.findall("row")]
    digits = 6 if unit == "us" else 9
    assert all(re.fullmatch(rf".*T\d\d:\d\d:\d\d\.\d{{{digits}}}Z", text) for text in times)
    check_rows(TRADES, root, store_rows(store, TRADES), TRADES.column_names)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_xml_verifies(store: DuckDBStore, tmp_path: Path, codec: str) -> None:
    filled_store(store, TRADES, sample_rows(TRADES, 15))

    result = export(store, tmp_path, "trades", "xml", compression=codec)
    root = parse(decompress_with_own_library(result.path, codec), "trades")

    assert len(root.findall("row")) == 15
    assert verify_export(result.path).ok


def test_schema_rejects_what_the_format_never_writes() -> None:
    schema = schema_of("trades")
    good = (
        "<trades><row><price>0.00001234</price><time>2024-01-01T00:00:00.5Z</time></row></trades>"
    )
    bad = [
        "<trades><row><price>1.2e-5</price></row></trades>",
        "<trades><row><time>2024-01-01T00:00:00</time></row></trades>",
        "<trades><row><first_trade_id>9223372036854775808</first_trade_id></row></trades>",
        "<trades><row><aggregated>yes</aggregated></row></trades>",
        "<trades><row><bogus>1</bogus></row></trades>",
        "<trades><row><price>1</price><price>2</price></row></trades>",
    ]

    assert schema.validate(etree.fromstring(good))
    for text in bad:
        assert not schema.validate(etree.fromstring(text)), text


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_shipped_schema_matches_the_datasets(dataset: str) -> None:
    generated = dataset_xsd(DATASETS[dataset])

    assert shipped_xsd(dataset) == generated, (
        'regenerate with: python -c "from marketexport.export.formats.xsd import '
        "write_schemas; write_schemas('src/marketexport/schemas')\""
    )
    etree.XMLSchema(etree.fromstring(generated.encode()))


def test_schema_command_prints_the_xsd(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["schema", "fills", "--xsd"])
    out = capsys.readouterr().out

    assert code == 0
    assert out == shipped_xsd("fills")
