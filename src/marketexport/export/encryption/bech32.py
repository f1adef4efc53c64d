"""Bech32 (BIP 173) without the 90-character limit, as age encodes its keys."""

from __future__ import annotations

from ...errors import EncryptionError

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return checksum


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    top = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & top)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & top)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & top):
        raise EncryptionError("bech32: invalid padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Lower-case bech32 of ``data`` under ``hrp``."""
    words = _regroup(data, 8, 5, True)
    polymod = _polymod(_expand(hrp) + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[w] for w in words + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """(hrp, data) of a bech32 string; mixed case or a bad checksum is refused."""
    if text.lower() != text and text.upper() != text:
        raise EncryptionError("bech32: mixed case")
    text = text.lower()
    cut = text.rfind("1")
    if cut < 1 or cut + 7 > len(text):
        raise EncryptionError("bech32: no separator or too short")
    hrp, rest = text[:cut], text[cut + 1 :]
    try:
        words = [CHARSET.index(c) for c in rest]
    except ValueError:
        raise EncryptionError("bech32: invalid character") from None
    if _polymod(_expand(hrp) + words) != 1:
        raise EncryptionError("bech32: checksum does not match")
    return hrp, bytes(_regroup(words[:-6], 5, 8, False))
