"""Importing exchange files into the store.

An importer is a module in this package that defines ``IMPORTERS``: a list of objects with
a ``name``, ``sniff(path, head) -> bool`` (is this file mine?) and
``read(path, hints) -> list[Parsed]``. Every module here is discovered automatically, so a
new source format is one new module. Each file is imported in one transaction: all its
rows or none.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pkgutil
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from ..datasets import Dataset
from ..errors import ExportError, RequestError, SourceError, foreground_message
from ..request import check_account, check_exchange, check_symbol
from ..store import Store

logger = logging.getLogger(__name__)

HEAD_BYTES = 4096
SKIPPED_SUFFIXES = (".CHECKSUM", ".md", ".txt")


@dataclass(frozen=True)
class Hints:
    """Facts the user gave on the command line, for files that do not say them."""

    exchange: str | None = None
    symbol: str | None = None
    account: str = "default"

    def __post_init__(self) -> None:
        # The account label is stored in every account row as given: judge its form here,
        # where every caller (CLI, tests, library use) passes through. An exchange or symbol
        # is held to the rule `export` applies to its filters, so that nothing is imported
        # that no export could ask for.
        check_account(self.account)
        if self.exchange is not None:
            check_exchange(self.exchange.strip().lower())
        if self.symbol is not None:
            check_symbol(self.symbol.strip())


@dataclass(frozen=True)
class Parsed:
    """Rows of one dataset read from a file, in the dataset's store schema."""

    dataset: Dataset
    table: pa.Table


class Importer(Protocol):
    name: str

    def sniff(self, path: Path, head: bytes) -> bool: ...
    def read(self, path: Path, hints: Hints) -> list[Parsed]: ...


@dataclass
class FileReport:
    """What importing one file did."""

    path: str
    importer: str | None = None
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        rows = {
            "rows_read": sum(d["rows_read"] for d in self.datasets.values()),
            "rows_added": sum(d["rows_added"] for d in self.datasets.values()),
            "rows_skipped": sum(d["rows_skipped"] for d in self.datasets.values()),
        }
        return {
            "path": self.path,
            "importer": self.importer,
            **rows,
            "datasets": self.datasets,
            "error": self.error,
        }


@cache
def importers() -> tuple[Importer, ...]:
    """Every importer of every module in this package, in module-name order."""
    found: list[Importer] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.extend(getattr(module, "IMPORTERS", ()))
    return tuple(found)


