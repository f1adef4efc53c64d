"""Recorded websocket captures: one received message per line, with its receive time.

Two recorders' formats are read:

- hftbacktest (``.gz`` text): ``<receive time in ns> <json>``; the JSON is a Binance
  combined-stream message ``{"stream": ..., "data": ...}`` or a REST depth snapshot
  ``{"lastUpdateId": ..., "bids": ..., "asks": ...}``.
- cryptofeed (``<EXCHANGE>.ws.<n>.<m>``): ``wss://<url> <-> <epoch s>`` when a connection
  opened, ``wss://<url> <- <epoch s>: <json>`` for what the recorder sent (skipped), and
  ``<epoch s>: <json>`` for each received message. The URL names the exchange and market.

Messages become orderbook, ticker, trades and ohlcv rows (see capture_binance and
capture_coinbase); each row keeps the line's receive time where its dataset has a column
for it. The whole file is one transaction: a message that cannot be mapped refuses the file.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

from . import Hints, Parsed
from .capture_base import CaptureRows, Message, MessageMapper
from .capture_binance import BinanceMessages
from .capture_coinbase import CoinbaseMessages
from .convert import source_error
from .records import naming_file, parse_json_line, seconds_text_to_ns
from .tabular import text_head

_HFT_LINE = re.compile(rb"^(\d{16,20}) (\{.*)$")
_FEED_LINE = re.compile(r"^(\d+(?:\.\d+)?): (\{.*)$")
_FEED_URL = re.compile(r"^(wss?://\S+) <-(>)? ")


def iter_hftbacktest(path: Path) -> Iterator[Message]:
    """The messages of an hftbacktest capture (gzip text)."""
    try:
        with gzip.open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                match = _HFT_LINE.match(raw.rstrip(b"\r\n"))
                if match is None:
                    raise source_error(path, "line is not '<receive ns> <json>'", number)
                text = match[2].decode("utf-8", errors="strict")
                yield Message(parse_json_line(text, path, number), int(match[1]), number)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise source_error(path, f"cannot read the capture: {exc}") from None


def iter_cryptofeed(path: Path, urls: list[str]) -> Iterator[Message]:
    """The received messages of a cryptofeed capture; connection URLs go into ``urls``."""
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise source_error(path, f"cannot read the capture: {exc}") from None
    with handle:
        for number, text in enumerate(handle, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            url = _FEED_URL.match(text)
            if url is not None:
                if url[2] and url[1] not in urls:
                    urls.append(url[1])
                continue
            match = _FEED_LINE.match(text)
            if match is None:
                raise source_error(path, "line is not '<epoch s>: <json>'", number)
            receive_ns = seconds_text_to_ns(match[1], path, number)
            yield Message(parse_json_line(match[2], path, number), receive_ns, number)


def capture_kind(path: Path, head: bytes) -> str | None:
    """hftbacktest, cryptofeed or None, from the first line of the file."""
    if path.name.endswith(".gz"):
        text = text_head(path, head)
        return "hftbacktest" if _HFT_LINE.match(text.split(b"\n", 1)[0]) else None
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return "cryptofeed" if _FEED_URL.match(first) and " <-> " in first else None


def exchange_of(urls: list[str], path: Path) -> tuple[str, str | None]:
    """Exchange and market of a cryptofeed capture, from the websocket URL it opened."""
    for url in urls:
        host = url.split("/")[2] if url.count("/") >= 2 else url
        if host.startswith("fstream.") and "binance" in host:
            return "binance", "linear"
        if host.startswith("dstream.") and "binance" in host:
            return "binance", "inverse"
        if host.startswith("stream.") and "binance" in host:
            return "binance", "spot"
        if "coinbase" in host:
            return "coinbase", "spot"
    raise source_error(
        path,
        f"capture of {', '.join(urls) or 'an unnamed websocket'} not understood "
        "(known: Binance spot and futures streams, Coinbase Exchange feed)",
    )


class CaptureImporter:
    """hftbacktest and cryptofeed websocket captures (Binance, Coinbase)."""

    name = "websocket-capture"

    def sniff(self, path: Path, head: bytes) -> bool:
        return capture_kind(path, head) is not None

    def read(self, path: Path, hints: Hints) -> list[Parsed]:
        with naming_file(path):
            return self._read(path, hints)

    def _read(self, path: Path, hints: Hints) -> list[Parsed]:
        with path.open("rb") as handle:
            kind = capture_kind(path, handle.read(4096))
        rows = CaptureRows(path)
        mapper: MessageMapper
        if kind == "hftbacktest":
            # hftbacktest records Binance streams; spot or futures shows in the messages.
            mapper = BinanceMessages(rows, path, hints, market=None)
            messages: Iterator[Message] = iter_hftbacktest(path)
        else:
            urls: list[str] = []
            messages = iter_cryptofeed(path, urls)
            first = next(messages, None)
            if first is None:
                raise source_error(path, "the capture holds no received message")
            exchange, market = exchange_of(urls, path)
            if exchange == "binance":
                mapper = BinanceMessages(rows, path, hints, market=market)
            else:
                mapper = CoinbaseMessages(rows, path)
            mapper.add(first)
        for message in messages:
            mapper.add(message)
        mapper.finish()
        parsed = rows.parsed()
        if not parsed:
            raise source_error(path, "the capture holds no market-data message")
        return parsed


IMPORTERS = [CaptureImporter()]
