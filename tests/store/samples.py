"""Sample rows for every dataset: awkward but valid values of every kind, in any time unit."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from marketexport.datasets import Dataset
from tests.helpers import table_of

T0_NS = 1_700_000_000_000_000_000
STEP_NS = 60_000_000_000
# Sub-second parts that need exactly the named unit.
FRACTION_NS = {"s": 0, "ms": 123_000_000, "us": 123_456_000, "ns": 123_456_789}
EXCHANGES = ("binance", "coinbase")
# Byte order and a typical locale's order differ on these (case, accents, punctuation).
SYMBOLS = ("BTC/USDT", "btc/usdt", "ÄBC/USD", "B-TC/USD")
TEXTS = ("", 'quote " and, comma', "line\nbreak", "unicode ✓ é 漢字", "=SUM(A1)", "plain")
DECIMALS = (
    "0",
    "0.00001234",
    "78189.2",
    "-0.5",
    "75036192.45844001",
    "9999999999999999.9999999999999999999999",
    "0.0000000000000000000001",
    "-12345.678901234567890000",
    "1E+3",
)
INTEGERS = (0, -1, 2**63 - 1, 9_007_199_254_740_993, -(2**63))


def _value(spec: Dataset, name: str, kind: str, i: int, unit: str) -> object:
    if name == "exchange":
        return EXCHANGES[(i // 4) % len(EXCHANGES)]
    if name == "symbol":
        return SYMBOLS[i % len(SYMBOLS)]
    if kind == "time":
        # two rows share each instant, so the key decides their order
        base = T0_NS + (i // 2) * STEP_NS + FRACTION_NS[unit] * (i % 3 != 0)
        return base if name == spec.time_column else base + 1_000_000_000
    if kind == "id":
        return str(10**20 + i) if i % 2 else f"id-{i:05d}"
    if kind == "integer":
        return i if name in spec.key else INTEGERS[i % len(INTEGERS)]
    if kind == "boolean":
        return i % 3 == 1
    if kind == "decimal":
        return DECIMALS[i % len(DECIMALS)] if name not in spec.key else f"{i}.25"
    return TEXTS[i % len(TEXTS)] if name not in spec.key else ("snapshot", "bid", "ask")[i % 3]


def sample_table(spec: Dataset, rows: int = 40, unit: str = "ns") -> pa.Table:
    """``rows`` rows (fewer after dropping repeated keys) with every awkward value."""
    found: list[dict[str, object]] = []
    keys = set()
    for i in range(rows):
        row: dict[str, object] = {}
        for column in spec.columns:
            nullable = column.nullable and column.name not in spec.key
            if nullable and i % 5 == 4:
                row[column.name] = None
            else:
                row[column.name] = _value(spec, column.name, column.kind, i, unit)
        key = tuple(row[name] for name in spec.key)
        if key not in keys:
            keys.add(key)
            found.append(row)
    return table_of(spec, found)


def decimal_texts(table: pa.Table, name: str) -> list[str | None]:
    return [
        None if v is None else format(Decimal(v).normalize(), "f") for v in table[name].to_pylist()
    ]
