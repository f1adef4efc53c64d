"""A realistic sample store for trying marketexport: candles and trades of two markets.

Prices follow a seeded random walk with each market's real tick size (0.01 USDT for BTC,
0.00001 BTC for ETH/BTC), so the exports show the exactness rules on values a user knows:
small prices stay in plain notation, trade ids keep every digit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from .datasets import OHLCV, TRADES
from .ingest.convert import build_table
from .store import Store

DEMO_START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class DemoMarket:
    """One market of the demo: its symbol, first price, tick and lot sizes."""

    symbol: str
    price: Decimal
    tick: Decimal
    lot: Decimal


MARKETS = (
    DemoMarket("BTC/USDT", Decimal("93500.00"), Decimal("0.01"), Decimal("0.00001")),
    DemoMarket("ETH/BTC", Decimal("0.03571"), Decimal("0.00001"), Decimal("0.0001")),
)


def _walk(rng: random.Random, price: Decimal, tick: Decimal) -> Decimal:
    step = int(rng.gauss(0, 40))
    return max(tick, price + tick * step)


def build_demo_tables(minutes: int = 3 * 24 * 60, seed: int = 7) -> list[tuple[str, pa.Table]]:
    """Candles and trades for every demo market over ``minutes`` one-minute candles."""
    rng = random.Random(seed)
    out: list[tuple[str, pa.Table]] = []
    for market in MARKETS:
        candles: dict[str, list[object]] = {
            k: [] for k in ("time", "open", "high", "low", "close", "volume", "trades")
        }
        trades: dict[str, list[object]] = {
            k: [] for k in ("time", "trade_id", "side", "price", "amount", "cost", "is_buyer_maker")
        }
        price = market.price
        trade_id = 4_063_759_318
        for minute in range(minutes):
            open_ms = DEMO_START_MS + minute * 60_000
            prices = [price]
            volume = Decimal(0)
            for second in sorted(rng.sample(range(60_000), rng.randint(1, 6))):
                price = _walk(rng, price, market.tick)
                amount = market.lot * rng.randint(1, 5000)
                buyer_maker = rng.random() < 0.5
                trades["time"].append((open_ms + second) * 1_000_000)
                trades["trade_id"].append(str(trade_id))
                trades["side"].append("sell" if buyer_maker else "buy")
                trades["price"].append(price)
                trades["amount"].append(amount)
                trades["cost"].append(price * amount)
                trades["is_buyer_maker"].append(buyer_maker)
                trade_id += 1
                prices.append(price)
                volume += amount
            candles["time"].append(open_ms * 1_000_000)
            candles["open"].append(prices[0])
            candles["high"].append(max(prices))
            candles["low"].append(min(prices))
            candles["close"].append(prices[-1])
            candles["volume"].append(volume)
            candles["trades"].append(len(prices) - 1)
        rows = len(candles["time"])
        out.append(
            (
                "ohlcv",
                build_table(
                    OHLCV,
                    {
                        "exchange": "binance",
                        "symbol": market.symbol,
                        "timeframe": "1m",
                        "price_type": "trade",
                        **candles,
                    },
                    rows,
                ),
            )
        )
        out.append(
            (
                "trades",
                build_table(
                    TRADES,
                    {"exchange": "binance", "symbol": market.symbol, "aggregated": False, **trades},
                    len(trades["time"]),
                ),
            )
        )
    return out


def load_demo(store: Store, minutes: int = 3 * 24 * 60) -> dict[str, int]:
    """Put the demo rows into ``store`` (again: nothing is added twice); rows per dataset."""
    datasets = {"ohlcv": OHLCV, "trades": TRADES}
    parts = [(datasets[name], table.to_batches()) for name, table in build_demo_tables(minutes)]
    results = store.insert(parts)
    return {name: result.rows_read for name, result in results.items()}
