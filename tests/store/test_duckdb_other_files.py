"""A store path holding some other file is refused: DuckDB opens a CSV or Parquet path as an
empty in-memory database, so an import there reported rows added and kept none."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketexport.cli import main
from marketexport.errors import ConfigError
from marketexport.store.duckdb import DuckDBStore


def _other_files(tmp_path: Path) -> list[Path]:
    text = tmp_path / "store.csv"
    text.write_text("a,b\n1,2\n")
    table = tmp_path / "store.parquet"
    pq.write_table(pa.table({"a": [1]}), table)
    named = tmp_path / "store.duckdb"
    named.write_text("not a database\n")
    return [text, table, named]


@pytest.mark.parametrize("read_only", [False, True], ids=["import", "export"])
def test_a_file_that_is_not_a_duckdb_database_is_refused(tmp_path: Path, read_only: bool) -> None:
    for path in _other_files(tmp_path):
        before = path.read_bytes()
        with pytest.raises(ConfigError, match="exists but is not a DuckDB database") as raised:
            DuckDBStore(path, read_only=read_only)
        assert str(path) in str(raised.value)
        assert path.read_bytes() == before


def test_ingest_into_a_csv_path_exits_2_and_changes_nothing(
    tmp_path: Path, real: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _other_files(tmp_path)[0]

    code = main(["--store", str(store), "ingest", str(real / "ohlcv/binance_vision/spot")])

    assert code == 2
    assert "exists but is not a DuckDB database" in capsys.readouterr().err
    assert store.read_text() == "a,b\n1,2\n"


def test_a_store_marketexport_made_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "made.duckdb"
    DuckDBStore(path).close()

    DuckDBStore(path, read_only=True).close()


def test_a_directory_or_a_path_under_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    plain = tmp_path / "plain.csv"
    plain.write_text("a\n")

    assert main(["--store", str(folder), "db", "init"]) == 2
    assert f"store {folder} is a directory" in capsys.readouterr().err
    assert main(["--store", str(plain / "store.duckdb"), "db", "init"]) == 2
    assert "cannot be created" in capsys.readouterr().err
    assert plain.read_text() == "a\n"
