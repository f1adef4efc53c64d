"""Import rules on real and small built files: refusals name file, line and the missing fact;
re-imports add nothing; CHECKSUM sidecars; detection of headers, units and importers."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest

from marketexport.cli import main
from marketexport.datasets import OHLCV, TRADES
from marketexport.ingest import Hints, ingest_file, pick_importer
from marketexport.store.duckdb import DuckDBStore
from tests.ingest.expected import Case
from tests.ingest.market_cases import BROKEN, CASES

# Which importer must claim each real file: the first fragment of its path that matches.
IMPORTER_BY_PATH = (
    ("binance_vision/", "binance-public-data"),
    ("bbgo/", "binance-public-data"),
    ("/ADABTC-", "binance-public-data"),
    ("kraken_trades_csv/", "freqtrade-csv"),
    ("orderflow/", "freqtrade-csv"),
    ("freqtrade/", "freqtrade"),
    ("tardis/", "market-trades"),
    ("bybit_public/", "market-trades"),
    ("okx/", "market-trades"),
    ("trades/nautilus/", "market-trades"),
    ("ohlcv/", "market-bars"),
)


def _counts(store: DuckDBStore) -> tuple[int, int]:
    return store.count(OHLCV), store.count(TRADES)


def _expected_importer(case: Case) -> str:
    return next(name for fragment, name in IMPORTER_BY_PATH if fragment in case.path)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_file_is_recognised_by_its_importer(real: Path, case: Case) -> None:
    assert pick_importer(real / case.path).name == _expected_importer(case)


def test_spreadsheet_damaged_file_is_refused_with_file_and_line(
    real: Path, store: DuckDBStore
) -> None:
    good = ingest_file(real / CASES[0].path, store, Hints())
    before = _counts(store)

    report = ingest_file(real / BROKEN, store, Hints())

    assert good.ok and before[0] == 4
    assert not report.ok and report.error is not None
    assert str(real / BROKEN) in report.error
    assert "line 2" in report.error and "'1.70027E+12'" in report.error
    assert "spreadsheet" in report.error
    assert _counts(store) == before


@pytest.mark.parametrize(
    ("relative", "hints", "missing"),
    [
        ("ohlcv/backtesting_py/BTCUSD.csv", {}, "exchange unknown"),
        ("ohlcv/nautilus/btc-perp-20211231-20220201_1m.csv", {}, "exchange unknown"),
        ("ohlcv/freqtrade/XRP_ETH-1m.feather", {}, "exchange unknown"),
        ("trades/nautilus/btcusdt-trades.parquet", {}, "exchange unknown"),
        ("trades/freqtrade/orderflow/public_trades_list.csv", {}, "exchange unknown"),
        (
            "trades/freqtrade/orderflow/public_trades_list.csv",
            {"exchange": "binance"},
            "symbol unknown",
        ),
        ("ohlcv/bbgo/BTCUSDT-1m-2022-05-06.csv", {}, "market unknown"),
        ("ohlcv/nautilus/btc-perp-20211231-20220201_1m.csv", {"exchange": "binance"}, "BTC-PERP"),
    ],
)
def test_missing_fact_stops_the_import_and_names_it(
    real: Path, store: DuckDBStore, relative: str, hints: dict[str, str], missing: str
) -> None:
    report = ingest_file(real / relative, store, Hints(**hints))

    assert not report.ok and report.error is not None
    assert str(real / relative) in report.error
    assert missing in report.error
    assert "--symbol" in report.error or "--exchange" in report.error
    assert _counts(store) == (0, 0)


def _import_twice(real: Path, store: DuckDBStore, cases: list[Case]) -> None:
    for case in cases:
        assert ingest_file(real / case.path, store, Hints(**case.hints)).ok
    before = _counts(store)

    again = [ingest_file(real / case.path, store, Hints(**case.hints)) for case in cases]

    assert _counts(store) == before
    for report in again:
        counts = report.to_dict()
        assert report.ok and counts["rows_added"] == 0
        assert counts["rows_skipped"] == counts["rows_read"] > 0


def test_importing_small_files_twice_adds_nothing(real: Path, store: DuckDBStore) -> None:
    _import_twice(real, store, [case for case in CASES if not case.slow])


@pytest.mark.slow
def test_importing_large_files_twice_adds_nothing(real: Path, store: DuckDBStore) -> None:
    _import_twice(real, store, [case for case in CASES if case.slow])


@pytest.mark.slow
def test_one_trade_set_in_three_formats_gives_the_same_rows(real: Path, tmp_path: Path) -> None:
    """freqtrade's XRP_ETH trades as json.gz, feather and parquet: identical stored rows."""
    tables = []
    for index, suffix in enumerate(("json.gz", "feather", "parquet")):
        store = DuckDBStore(tmp_path / f"{index}.duckdb")
        path = real / f"trades/freqtrade/XRP_ETH-trades.{suffix}"
        assert ingest_file(path, store, Hints(exchange="binance")).ok
        reader = store.scan(TRADES, [], TRADES.column_names, 100_000)
        tables.append(pa.Table.from_batches(list(reader)))
        reader.close()
        store.close()

    assert tables[0].num_rows == 12_477
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])


