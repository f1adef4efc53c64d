"""Binance kline files with candles that cannot be real are refused whole, naming the file,
the line and the problem; the store is left as it was. The real kline files still import
(tests/ingest/test_market_files.py), and a premium index may be below zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketexport.datasets import OHLCV
from marketexport.ingest import Hints, ingest_file
from marketexport.store.duckdb import DuckDBStore

UM_FILE = "ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
GOOD = [
    "1789430400000,78153.00,78223.30,77905.50,77928.50,5124.846,1789433999999,399835975.06250,"
    "109441,2423.990,189098398.43360,0",
    "1789434000000,77928.50,78061.60,77709.70,77888.20,7955.222,1789437599999,619653556.95870,"
    "134789,4362.819,339832015.53240,0",
]
THIRD = (
    "1789437600000,{open},{high},{low},{close},{volume},1789441199999,308198483.13600,{count},"
    "2150.012,167457809.20640,0"
)
VALUES = {"open": "77888.20", "high": "77991.10", "low": "77757.20", "close": "77878.30",
          "volume": "3957.125", "count": "83355"}  # fmt: skip


def _klines(tmp_path: Path, folder: str = "um", **changed: str) -> Path:
    path = tmp_path / folder / "BTCUSDT-1h-2026-09-15.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    third = THIRD.format(**{**VALUES, **changed})
    path.write_text("\n".join([HEADER, *GOOD, third]) + "\n")
    return path


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        ({"low": "-1.00", "open": "1.00", "close": "1.00"}, "negative low -1.00"),
        ({"volume": "-3957.125"}, "negative volume -3957.125"),
        ({"count": "-5"}, "negative count -5"),
        ({"high": "77700.00"}, "high 77700.00 is below low 77757.20"),
        ({"open": "78000.00"}, "open 78000.00 is outside [low 77757.20, high 77991.10]"),
        ({"close": "77000.00"}, "close 77000.00 is outside [low 77757.20, high 77991.10]"),
    ],
    ids=["negative-price", "negative-volume", "negative-count", "high-below-low",
         "open-above-high", "close-below-low"],  # fmt: skip
)
def test_impossible_candle_refuses_the_file_naming_line_and_problem(
    real: Path, tmp_path: Path, store: DuckDBStore, changed: dict[str, str], problem: str
) -> None:
    ingest_file(real / "ohlcv/binance_vision/spot/BTCUSDT-1m-2026-09-15.csv", store, Hints())
    before = store.count(OHLCV)
    path = _klines(tmp_path, **changed)

    report = ingest_file(path, store, Hints())

    assert report.error == f"{path}, line 4: {problem}: not a real candle"
    assert store.count(OHLCV) == before == 4


def test_first_bad_line_is_the_one_named(tmp_path: Path, store: DuckDBStore) -> None:
    path = _klines(tmp_path, high="1.00")
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("5124.846", "-5124.846")
    path.write_text("\n".join(lines) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error == f"{path}, line 2: negative volume -5124.846: not a real candle"


def test_premium_index_klines_may_be_negative_but_must_be_ordered(
    tmp_path: Path, store: DuckDBStore
) -> None:
    rates = {"open": "-0.00010000", "high": "-0.00002000", "low": "-0.00015000",
             "close": "-0.00012000", "volume": "0", "count": "0"}  # fmt: skip
    folder = "futures/um/daily/premiumIndexKlines/BTCUSDT/1h"
    good = _klines(tmp_path / "good", folder, **rates)
    bad = _klines(tmp_path / "bad", folder, **{**rates, "high": "-0.00020000"})

    imported = ingest_file(good, store, Hints())
    refused = ingest_file(bad, store, Hints())

    assert imported.ok, imported.error
    assert refused.error == (
        f"{bad}, line 4: high -0.00020000 is below low -0.00015000: not a real candle"
    )


def test_real_um_file_still_imports(real: Path, store: DuckDBStore) -> None:
    report = ingest_file(real / UM_FILE, store, Hints())

    assert report.ok, report.error
    assert store.count(OHLCV) == 3
