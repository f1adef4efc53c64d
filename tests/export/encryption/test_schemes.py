"""Every scheme: round trips at chunk edges, and every kind of damage refused with nothing
left behind (flipped bits, truncation, swapped / repeated / dropped chunks, trailing data,
wrong keys)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from marketexport.errors import EncryptionError, ExportError
from marketexport.export.encryption import (
    SCHEMES,
    DecryptionKeys,
    Decryptor,
    KeyRing,
    open_encryptor,
)
from marketexport.export.encryption.container import parse_preamble
from marketexport.export.encryption.decrypt import decrypt_file
from marketexport.export.encryption.keys import KeyDirectory

from .conftest import scheme_cases, wrong_keys

CONTENT = {"format": "csv", "compression": "none"}
SIZES = [0, 1, 16_383, 16_384, 16_385, 65_536, 65_537, 524_288, 524_289, 1_200_000]


def encrypt(ring: KeyRing, scheme: str, data: bytes, piece_bytes: int = 100_000) -> bytes:
    spec, _ = scheme_cases(ring.directory)[scheme]
    stage = open_encryptor(spec, ring, CONTENT)
    out = [stage.write(data[i : i + piece_bytes]) for i in range(0, len(data), piece_bytes)]
    out.append(stage.flush())
    stage.close()
    stage.close()
    return b"".join(out)


def decrypt(ring: KeyRing, offered: DecryptionKeys, data: bytes, piece_bytes: int) -> bytes:
    stage = Decryptor(offered, ring)
    out = [stage.write(data[i : i + piece_bytes]) for i in range(0, len(data), piece_bytes)]
    out.append(stage.flush())
    stage.close()
    return b"".join(out)


def chunk_spans(scheme: str, data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every sealed chunk or frame in an encrypted file."""
    if scheme == "age":
        mac_line = data.index(b"\n---") + 1
        start, size = data.index(b"\n", mac_line) + 1 + 16, 65_536 + 16
    else:
        parsed = parse_preamble(data)
        assert parsed is not None
        start = parsed[1]
        if scheme == "fernet":
            spans = []
            while start < len(data):
                (length,) = struct.unpack(">I", data[start : start + 4])
                spans.append((start, start + 4 + length))
                start += 4 + length
            return spans
        start, size = start + 56, 16_384 + 16
    spans = [(i, min(i + size, len(data))) for i in range(start, len(data), size)]
    return spans


@pytest.fixture(params=list(SCHEMES))
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_at_chunk_edges(ring: KeyRing, scheme: str, size: int) -> None:
    data = os.urandom(size)
    _, offered = scheme_cases(ring.directory)[scheme]

    sealed = encrypt(ring, scheme, data, piece_bytes=70_001)

    assert decrypt(ring, offered, sealed, 9_999) == data
    assert decrypt(ring, offered, sealed, len(sealed) + 1) == data
    assert len(data) < 64 or data[:64] not in sealed


def test_stage_verbs(ring: KeyRing, scheme: str) -> None:
    spec, _ = scheme_cases(ring.directory)[scheme]
    stage = open_encryptor(spec, ring, CONTENT)

    first = stage.write(b"x" * 10)
    end = stage.flush()

    assert first + end
    assert stage.flush() == b""
    with pytest.raises(EncryptionError):
        stage.write(b"more")
    assert stage.describe()["scheme"] == scheme
    stage.close()
    stage.close()


@pytest.fixture
def sealed_file(ring: KeyRing, scheme: str, tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(1_200_000)
    path = tmp_path / "export.csv.mxe"
    path.write_bytes(encrypt(ring, scheme, data))
    return path, data


def _refused(ring: KeyRing, scheme: str, path: Path, damaged: bytes, offered=None) -> str:  # type: ignore[no-untyped-def]
    """Decrypt ``damaged``: it must fail, and leave neither output nor temporary file."""
    path.write_bytes(damaged)
    target = path.with_name("plain.csv")
    offered = offered or scheme_cases(ring.directory)[scheme][1]

    with pytest.raises(ExportError) as caught:
        decrypt_file(path, target, offered, ring)

    assert not target.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return str(caught.value)


def test_intact_file_decrypts(ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]) -> None:
    path, data = sealed_file
    offered = scheme_cases(ring.directory)[scheme][1]

    result = decrypt_file(path, path.with_name("plain.csv"), offered, ring)

    assert result.path.read_bytes() == data
    assert result.path.stat().st_mode & 0o077 == 0


