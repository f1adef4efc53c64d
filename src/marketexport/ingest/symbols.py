"""Exchange names and market symbols in their unified forms.

Every row in the store carries a lower-case exchange id (``binance``, ``coinbase``...) and a
unified symbol: ``BASE/QUOTE`` for spot markets, ``BASE/QUOTE:SETTLE`` for perpetual swaps,
and ``BASE/QUOTE:SETTLE-YYMMDD`` for dated futures. Importers call :func:`unify_symbol` with
the exchange's own form (``BTCUSDT``, ``XRP_ETH``, ``BTC-USD``, ``XBTUSD``...) and what they
know about the market; :func:`normalize_exchange` turns names such as ``binanceusdm`` or
tardis.dev's ``binance-futures`` into an exchange id plus a market.

Markets are ``spot``, ``linear`` (settled in the quote currency, e.g. Binance USD-M),
``inverse`` (settled in the base currency, e.g. Binance COIN-M) and ``derivative`` (a
contract whose settlement follows the quote: USD-quoted contracts are inverse, the rest
linear). Other importers may add entries to :data:`EXCHANGE_ALIASES`,
:data:`ASSET_ALIASES` and :data:`SYMBOL_OVERRIDES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SourceError

MARKETS = ("spot", "linear", "inverse", "derivative")

# Quote currencies recognised at the end of concatenated symbols (BTCUSDT). Longest first,
# so that BTCBUSD is BTC/BUSD and not BTCB/USD.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "USDS", "DAI", "PAX", "UST",
            "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
            "USD", "EUR", "GBP", "AUD", "CAD", "CHF", "JPY", "KRW", "TRY", "BRL", "RUB",
            "UAH", "NGN", "ZAR", "PLN", "RON", "ARS", "MXN", "COP", "CZK", "IDRT", "BIDR",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip

# Exchange names (ccxt ids, tardis.dev ids, folder names) -> (exchange id, market or None).
EXCHANGE_ALIASES: dict[str, tuple[str, str | None]] = {
    "binance": ("binance", None),
    "binanceus": ("binanceus", None),
    "binanceusdm": ("binance", "linear"),
    "binance-um": ("binance", "linear"),
    "binance-usdm": ("binance", "linear"),
    "binance-futures": ("binance", "linear"),
    "binancecoinm": ("binance", "inverse"),
    "binance-cm": ("binance", "inverse"),
    "binance-coinm": ("binance", "inverse"),
    "binance-delivery": ("binance", "inverse"),
    "bitmex": ("bitmex", "derivative"),
    "bybit": ("bybit", None),
    "bybit-spot": ("bybit", "spot"),
    "coinbase": ("coinbase", "spot"),
    "coinbasepro": ("coinbase", "spot"),
    "coinbase-exchange": ("coinbase", "spot"),
    "gdax": ("coinbase", "spot"),
    "deribit": ("deribit", "derivative"),
    "ftx": ("ftx", None),
    "huobi": ("huobi", "spot"),
    "huobi-dm-swap": ("huobi", "inverse"),
    "huobi-dm-linear-swap": ("huobi", "linear"),
    "kraken": ("kraken", "spot"),
    "krakenfutures": ("kraken", "derivative"),
    "kucoin": ("kucoin", "spot"),
    "okx": ("okx", None),
    "okex": ("okx", None),
    "okex-swap": ("okx", "derivative"),
    "okex-futures": ("okx", "derivative"),
    "bitstamp": ("bitstamp", "spot"),
    "bitfinex": ("bitfinex", "spot"),
    "gateio": ("gateio", None),
    "gate": ("gateio", None),
    "mexc": ("mexc", None),
    "bitget": ("bitget", None),
}

# Exchange-specific asset codes -> common codes.
ASSET_ALIASES: dict[str, dict[str, str]] = {
    "bitmex": {"XBT": "BTC"},
    "kraken": {"XBT": "BTC", "XDG": "DOGE"},
}

# (exchange, native symbol) -> unified symbol, for forms no rule covers.
SYMBOL_OVERRIDES: dict[tuple[str, str], str] = {
    ("bitmex", "XBTUSD"): "BTC/USD:BTC",
    ("bitmex", "ETHUSD"): "ETH/USD:BTC",
    ("deribit", "BTC-PERPETUAL"): "BTC/USD:BTC",
    ("deribit", "ETH-PERPETUAL"): "ETH/USD:ETH",
}

_UNIFIED = re.compile(
    r"^(?P<base>[A-Z0-9]+)/(?P<quote>[A-Z0-9]+)(?::(?P<settle>[A-Z0-9]+)(?:-(?P<expiry>\d{6}))?)?$"
)
_KRAKEN_LONG = re.compile(r"^[XZ](?P<base>[A-Z]{3})[XZ](?P<quote>[A-Z]{3})$")
_EXPIRY = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Symbol:
    """The parts of a unified symbol."""

    base: str
    quote: str
    settle: str | None = None
    expiry: str | None = None

    @property
    def market(self) -> str:
        """spot, linear (settled in the quote) or inverse (settled in another currency)."""
        if self.settle is None:
            return "spot"
        return "linear" if self.settle == self.quote else "inverse"

    def __str__(self) -> str:
        text = f"{self.base}/{self.quote}"
        if self.settle:
            text += f":{self.settle}"
            if self.expiry:
                text += f"-{self.expiry}"
        return text


def normalize_exchange(name: str) -> tuple[str, str | None]:
    """Exchange id and market (when the name implies one) for an exchange name.

    Unknown names are kept, lower-cased, so that a new exchange needs no entry here.
    """
    key = name.strip().lower().replace("_", "-")
    if not key or not re.fullmatch(r"[a-z0-9.\-]+", key):
        raise SourceError(
            f"invalid exchange name {name!r} (expected an exchange id such as binance, "
            f"coinbase, kraken, bybit, okx, bitmex)",
            exchange=name,
        )
    return EXCHANGE_ALIASES.get(key, (key, None))


def parse_unified(text: str) -> Symbol | None:
    """The parts of ``text`` when it is already unified (``BTC/USDT:USDT``), else None."""
    match = _UNIFIED.match(text.strip().upper())
    if match is None:
        return None
    return Symbol(match["base"], match["quote"], match["settle"], match["expiry"])


def split_concatenated(native: str) -> tuple[str, str] | None:
    """Split ``BTCUSDT`` into ``(BTC, USDT)`` by the known quote currencies, or None."""
    for quote in KNOWN_QUOTES:
        if native.endswith(quote) and len(native) > len(quote):
            return native[: -len(quote)], quote
    return None


def _settle_for(exchange: str, base: str, quote: str, market: str) -> str:
    if market == "linear":
        return quote
    if market == "inverse":
        # BitMEX margins every USD contract in bitcoin (inverse XBTUSD, quanto ETHUSD).
        return "BTC" if exchange == "bitmex" else base
    if exchange == "bitmex":
        return "BTC" if quote == "USD" else quote
    if exchange == "ftx":
        return "USD"
    return base if quote == "USD" else quote


def _split_native(native: str, exchange: str) -> tuple[str, str, str | None]:
    """Base, quote and an optional suffix (PERP, SWAP, an expiry) of a native symbol."""
    parts = [p for p in re.split(r"[_\-/]", native) if p]
    suffix: str | None = None
    if len(parts) >= 2 and (parts[-1] in ("PERP", "SWAP", "PERPETUAL") or _EXPIRY.match(parts[-1])):
        suffix = parts.pop()
    if len(parts) == 2:
        return parts[0], parts[1], suffix
    if len(parts) == 1:
        if exchange == "kraken":
            long_form = _KRAKEN_LONG.match(parts[0])
            if long_form:
                return long_form["base"], long_form["quote"], suffix
        if exchange == "ftx" and suffix == "PERP":
            return parts[0], "USD", suffix
        split = split_concatenated(parts[0])
        if split:
            return split[0], split[1], suffix
    raise SourceError(
        f"symbol {native!r} of exchange {exchange!r} cannot be mapped to BASE/QUOTE "
        f"(known quote currencies: {', '.join(sorted(KNOWN_QUOTES))}); give the unified "
        "form with --symbol, e.g. BTC/USDT or BTC/USDT:USDT",
        symbol=native,
        exchange=exchange,
    )


def unify_symbol(native: str, exchange: str, market: str | None = None) -> str:
    """The unified symbol for an exchange's own form of it.

    Args:
        native: the exchange's symbol (``BTCUSDT``, ``XRP_ETH``, ``BTC-USD``, ``XBTUSD``,
            ``BTCUSD_PERP``, ``BTC-USDT-SWAP``) or an already unified one.
        exchange: exchange id or alias (see :func:`normalize_exchange`).
        market: spot, linear, inverse or derivative; None means what the symbol or the
            exchange implies, spot when neither says.

    Raises:
        SourceError: naming the symbol when it cannot be mapped.
    """
    exchange_id, implied = normalize_exchange(exchange)
    if market is not None and market not in MARKETS:
        raise SourceError(
            f"unknown market {market!r} (expected one of: {', '.join(MARKETS)})", market=market
        )
    text = native.strip()
    unified = parse_unified(text)
    if unified is not None and "/" in text:
        return str(unified)
    upper = text.upper()
    override = SYMBOL_OVERRIDES.get((exchange_id, upper))
    if override is not None:
        return override

    base, quote, suffix = _split_native(upper, exchange_id)
    aliases = ASSET_ALIASES.get(exchange_id, {})
    base, quote = aliases.get(base, base), aliases.get(quote, quote)
    chosen = market or implied
    if chosen is None or chosen == "spot":
        chosen = "derivative" if suffix is not None else (chosen or "spot")
    if chosen == "spot":
        return f"{base}/{quote}"
    settle = _settle_for(exchange_id, base, quote, chosen)
    expiry = suffix if suffix is not None and _EXPIRY.match(suffix) else None
    return str(Symbol(base, quote, settle, expiry))


def freqtrade_pair(name: str) -> str:
    """The unified symbol of a freqtrade file-name pair: ``XRP_ETH``, ``XRP_USDT_USDT``."""
    parts = name.upper().split("_")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return f"{parts[0]}/{parts[1]}:{parts[2]}"
    if len(parts) == 4 and all(parts) and _EXPIRY.match(parts[3]):
        return f"{parts[0]}/{parts[1]}:{parts[2]}-{parts[3]}"
    raise SourceError(
        f"pair {name!r} in a freqtrade file name is not BASE_QUOTE or BASE_QUOTE_SETTLE",
        symbol=name,
    )


def symbol_market(symbol: str) -> str | None:
    """spot, linear or inverse for a unified symbol, None for a native one."""
    if "/" not in symbol:
        return None
    unified = parse_unified(symbol)
    return unified.market if unified else None
