"""The CSV spreadsheet guard: off by default, and when asked, only text cells change."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.config import Settings
from marketexport.datasets import ORDERS
from marketexport.errors import RequestError
from marketexport.store.duckdb import DuckDBStore
from tests.export.office_samples import export, filled_store, sample_rows, store_rows

TRIGGERS = ["=1+1", "+SUM(A1:A9)", "-2+3", "@cmd", "\tpadded", "\rreturn"]
HARMLESS = ["a=b", "limit", "x-1", " =spaced"]


def orders_with_text(store: DuckDBStore) -> DuckDBStore:
    texts = TRIGGERS + HARMLESS
    rows = sample_rows(ORDERS, len(texts))
    for row, text in zip(rows, texts, strict=True):
        row["client_order_id"] = text
        row["type"] = text
        row["price"] = "-0.5"
        row["filled"] = "-12.25"
    return filled_store(store, ORDERS, rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    # Decoded by hand: read_text would turn the CR inside a quoted field into LF.
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))


def test_guard_prefixes_only_text_cells_that_start_a_formula(
    store: DuckDBStore, tmp_path: Path
) -> None:
    orders_with_text(store)

    result = export(store, tmp_path, "orders", "csv", options={"csv_safe_for_spreadsheets": True})
    rows = read_csv(result.path)

    source = store_rows(store, ORDERS)
    for row, expected in zip(rows, source, strict=True):
        for name in ("client_order_id", "type"):
            value = expected[name]
            wanted = "'" + value if value[0] in "=+-@\t\r" else value
            assert row[name] == wanted
        assert Decimal(row["price"]) == Decimal("-0.5") and row["price"] == "-0.5"
        assert row["filled"] == "-12.25"
        assert row["order_id"] == expected["order_id"]
    assert result.manifest.notes == {"spreadsheet_guard": {"cells_prefixed": 2 * len(TRIGGERS)}}


def test_default_leaves_every_value_unchanged(store: DuckDBStore, tmp_path: Path) -> None:
    orders_with_text(store)

    result = export(store, tmp_path, "orders", "csv")
    rows = read_csv(result.path)

    source = store_rows(store, ORDERS)
    assert [row["client_order_id"] for row in rows] == [r["client_order_id"] for r in source]
    assert [row["type"] for row in rows] == [r["type"] for r in source]
    assert sorted(row["type"] for row in rows) == sorted(TRIGGERS + HARMLESS)
    assert result.manifest.notes == {}


def test_guard_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    opened = DuckDBStore(Path(settings.store_url))
    orders_with_text(opened)
    opened.close()
    common = ["--data-dir", str(settings.data_dir), "--store", settings.store_url, "export"]

    code = main([*common, "orders", "--format", "csv", "--csv-safe-for-spreadsheets",
                 "--output", str(tmp_path / "safe")])  # fmt: skip
    plain = main([*common, "orders", "--format", "csv", "--output", str(tmp_path / "plain")])

    assert code == 0 and plain == 0
    guarded = read_csv(next((tmp_path / "safe").glob("*.csv")))
    unchanged = read_csv(next((tmp_path / "plain").glob("*.csv")))
    assert sorted(row["type"] for row in guarded) == sorted(
        ["'" + text for text in TRIGGERS] + HARMLESS
    )
    assert sorted(row["type"] for row in unchanged) == sorted(TRIGGERS + HARMLESS)


def test_guard_is_refused_for_other_formats(store: DuckDBStore, tmp_path: Path) -> None:
    with pytest.raises(RequestError) as caught:
        export(store, tmp_path, "orders", "xlsx", options={"csv_safe_for_spreadsheets": True})

    assert "'csv_safe_for_spreadsheets'" in str(caught.value) and "'xlsx'" in str(caught.value)
