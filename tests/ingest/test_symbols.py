"""Exchange-native symbols become unified BASE/QUOTE[:SETTLE[-EXPIRY]] symbols."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from marketexport.errors import SourceError
from marketexport.ingest.convert import ConvertError, decimal_from_float, decimal_from_text
from marketexport.ingest.symbols import (
    freqtrade_pair,
    normalize_exchange,
    symbol_market,
    unify_symbol,
)


@pytest.mark.parametrize(
    ("native", "exchange", "market", "unified"),
    [
        ("BTCUSDT", "binance", None, "BTC/USDT"),
        ("BTCUSDT", "binance", "linear", "BTC/USDT:USDT"),
        ("BTCUSDT", "binanceusdm", None, "BTC/USDT:USDT"),
        ("BTCUSD_PERP", "binance", None, "BTC/USD:BTC"),
        ("BTCUSD_PERP", "binancecoinm", None, "BTC/USD:BTC"),
        ("BTCUSD_230929", "binance", "inverse", "BTC/USD:BTC-230929"),
        ("BTCUSDT_230929", "binance", "linear", "BTC/USDT:USDT-230929"),
        ("BTCBUSD", "binance", None, "BTC/BUSD"),
        ("1000SHIBUSDT", "binance", "derivative", "1000SHIB/USDT:USDT"),
        ("btcusdt", "binance", None, "BTC/USDT"),
        ("XRP_ETH", "binance", None, "XRP/ETH"),
        ("ADABTC", "binance", None, "ADA/BTC"),
        ("BTC-USD", "coinbase", None, "BTC/USD"),
        ("BTC-USD", "coinbasepro", None, "BTC/USD"),
        ("XBTUSD", "bitmex", None, "BTC/USD:BTC"),
        ("ETHUSD", "bitmex", None, "ETH/USD:BTC"),
        ("XBTUSDT", "bitmex", None, "BTC/USDT:USDT"),
        ("BCHEUR", "kraken", None, "BCH/EUR"),
        ("XBTEUR", "kraken", None, "BTC/EUR"),
        ("XXBTZEUR", "kraken", None, "BTC/EUR"),
        ("BTC-USDT", "okx", None, "BTC/USDT"),
        ("BTC-USDT-SWAP", "okx", None, "BTC/USDT:USDT"),
        ("BTC-USD-SWAP", "okex", None, "BTC/USD:BTC"),
        ("FXSUSDT", "bybit", "derivative", "FXS/USDT:USDT"),
        ("BTCUSD", "bybit", "derivative", "BTC/USD:BTC"),
        ("BTC-PERPETUAL", "deribit", None, "BTC/USD:BTC"),
        ("BTC-PERP", "ftx", None, "BTC/USD:USD"),
        ("BTCUSDT", "binance-futures", None, "BTC/USDT:USDT"),
        ("BTC/USDT:USDT", "binance", None, "BTC/USDT:USDT"),
        ("eth/usdt", "kraken", None, "ETH/USDT"),
    ],
)
def test_native_symbols_unify(native: str, exchange: str, market: str | None, unified: str) -> None:
    assert unify_symbol(native, exchange, market) == unified


@pytest.mark.parametrize(
    ("native", "exchange"), [("BTC-PERP", "binance"), ("FOOBAR", "binance"), ("XBTZ20", "bitmex")]
)
def test_unmappable_symbol_names_itself_and_the_way_out(native: str, exchange: str) -> None:
    with pytest.raises(SourceError) as caught:
        unify_symbol(native, exchange)

    assert repr(native.upper()) in str(caught.value) and "--symbol" in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).symbol == native.upper()


def test_unknown_market_is_refused_with_the_choices() -> None:
    with pytest.raises(SourceError, match="spot, linear, inverse, derivative"):
        unify_symbol("BTCUSDT", "binance", "perpetual")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("binance", ("binance", None)),
        ("Binance", ("binance", None)),
        ("binance_usdm", ("binance", "linear")),
        ("binanceusdm", ("binance", "linear")),
        ("okex", ("okx", None)),
        ("gdax", ("coinbase", "spot")),
        ("newexchange", ("newexchange", None)),
    ],
)
def test_exchange_names_normalise(name: str, expected: tuple[str, str | None]) -> None:
    assert normalize_exchange(name) == expected


def test_invalid_exchange_name_is_refused() -> None:
    with pytest.raises(SourceError, match="invalid exchange name 'bin ance'"):
        normalize_exchange("bin ance")


def test_freqtrade_pairs_and_markets() -> None:
    assert freqtrade_pair("XRP_USDT_USDT") == "XRP/USDT:USDT"
    assert freqtrade_pair("XRP_ETH") == "XRP/ETH"
    assert symbol_market("XRP/USDT:USDT") == "linear"
    assert symbol_market("BTC/USD:BTC") == "inverse"
    assert symbol_market("BTC/USD") == "spot"
    assert symbol_market("BTCUSD") is None
    with pytest.raises(SourceError, match="'XRP'"):
        freqtrade_pair("XRP")


def test_float_noise_is_kept_and_only_beyond_the_store_scale_rounded() -> None:
    """A float's shortest repr keeps its noise (nautilus' 5.2000000000000004e-05 needs 21
    places, within the store's 22); beyond 22 places it is rounded half-even, while
    decimal text that needs more is refused."""
    from_float = decimal_from_float(
        [5.2000000000000004e-05, 0.0042425399999999995, 0.1, 1.2345678901234567e-07]
    )
    with pytest.raises(ConvertError, match="more than 22 decimal places"):
        decimal_from_text(["0.00000012345678901234567"])

    assert from_float.to_pylist() == [
        Decimal("0.000052000000000000004"),
        Decimal("0.0042425399999999995"),
        Decimal("0.1"),
        Decimal("0.0000001234567890123457"),
    ]
