"""A store made by an older marketexport, with a table lacking a column, is named, not used."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from marketexport.errors import ConfigError
from marketexport.store.duckdb import DuckDBStore


def test_a_table_without_a_current_column_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with duckdb.connect(str(path)) as con:
        # positions as the store made it before the snapshot column joined its key
        con.execute(
            "CREATE TABLE positions (exchange VARCHAR, account VARCHAR, symbol VARCHAR, "
            "time TIMESTAMP_NS, side VARCHAR, PRIMARY KEY (exchange, account, symbol, time, side))"
        )
    with pytest.raises(ConfigError, match="'positions'.*no column snapshot"):
        DuckDBStore(path)


def test_a_current_store_opens_again(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    DuckDBStore(path).close()
    DuckDBStore(path).close()
