"""Trade CSV files found next to freqtrade data: Kraken's trade history and pandas dumps.

- Kraken's downloadable trade history (freqtrade reads it from ``<datadir>/kraken/
  trades_csv/``): no header, ``time_s, price, volume`` per line, one file per pair named
  with Kraken's pair code (``BCHEUR.csv``, ``XBTEUR.csv``). There is no trade id and no
  side: ids are synthesised as ``'<time in ms>-<n>'``. The exchange is kraken when a folder
  name says so, else ``--exchange`` must.
- A pandas ``to_csv`` dump of freqtrade's public trades (``public_trades_list.csv`` of its
  orderflow feature): an unnamed index column, then ``timestamp, id, type, side, price,
  amount, cost, date``. Neither the exchange nor the symbol is in it: both come from the
  flags.
"""

from __future__ import annotations

from pathlib import Path

from ..datasets import TRADES
from . import Hints, Parsed
from .convert import build_table, source_error
from .freqtrade import trades_table
from .tabular import (
    decimals,
    epoch_times,
    first_line,
    is_number,
    need_exchange,
    need_symbol,
    read_csv_strings,
    read_payload,
    require,
    synthesized_ids,
)

PANDAS_TRADES_HEADER = ",timestamp,id,type,side,price,amount,cost,date"
KRAKEN_COLUMNS = ("time", "price", "volume")


def _is_kraken_line(line: str) -> bool:
    fields = line.split(",")
    return (
        len(fields) == 3
        and fields[0].isdigit()
        and len(fields[0]) <= 11
        and is_number(fields[1])
        and is_number(fields[2])
    )


def read_kraken(path: Path, hints: Hints) -> Parsed:
    """Kraken's ``time_s,price,volume`` trade history of one pair."""
    stated = "kraken" if any("kraken" in part.lower() for part in path.parent.parts) else None
    how = "Kraken trade-history files say it only by a folder named kraken"
    exchange, market = need_exchange(path, stated, hints, how)
    symbol = need_symbol(
        path, path.stem, exchange, market, hints, "the file name should be the pair"
    )
    table = read_csv_strings(path, read_payload(path), KRAKEN_COLUMNS)
    times = epoch_times(path, table["time"], "time", 1, "s")[0]
    values: dict[str, object] = {
        "exchange": exchange,
        "symbol": symbol,
        "time": times,
        "trade_id": synthesized_ids(times),
        "price": require(path, decimals(path, table["price"], "price", 1), "price", 1),
        "amount": require(path, decimals(path, table["volume"], "volume", 1), "volume", 1),
        "aggregated": False,
    }
    return Parsed(TRADES, build_table(TRADES, values, table.num_rows))


def read_pandas_trades(path: Path, hints: Hints) -> Parsed:
    """A pandas dump of freqtrade public trades (unnamed index column first)."""
    how = "a freqtrade public-trades CSV names neither exchange nor symbol"
    exchange, market = need_exchange(path, None, hints, how)
    symbol = need_symbol(path, None, exchange, market, hints, how)
    names = ("index", *PANDAS_TRADES_HEADER.split(",")[1:])
    table = read_csv_strings(path, read_payload(path), names, skip_rows=1)
    columns = {name: table[name] for name in names}
    return Parsed(TRADES, trades_table(path, exchange, symbol, columns, 2))


class FreqtradeCsvImporter:
    """Kraken trade-history CSV and freqtrade's pandas public-trades CSV."""

    name = "freqtrade-csv"

    def sniff(self, path: Path, head: bytes) -> bool:
        if not path.name.lower().endswith(".csv"):
            return False
        line = first_line(head)
        return line == PANDAS_TRADES_HEADER or _is_kraken_line(line)

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        line = first_line(read_payload(path)[:4096])
        if line == PANDAS_TRADES_HEADER:
            return [read_pandas_trades(path, hints)]
        if _is_kraken_line(line):
            return [read_kraken(path, hints)]
        raise source_error(path, "neither a Kraken trade history nor a freqtrade trades CSV", 1)


IMPORTERS = [FreqtradeCsvImporter()]
