"""Default file names carry each bound's fraction of a second, so that bounds a nanosecond
apart give two files instead of one overwriting the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.demo import load_demo
from marketexport.export.pipeline import default_file_name, run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore


@pytest.mark.parametrize(
    ("end", "stamp"),
    [
        ("2025-01-01T00:10:00Z", "20250101T001000Z"),
        ("2025-01-01T00:10:00.5Z", "20250101T001000.500Z"),
        ("2025-01-01T00:10:00.000123Z", "20250101T001000.000123Z"),
        ("2025-01-01T00:10:00.000000001Z", "20250101T001000.000000001Z"),
    ],
)
def test_the_end_stamp_keeps_the_fraction_it_has(end: str, stamp: str) -> None:
    request = build_request(dataset="ohlcv", format="csv", start="2025-01-01", end=end)

    assert default_file_name(request, None, None) == f"ohlcv_all_all_20250101T000000Z_{stamp}.csv"


def test_ends_a_nanosecond_apart_give_two_files(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    load_demo(store, minutes=30)
    out = tmp_path / "out"
    try:
        paths = [
            run_export(
                build_request(dataset="ohlcv", format="csv", start="2025-01-01", end=end),
                store,
                output_dir=out,
            ).path
            for end in ("2025-01-01T00:10:00.000000001Z", "2025-01-01T00:10:00Z")
        ]
    finally:
        store.close()

    assert [path.name for path in paths] == [
        "ohlcv_all_all_20250101T000000Z_20250101T001000.000000001Z.csv",
        "ohlcv_all_all_20250101T000000Z_20250101T001000Z.csv",
    ]
    assert all(path.exists() for path in paths)
