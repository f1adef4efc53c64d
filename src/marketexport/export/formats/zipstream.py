"""A zip archive written as a stream: entries one after another, never a seek back.

The xlsx writer needs a zip container whose sheet entries grow as rows arrive, with
output handed on chunk by chunk. Each entry is deflated by ISA-L (several times zlib's
speed at a similar ratio), its CRC-32 and sizes follow the data in a data descriptor
(general purpose flag bit 3), and the central directory is written at the end.

An entry holds less than 4 GiB (``ENTRY_LIMIT``); the xlsx writer starts a new sheet before
that. Local headers then never need Zip64 fields, which some spreadsheet programs handle
badly when the sizes are not known up front; the central directory and the end records use
Zip64 (APPNOTE 4.5) only where an offset or a count does not fit in 32 or 16 bits, so the
archive as a whole may exceed 4 GiB. Only what xlsx needs is here: deflated entries with
UTF-8 names, no encryption, no comments.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from isal import isal_zlib

_LOCAL_HEADER = 0x04034B50
_DESCRIPTOR = 0x08074B50
_CENTRAL_HEADER = 0x02014B50
_ZIP64_END = 0x06064B50
_ZIP64_LOCATOR = 0x07064B50
_END = 0x06054B50
_ZIP64_TAG = 0x0001
_LIMIT_32 = 0xFFFFFFFF
_LIMIT_16 = 0xFFFF
_VERSION_ZIP64 = 45
ENTRY_LIMIT = 4_000_000_000  # uncompressed bytes in one entry; deflate may add a little
_VERSION_DEFLATE = 20
_FLAGS = 0x0008 | 0x0800  # sizes in a data descriptor; names in UTF-8
_DEFLATED = 8


@dataclass
class _Entry:
    name: bytes
    offset: int
    crc: int = 0
    size: int = 0
    compressed: int = 0


def _dos_stamp(seconds: float) -> tuple[int, int]:
    """MS-DOS date and time fields (two-second resolution) of a Unix time, in UTC."""
    t = time.gmtime(seconds)
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((max(t.tm_year, 1980) - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


class ZipStream:
    """Builds a zip archive as a sequence of byte chunks.

    Call :meth:`start` for an entry, :meth:`write` for its data, :meth:`end` to close it,
    and :meth:`finish` once at the end. Each method returns the bytes to append.
    """

    def __init__(self, level: int = 1, modified_s: float | None = None) -> None:
        self._level = level
        self._time, self._date = _dos_stamp(time.time() if modified_s is None else modified_s)
        self._entries: list[_Entry] = []
        self._current: _Entry | None = None
        self._compressor: object = None
        self._offset = 0

    @property
    def bytes_written(self) -> int:
        return self._offset

    def _out(self, data: bytes) -> bytes:
        self._offset += len(data)
        return data

    def start(self, name: str) -> bytes:
        """Open an entry: its local header, with CRC and sizes left to the descriptor."""
        if self._current is not None:
            raise RuntimeError(f"zip entry {self._current.name!r} is still open")
        entry = _Entry(name.encode("utf-8"), self._offset)
        self._current = entry
        self._compressor = isal_zlib.compressobj(self._level, isal_zlib.DEFLATED, -15)
        header = struct.pack(
            "<IHHHHHIIIHH",
            _LOCAL_HEADER,
            _VERSION_DEFLATE,
            _FLAGS,
            _DEFLATED,
            self._time,
            self._date,
            0,
            0,
            0,
            len(entry.name),
            0,
        )
        return self._out(header + entry.name)

    def write(self, data: bytes | memoryview) -> bytes:
        """Compress ``data`` into the open entry; returns what is ready to append."""
        entry = self._current
        if entry is None:
            raise RuntimeError("no zip entry is open")
        if not data:
            return b""
        if entry.size + len(data) > ENTRY_LIMIT:
            raise ValueError(f"zip entry {entry.name!r} would pass {ENTRY_LIMIT} bytes")
        entry.crc = isal_zlib.crc32(data, entry.crc)
        entry.size += len(data)
        packed: bytes = self._compressor.compress(data)  # type: ignore[attr-defined]
        entry.compressed += len(packed)
        return self._out(packed)

    def end(self) -> bytes:
        """Close the open entry: the rest of its deflate stream and its data descriptor."""
        entry = self._current
        if entry is None:
            raise RuntimeError("no zip entry is open")
        tail: bytes = self._compressor.flush()  # type: ignore[attr-defined]
        entry.compressed += len(tail)
        descriptor = struct.pack("<IIII", _DESCRIPTOR, entry.crc, entry.compressed, entry.size)
        self._entries.append(entry)
        self._current = None
        self._compressor = None
        return self._out(tail + descriptor)

    def add(self, name: str, data: bytes) -> bytes:
        """A whole small entry at once."""
        return self.start(name) + self.write(data) + self.end()

    def finish(self) -> bytes:
        """The central directory and end records; the archive is complete after them."""
        if self._current is not None:
            raise RuntimeError(f"zip entry {self._current.name!r} is still open")
        directory_offset = self._offset
        directory = b"".join(self._central_header(entry) for entry in self._entries)
        count = len(self._entries)
        size = len(directory)
        tail = b""
        needs_zip64 = count >= _LIMIT_16 or directory_offset >= _LIMIT_32 or size >= _LIMIT_32
        if needs_zip64:
            zip64_end_offset = directory_offset + size
            tail += struct.pack(
                "<IQHHIIQQQQ",
                _ZIP64_END,
                44,
                _VERSION_ZIP64,
                _VERSION_ZIP64,
                0,
                0,
                count,
                count,
                size,
                directory_offset,
            )
            tail += struct.pack("<IIQI", _ZIP64_LOCATOR, 0, zip64_end_offset, 1)
        tail += struct.pack(
            "<IHHHHIIH",
            _END,
            0,
            0,
            min(count, _LIMIT_16),
            min(count, _LIMIT_16),
            min(size, _LIMIT_32),
            min(directory_offset, _LIMIT_32),
            0,
        )
        return self._out(directory + tail)

    def _central_header(self, entry: _Entry) -> bytes:
        # Sizes stay below 4 GiB (ENTRY_LIMIT); only the offset of an entry may need the
        # Zip64 extra field, in an archive that has grown past 4 GiB.
        offset = entry.offset
        extra = b""
        if offset >= _LIMIT_32:
            extra = struct.pack("<HHQ", _ZIP64_TAG, 8, offset)
            offset = _LIMIT_32
        version = _VERSION_ZIP64 if extra else _VERSION_DEFLATE
        header = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            _CENTRAL_HEADER,
            version,
            version,
            _FLAGS,
            _DEFLATED,
            self._time,
            self._date,
            entry.crc,
            entry.compressed,
            entry.size,
            len(entry.name),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        return header + entry.name + extra
