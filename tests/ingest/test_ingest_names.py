"""ingest holds exchanges and symbols to export's rule: a bad --exchange or --symbol is a
one-line exit-2 error before the store opens, and a file that gives a bad one is refused.
Also what a walk takes: hidden folders are not entered, and an empty walk says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.datasets import TRADES
from marketexport.ingest import Hints, ingest_file, ingest_paths, iter_files
from marketexport.store.duckdb import DuckDBStore

FREQTRADE = "ohlcv/freqtrade/ETH_BTC-1m.json"
TARDIS = "trades/tardis/bitmex_trades_XBTUSD.csv"


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("--symbol", "ÄÖ/€", "invalid symbol 'ÄÖ/€'"),
        ("--symbol", "BTC/USD'--", 'invalid symbol "BTC/USD\'--"'),
        ("--symbol", "B" * 300, "\u2026 (300 characters)"),
        ("--symbol", "", "invalid symbol ''"),
        ("--exchange", "bad name", "invalid exchange 'bad name'"),
        ("--exchange", "", "invalid exchange ''"),
    ],
    ids=["non-ascii", "quote", "300-chars", "empty-symbol", "space", "empty-exchange"],
)
def test_bad_exchange_or_symbol_flag_is_exit_2_before_the_store_opens(
    real: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    shown: str,
) -> None:
    data_dir = tmp_path / "data"
    hints = ["--exchange", "bitstamp"] if flag == "--symbol" else []

    code = main(["--data-dir", str(data_dir), "ingest", str(real / FREQTRADE), *hints,
                 flag, value])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("RequestError: ") and shown in err and err.count("\n") == 1
    assert len(err) < 300
    assert not data_dir.exists()


def test_flags_in_the_exchange_own_forms_are_still_accepted() -> None:
    hints = Hints(exchange=" Binance ", symbol="BTCUSDT")

    assert (hints.exchange, hints.symbol) == (" Binance ", "BTCUSDT")


@pytest.mark.parametrize("symbol", ["XBT\u20acUSD", 'XBT"USD'])
def test_file_giving_a_symbol_export_refuses_is_refused_naming_it(
    real: Path, tmp_path: Path, store: DuckDBStore, symbol: str
) -> None:
    target = tmp_path / "bitmex_trades_odd.csv"
    text = (real / TARDIS).read_text(encoding="utf-8")
    target.write_text(text.replace(",XBTUSD,", f",{symbol},"), encoding="utf-8")

    report = ingest_file(target, store, Hints())

    assert report.error is not None
    assert report.error.startswith(f"{target}: the file gives an invalid symbol ")
    assert report.error.endswith("e.g. BTC/USDT or BTC/USDT:USDT); file not imported")
    assert store.count(TRADES) == 0


def test_walk_skips_hidden_folders_but_imports_a_hidden_folder_given_by_name(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    folder = tmp_path / "drop"
    for where in ("seen", ".git/objects", ".hidden", "seen/.cache"):
        (folder / where).mkdir(parents=True)
        shutil.copy(real / TARDIS, folder / where / "bitmex_trades_XBTUSD.csv")

    walked = [path.relative_to(folder) for path in iter_files([folder])]
    named = list(iter_files([folder / ".hidden"]))

    assert walked == [Path("seen/bitmex_trades_XBTUSD.csv")]
    assert named == [folder / ".hidden" / "bitmex_trades_XBTUSD.csv"]
    assert [report.ok for report in ingest_paths(named, store, Hints())] == [True]


def test_empty_folder_says_no_files_were_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    code = main(["--data-dir", str(tmp_path / "data"), "ingest", str(folder)])

    out, err = capsys.readouterr()
    assert code == 0 and out == ""
    assert err == (
        f"no files found under {folder} (hidden files and folders and .CHECKSUM, .md and .txt "
        "files are skipped)\n"
    )