def _flip_positions(scheme: str, original: bytes, every_header_byte: bool) -> list[int]:
    header_end = chunk_spans(scheme, original)[0][0]
    if every_header_byte:
        positions = list(range(header_end))
    else:
        positions = [0, 8, 12, header_end // 2, header_end - 1]
    positions += list(range(header_end, len(original), max(1, len(original) // 97)))
    return positions + list(range(len(original) - 20, len(original)))


@pytest.mark.parametrize("exhaustive", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_flipped_bit_anywhere_is_refused(
    ring: KeyRing, scheme: str, tmp_path: Path, exhaustive: bool
) -> None:
    path = tmp_path / "small.csv.mxe"
    original = encrypt(ring, scheme, os.urandom(150_000))
    # Every byte of the header (or a sample), positions spread over the payload, the end.
    positions = _flip_positions(scheme, original, exhaustive)

    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= 1 << (position % 8)
        message = _refused(ring, scheme, path, bytes(damaged))
        assert message


def test_truncation_is_refused(ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    spans = chunk_spans(scheme, original)
    cuts = [0, 5, spans[0][0] - 1, spans[0][0], spans[1][0], spans[1][0] + 100, spans[-1][0]]
    cuts += [len(original) - 1]

    for cut in cuts:
        assert _refused(ring, scheme, path, original[:cut])


def _reassemble(original: bytes, spans: list[tuple[int, int]], order: list[int]) -> bytes:
    head = original[: spans[0][0]]
    return head + b"".join(original[spans[i][0] : spans[i][1]] for i in order)


def test_swapped_chunks_are_refused(
    ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]
) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    spans = chunk_spans(scheme, original)
    order = list(range(len(spans)))
    order[0], order[1] = order[1], order[0]

    assert _refused(ring, scheme, path, _reassemble(original, spans, order))


def test_repeated_and_dropped_chunks_are_refused(
    ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]
) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    spans = chunk_spans(scheme, original)
    everything = list(range(len(spans)))

    assert _refused(ring, scheme, path, _reassemble(original, spans, [0, *everything]))
    assert _refused(ring, scheme, path, _reassemble(original, spans, [0, 0, *everything[2:]]))
    assert _refused(ring, scheme, path, _reassemble(original, spans, everything[1:]))
    assert _refused(ring, scheme, path, _reassemble(original, spans, [0, *everything[2:]]))


def test_data_after_the_end_is_refused(
    ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]
) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    spans = chunk_spans(scheme, original)
    last = original[spans[-1][0] : spans[-1][1]]

    for tail in (b"\x00", b"garbage after the end", last, os.urandom(70_000)):
        assert _refused(ring, scheme, path, original + tail)


def test_wrong_key_fails_before_any_plaintext(
    ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]
) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    wrong = wrong_keys(ring.directory)[scheme]
    stage = Decryptor(wrong, ring)
    first_chunk_end = chunk_spans(scheme, original)[1][1]

    with pytest.raises(EncryptionError) as caught:
        stage.write(original[:first_chunk_end])

    assert "wrong" in str(caught.value)
    assert "wrong" in _refused(ring, scheme, path, original, wrong)


def test_wrong_kind_of_key_is_refused(
    ring: KeyRing, scheme: str, sealed_file: tuple[Path, bytes]
) -> None:
    path, _ = sealed_file
    original = path.read_bytes()
    other = {"aes256": "f", "rsa2048": "k", "fernet": "g", "age": "k"}[scheme]

    assert _refused(ring, scheme, path, original, DecryptionKeys(keys=(other,)))


def test_no_key_given_names_what_is_needed(tmp_path: Path, key_dir: KeyDirectory) -> None:
    ring = KeyRing(key_dir, {})
    path = tmp_path / "x.age"
    path.write_bytes(encrypt(ring, "age", b"hello"))

    with pytest.raises(EncryptionError, match="--identity"):
        decrypt_file(path, tmp_path / "out", DecryptionKeys(), ring)

    assert not (tmp_path / "out").exists()
