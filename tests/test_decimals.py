"""Decimal text to decimal(38, 22): pyarrow's cast wraps some large values around instead of
failing; every way text becomes a stored decimal must refuse them."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from marketexport.decimals import text_to_decimal
from marketexport.errors import StoreError
from marketexport.ingest.convert import ConvertError, decimal_from_text
from marketexport.store.pgread import to_store_batch

# Each of these came back from pyarrow 26's cast as a different number with 16 integer
# digits (9223372036854775807 -> 1719893297343447.1425481385990814695424).
WRAPPING = ["9223372036854775807", "-9223372036854775807", "1234567890123456789", "1.5e20"]


@pytest.mark.parametrize("text", WRAPPING)
def test_text_that_arrow_would_wrap_fails_the_cast(text: str) -> None:
    with pytest.raises(pa.ArrowInvalid):
        text_to_decimal(pa.array(["1.5", text]))


@pytest.mark.parametrize("text", WRAPPING)
def test_an_import_refuses_it_naming_the_value(text: str) -> None:
    with pytest.raises(ConvertError, match="too large") as raised:
        decimal_from_text(["0.5", text], "price")
    assert repr(text) in str(raised.value) and raised.value.row == 1


def test_the_largest_values_that_fit_still_convert_exactly() -> None:
    texts = ["9999999999999999.9999999999999999999999", "-9999999999999999.5", "1e15", None]

    converted = decimal_from_text(texts, "price").to_pylist()

    assert converted == [
        Decimal("9999999999999999.9999999999999999999999"),
        Decimal("-9999999999999999.5"),
        Decimal("1000000000000000"),
        None,
    ]


@pytest.mark.parametrize("text", ["9223372036854775807", "-1234567890123456789"])
def test_a_postgresql_scan_batch_refuses_it_naming_the_value(text: str) -> None:
    from marketexport.datasets import TRADES

    columns = ["price"]
    batch = pa.RecordBatch.from_pydict({"price": pa.array(["1.25", text], pa.string())})

    with pytest.raises(StoreError) as raised:
        to_store_batch(batch, TRADES, columns, "table 'trades'")
    assert f"value {text!r} of column 'price'" in str(raised.value)


def test_a_postgresql_scan_batch_keeps_values_near_the_limit() -> None:
    from marketexport.datasets import TRADES

    near = "9999999999999999.9999999999999999999999"
    wide = "1.1000000000000000000000000000"  # numeric keeps the scale it was given (28)
    batch = pa.RecordBatch.from_pydict({"price": pa.array([near, wide, None], pa.string())})

    converted = to_store_batch(batch, TRADES, ["price"], "table 'trades'")

    assert converted.column(0).to_pylist() == [Decimal(near), Decimal("1.1"), None]


def test_whole_numbers_read_as_integers_become_decimals() -> None:
    """A JSON file whose column holds only whole numbers reads as int64, which Arrow would
    cast to decimal(38, 22) only if any int64 fitted (it asks for precision 41)."""
    from marketexport.ingest.convert import decimal_column

    converted = decimal_column(pa.array([1, 115588, None, -7], pa.int64()), "open")

    assert converted.to_pylist() == [Decimal(1), Decimal(115588), None, Decimal(-7)]
    with pytest.raises(ConvertError, match="'9223372036854775807' is too large"):
        decimal_column(pa.array([1, 2**63 - 1], pa.int64()), "open")


@pytest.mark.parametrize("text", ["1_000", "١٢٣", "１２３", "5.5e", "0x10"])
def test_number_text_is_plain_ascii_digits(text: str) -> None:
    """Python's Decimal() also reads 1_000 and other scripts' digits; a file that holds
    them is damaged or not what it claims, so the value is refused by name."""
    with pytest.raises(ConvertError, match="is not a number"):
        decimal_from_text(["1", text], "price")