_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular(path: Path) -> None:
    """Raise a SourceError naming ``path`` unless it is a regular file (or a link to one).

    Opening a named pipe for reading waits for a writer, and a device can be endless: only
    regular files are ever opened, so that an import never blocks.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        what = "a link to a missing file" if path.is_symlink() else "no such file or directory"
        raise SourceError(f"{path}: {what}", path=str(path)) from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})", path=str(path)) from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise SourceError(
        f"{path}: {kind}, not a regular file; give files or directories of files",
        path=str(path),
    )


def check_paths(paths: Iterable[Path]) -> None:
    """Raise a SourceError for the first given path that is neither a directory nor a file."""
    for path in paths:
        if not path.is_dir():
            check_regular(path)


def _walk(folder: Path) -> list[Path]:
    """Every non-directory entry below ``folder``, sorted; hidden directories are not
    entered (``.git``, an editor's ``.cache``), and links to directories not followed."""
    found: list[Path] = []
    for root, directories, names in os.walk(folder):
        directories[:] = [name for name in directories if not name.startswith(".")]
        found.extend(Path(root) / name for name in names)
    return sorted(found)


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files to import: given files, and every entry below given directories, sorted.

    Hidden files and directories below a given directory are skipped (a hidden path given
    by name is imported). Entries below a directory that are not regular files (named
    pipes, sockets, broken links) are yielded too, so that :func:`ingest_file` reports them
    instead of leaving them out in silence; given paths must be directories or regular files.
    """
    paths = list(paths)
    check_paths(paths)
    for path in paths:
        if path.is_dir():
            for child in _walk(path):
                if child.name.endswith(SKIPPED_SUFFIXES) or child.name.startswith("."):
                    continue
                yield child
        else:
            yield path


_CHECKSUM_LINE = re.compile(r"(?P<digest>[0-9a-fA-F]{64})(?:[ \t]+\*?(?P<name>.+?))?\s*")
_CHECKSUM_MAX_BYTES = 4096


def _expected_digest(path: Path, sidecar: Path) -> str:
    """The SHA-256 that ``sidecar`` (``sha256sum`` output) gives for ``path``.

    The line must name ``path`` (its base name: ``sha256sum dir/x.zip`` prints the
    folder too) or name nothing; a sidecar that names another file is refused, so that a
    copied or renamed sidecar cannot vouch for the wrong archive.
    """
    unreadable = (
        f"{path}: its checksum file {sidecar.name} is unreadable (expected one line of "
        f"sha256sum output, '<64 hex digits>  {path.name}'); file not imported"
    )
    try:
        with sidecar.open("rb") as handle:
            raw = handle.read(_CHECKSUM_MAX_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise SourceError(unreadable, path=str(path)) from None
    lines = [line for line in text.splitlines() if line.strip()]
    match = _CHECKSUM_LINE.fullmatch(lines[0]) if len(lines) == 1 else None
    if len(raw) > _CHECKSUM_MAX_BYTES or match is None:
        raise SourceError(unreadable, path=str(path))

    named = match["name"]
    if named is not None and Path(named.replace("\\", "/")).name != path.name:
        raise SourceError(
            f"{path}: its checksum file {sidecar.name} is for {named!r}, another file; "
            "file not imported",
            path=str(path),
            named=named,
        )
    return match["digest"].lower()


def verify_checksum(path: Path) -> None:
    """Check ``<file>.CHECKSUM`` (sha256sum output) when it exists beside the file."""
    sidecar = path.with_name(path.name + ".CHECKSUM")
    if not sidecar.exists():
        return
    check_regular(sidecar)
    expected = _expected_digest(path, sidecar)

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise SourceError(
            f"{path}: SHA-256 {digest.hexdigest()} does not match {sidecar.name} "
            f"({expected}); file not imported",
            path=str(path),
        )


def pick_importer(path: Path) -> Importer:
    """The first importer that recognises the file, or a SourceError naming it."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    for importer in importers():
        if importer.sniff(path, head):
            return importer
    raise SourceError(
        f"{path}: format not recognised (supported: Binance public data, freqtrade, "
        "tardis.dev, exchange CSV/JSON exports and captures listed in the README)",
        path=str(path),
    )


def check_names(path: Path, parsed: list[Parsed]) -> None:
    """Refuse the file when an exchange or symbol read from it breaks export's rule.

    Such a value (``ÄÖ/€``, a quote mark, 300 characters) could be stored but never asked
    for by ``export --exchange/--symbol``; the message names it and the file.
    """
    for part in parsed:
        for column, check in (("exchange", check_exchange), ("symbol", check_symbol)):
            if column not in part.table.column_names:
                continue
            for value in pc.unique(part.table[column]).to_pylist():
                if value is None:
                    continue
                try:
                    check(value)
                except RequestError as exc:
                    raise SourceError(
                        f"{path}: the file gives an {exc}; file not imported",
                        path=str(path),
                        **{column: value},
                    ) from None


def ingest_file(path: Path, store: Store, hints: Hints) -> FileReport:
    """Import one file in one transaction and report what it added."""
    report = FileReport(str(path))
    try:
        check_regular(path)
        verify_checksum(path)
        importer = pick_importer(path)
        report.importer = importer.name
        parsed = importer.read(path, hints)
        check_names(path, parsed)
        results = store.insert(
            [(part.dataset, part.table.to_batches(max_chunksize=65_536)) for part in parsed]
        )
    except ExportError as exc:
        report.error = foreground_message(exc)  # an import is not retried
        logger.info("import of %s refused: %s", path, exc)
        return report
    except (ValueError, pa.ArrowException, OSError, UnicodeError) as exc:
        # An importer met data it did not foresee: refuse this file, keep the others.
        logger.debug("import of %s failed", path, exc_info=True)
        report.error = f"{path}: cannot be imported: {type(exc).__name__}: {exc}"
        return report
    for name, result in results.items():
        report.datasets[name] = {
            "rows_read": result.rows_read,
            "rows_added": result.rows_added,
            "rows_skipped": result.rows_skipped,
        }
    logger.info("imported %s with %s: %s", path, report.importer, report.datasets)
    return report


def ingest_paths(paths: Iterable[Path], store: Store, hints: Hints) -> list[FileReport]:
    """Import every file under ``paths``; a refused file does not stop the others.

    A given path that is missing or not a regular file stops everything before the first
    import (see :func:`check_paths`).
    """
    files = list(iter_files(paths))
    return [ingest_file(path, store, hints) for path in files]
