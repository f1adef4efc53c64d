"""Decimal text to the store's decimal(38, 22), exactly or not at all."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .datasets import DECIMAL_TYPE

INTEGER_DIGITS = DECIMAL_TYPE.precision - DECIMAL_TYPE.scale
# Plain decimal text of a value that decimal(38, 22) holds exactly (a regex, unanchored).
FITS_TEXT = rf"-?[0-9]{{1,{INTEGER_DIGITS}}}(\.[0-9]{{1,{DECIMAL_TYPE.scale}}})?"
# Every value that fits has fewer integer digits than this power of ten has.
_LIMIT = 10.0**INTEGER_DIGITS


def text_to_decimal(text: pa.Array) -> pa.Array:
    """Arrow's cast from text to decimal(38, 22), guarded against its wrap-around.

    pyarrow's cast fails for most values that do not fit, but for some with 17 to 20
    integer digits it returns another number instead (``9223372036854775807`` becomes
    ``1719893297343447.1425...``, ``1.5e20`` likewise). So the text is also read as floats,
    and a value of 1e16 or more (which a float may only overstate near 1e16) fails the cast
    here too; callers then judge each value exactly, as they do for any failed cast.

    Raises:
        pa.ArrowInvalid: some value does not fit, or may not.
    """
    result = pc.cast(text, DECIMAL_TYPE)
    if len(text) > text.null_count:
        largest = pc.max(pc.abs(pc.cast(text, pa.float64()))).as_py()
        if largest is None or not largest < _LIMIT:
            raise pa.ArrowInvalid(f"a value of {largest} does not fit {DECIMAL_TYPE}")
    return result