def _binance_zip(folder: Path, source: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", source.read_bytes())
    return target


def _write_checksum(path: Path, digest: str) -> None:
    sidecar = path.with_name(path.name + ".CHECKSUM")
    sidecar.write_text(f"{digest}  {path.name}\n")


def test_zip_with_good_checksum_imports_and_bad_one_is_refused(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    good = _binance_zip(tmp_path / "um", real / CASES[1].path, "BTCUSDT-1h-2026-09-15")
    _write_checksum(good, hashlib.sha256(good.read_bytes()).hexdigest())
    bad = _binance_zip(tmp_path / "spot", real / CASES[0].path, "BTCUSDT-1m-2026-09-15")
    wrong = hashlib.sha256(bad.read_bytes() + b"x").hexdigest()
    _write_checksum(bad, wrong)

    imported = ingest_file(good, store, Hints())
    after_good = _counts(store)
    refused = ingest_file(bad, store, Hints())

    assert imported.ok and imported.to_dict()["rows_added"] == 3
    assert not refused.ok and refused.error is not None
    assert str(bad) in refused.error and wrong in refused.error
    assert "does not match" in refused.error
    assert _counts(store) == after_good == (3, 0)


def _write(tmp_path: Path, relative: str, text: str) -> Path:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_mixed_time_units_are_refused_naming_the_line(tmp_path: Path, store: DuckDBStore) -> None:
    rows = [
        "4063759318,78189.2,0.00009,6681954163,6681954164,1789430400017025,True,True",
        "4063759319,78189.2,0.0001,6681954165,6681954166,1789430400239,True,True",
    ]
    path = _write(tmp_path, "spot/BTCUSDT-aggTrades-2026-09-15.csv", "\n".join(rows) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error is not None and "line 2" in report.error
    assert "milliseconds" in report.error and "microseconds" in report.error


def test_wrong_field_count_is_refused_naming_the_line(tmp_path: Path, store: DuckDBStore) -> None:
    rows = [
        "8078264332,78153.0,0.001,78.153,1789430400003,false",
        "8078264333,78152.9,0.014,1094.1406,1789430400006",
    ]
    path = _write(tmp_path, "um/BTCUSDT-trades-2026-09-15.csv", "\n".join(rows) + "\n")

    report = ingest_file(path, store, Hints())

    assert report.error is not None and "line 2" in report.error
    assert "5 fields where 6 were expected" in report.error


def test_folder_and_content_disagreeing_on_market_is_refused(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    spot_file = real / "aggtrades/binance_vision/spot/BTCUSDT-aggTrades-2023-11-17.csv"
    target = tmp_path / "um" / spot_file.name
    target.parent.mkdir()
    shutil.copy(spot_file, target)

    report = ingest_file(target, store, Hints())

    assert report.error is not None and "folder or flags say linear" in report.error
    assert _counts(store) == (0, 0)


def test_cli_json_reports_rows_read_added_and_skipped(
    real: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--data-dir", str(tmp_path), "ingest", str(real / "aggtrades/binance_vision")]

    first_code = main([*arguments, "--json"])
    one = json.loads(capsys.readouterr().out)
    second_code = main([*arguments, "--json"])
    two = json.loads(capsys.readouterr().out)

    assert first_code == 0 and second_code == 0
    assert [Path(r["path"]).name for r in one] == [
        "BTCUSDT-aggTrades-2023-11-17.csv",
        "BTCUSDT-aggTrades-2026-09-15.csv",
        "BTCUSDT-aggTrades-2026-09-15.csv",
    ]
    assert [r["rows_read"] for r in one] == [4, 5, 5] == [r["rows_added"] for r in one]
    assert [r["rows_skipped"] for r in two] == [4, 5, 5]
    assert all(r["rows_added"] == 0 and r["error"] is None for r in two)


@pytest.mark.slow
def test_cli_walks_the_real_folders_and_refuses_only_what_it_must(
    real: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without flags, the files that need one and the broken file are refused; the rest
    import; exit code 1 says that some were refused."""
    folders = [str(real / name) for name in ("ohlcv", "trades", "aggtrades")]

    code = main(["--data-dir", str(tmp_path), "ingest", *folders, "--json"])

    reports = {
        str(Path(r["path"]).relative_to(real)): r for r in json.loads(capsys.readouterr().out)
    }
    refused = {path for path, report in reports.items() if report["error"]}
    needing_flags = {case.path for case in CASES if case.hints}
    assert code == 1
    assert refused == needing_flags | {BROKEN}
    for case in CASES:
        if not case.hints:
            assert reports[case.path]["rows_added"] == len(case.expected(real))


@pytest.mark.parametrize(
    ("source", "symbol"),
    [
        ("ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv", "BTC/USDT:USDT"),
        ("ohlcv/binance_vision/spot/BTCUSDT-1m-2026-09-15.csv", "BTC/USDT"),
    ],
)
def test_kline_market_is_read_from_the_content_outside_binance_folders(
    real: Path, tmp_path: Path, store: DuckDBStore, source: str, symbol: str
) -> None:
    """The official futures header says futures; microsecond times say spot."""
    target = tmp_path / "downloads" / Path(source).name
    target.parent.mkdir()
    shutil.copy(real / source, target)

    report = ingest_file(target, store, Hints())
    stored = store.scan(OHLCV, [], ["symbol"], 100)
    symbols = {value for batch in stored for value in batch.column(0).to_pylist()}
    stored.close()

    assert report.ok, report.error
    assert symbols == {symbol}


def test_mark_price_klines_folder_sets_the_price_type(
    real: Path, tmp_path: Path, store: DuckDBStore
) -> None:
    source = real / "ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv"
    target = tmp_path / "futures/um/daily/markPriceKlines/BTCUSDT/1h" / source.name
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)

    report = ingest_file(target, store, Hints())
    stored = store.scan(OHLCV, [], ["symbol", "price_type"], 100)
    rows = {tuple(row.values()) for batch in stored for row in batch.to_pylist()}
    stored.close()

    assert report.ok, report.error
    assert rows == {("BTC/USDT:USDT", "mark")}


def test_an_unforeseen_failure_refuses_that_file_only(tmp_path: Path) -> None:
    """A file an importer trips over is reported; the next file still imports."""
    from marketexport.ingest import Hints, ingest_paths
    from marketexport.store.duckdb import DuckDBStore

    folder = tmp_path / "spot"
    folder.mkdir()
    (folder / "BTCUSDT-1m-2026-09-15.csv").write_text(
        "1789430400000000,,78200.0,78180.0,78190.0,1.5,1789430459999999,117285.0,10,0.5,39095.0,0\n"
    )
    (folder / "BTCUSDT-1m-2026-09-16.csv").write_text(
        "1789516800000000,78190.00000000,78200.00000000,78180.00000000,78190.00000000,"
        "1.50000000,1789516859999999,117285.00000000,10,0.50000000,39095.00000000,0\n"
    )
    store = DuckDBStore(tmp_path / "store.duckdb")

    reports = ingest_paths([folder], store, Hints())
    store.close()

    assert [report.ok for report in reports] == [False, True]
    assert "BTCUSDT-1m-2026-09-15.csv" in (reports[0].error or "")
