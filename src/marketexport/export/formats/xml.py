"""XML, streamed: one element per row, one child element per column.

Layout (the XSD that ``marketexport schema DATASET --xsd`` prints describes it)::

    <?xml version="1.0" encoding="UTF-8"?>
    <ohlcv marketexport="0.1.0" time_unit="ms" columns="exchange symbol ..." ...>
    <row><exchange>binance</exchange><symbol>BTC/USDT</symbol>...</row>
    ...
    </ohlcv>

- The root element is named after the dataset; its attributes describe the export: the
  marketexport version, the time unit, the columns, and the request's exchanges, symbols,
  start and end when it gave them.
- Each ``row`` has one child per exported column, named after the column (dataset column
  names are valid XML names). A null value has no element; an empty text is an empty
  element, so the two stay apart.
- Values are exact text: decimals in plain notation (``xs:decimal``), integers
  (``xs:long``), ``true``/``false`` (``xs:boolean``), ISO 8601 UTC times with ``Z`` at the
  export's unit (``xs:dateTime``).
- Text is escaped for XML (``&amp;``, ``&lt;``, ``&gt;``; CR as ``&#13;`` because parsers
  turn a raw CR into LF). Characters XML 1.0 cannot carry at all (C0 controls other than
  tab, LF and CR; U+FFFE, U+FFFF) are encoded reversibly: the element gets
  ``escaped="true"``, and in its text every such character and every backslash is written
  ``\\uHHHH`` (four hex digits). Decode such an element by replacing each ``\\uHHHH`` with
  its character; elements without the attribute hold their text as it is. The manifest
  notes count the escaped values per column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from ... import __version__
from ..render import joined_bytes, render_plain
from .base import FormatSpec, WriterContext
from .xmltext import ILLEGAL_PATTERN, assemble, escape_markup, needs_escaping, rewrite_matching

_ILLEGAL_OR_BACKSLASH = re.compile(r"[\\\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ESCAPED_FORM = "\\uHHHH for each backslash and each character XML 1.0 cannot carry"


def encode_reversibly(value: str) -> str:
    """The text of an ``escaped="true"`` element: ``\\uHHHH`` for backslash and illegals."""
    return _ILLEGAL_OR_BACKSLASH.sub(lambda match: f"\\u{ord(match.group()):04X}", value)


def decode_escaped(text: str) -> str:
    """The original text of an ``escaped="true"`` element."""
    return re.sub(r"\\u([0-9A-Fa-f]{4})", lambda match: chr(int(match.group(1), 16)), text)


def _attribute(value: str) -> str:
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
    return text.replace("\r", "&#13;")


def text_element(name: str, column: pa.Array) -> tuple[list[str | pa.Array], int]:
    """Pieces of a text column's elements, and how many values were encoded."""
    text = column
    escaped_mask = None
    if needs_escaping(text):
        text, escaped_mask = rewrite_matching(text, ILLEGAL_PATTERN, encode_reversibly)
        text = pc.replace_substring(escape_markup(text), "\r", "&#13;")
    open_tag, close_tag = f"<{name}>", f"</{name}>"
    if escaped_mask is None:
        return _element(open_tag, text, close_tag), 0
    plain = pc.binary_join_element_wise(open_tag, text, close_tag, "")
    marked = pc.binary_join_element_wise(f'<{name} escaped="true">', text, close_tag, "")
    elements = pc.fill_null(pc.if_else(escaped_mask, marked, plain), "")
    return [elements], int(pc.sum(escaped_mask).as_py() or 0)


def _element(open_tag: str, values: pa.Array, close_tag: str) -> list[str | pa.Array]:
    if values.null_count == 0:
        return [open_tag, values, close_tag]
    return [pc.fill_null(pc.binary_join_element_wise(open_tag, values, close_tag, ""), "")]


class XmlWriter:
    """Renders batches column-wise into row elements."""

    def __init__(self, context: WriterContext) -> None:
        self._context = context
        self._names = [column.name for column in context.columns]
        self._kinds = [column.kind for column in context.columns]
        self._escaped: dict[str, int] = {}

    def header(self) -> bytes:
        request = self._context.request
        attributes = {
            "marketexport": __version__,
            "time_unit": self._context.time_unit,
            "columns": " ".join(self._names),
        }
        for key in ("exchanges", "symbols"):
            if request.get(key):
                attributes[key] = " ".join(request[key])
        for key in ("start", "end"):
            if request.get(key):
                attributes[key] = str(request[key])
        text = " ".join(f'{key}="{_attribute(value)}"' for key, value in attributes.items())
        opening = f'<?xml version="1.0" encoding="UTF-8"?>\n<{self._context.dataset} {text}>\n'
        return opening.encode()

    def encode(self, batch: pa.RecordBatch) -> tuple[bytes, dict[str, int]]:
        if batch.num_rows == 0:
            return b"", {}
        pieces: list[str | pa.Array] = ["<row>"]
        escaped: dict[str, int] = {}
        for name, kind, column in zip(self._names, self._kinds, batch.columns, strict=True):
            if kind in ("text", "id"):
                found, count = text_element(name, column)
                pieces.extend(found)
                if count:
                    escaped[name] = count
            else:
                pieces.extend(_element(f"<{name}>", render_plain(column), f"</{name}>"))
        pieces.append("</row>\n")
        return joined_bytes(assemble(pieces, batch.num_rows)), escaped

    def write(self, encoded: tuple[bytes, dict[str, int]]) -> bytes:
        data, escaped = encoded
        for name, count in escaped.items():
            self._escaped[name] = self._escaped.get(name, 0) + count
        return data

    def footer(self) -> bytes:
        return f"</{self._context.dataset}>\n".encode()

    def notes(self) -> dict[str, Any]:
        if not self._escaped:
            return {}
        return {"escaped_characters": {"form": ESCAPED_FORM, "cells": dict(self._escaped)}}


def summarize_xml(stream: BinaryIO, time_column: str | None, path: Path | None) -> dict[str, Any]:
    from .office_readback import summarize_xml_rows

    return summarize_xml_rows(stream, time_column)


XML = FormatSpec(name="xml", extension=".xml", factory=XmlWriter, summarize=summarize_xml)
