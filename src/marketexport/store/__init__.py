"""Stores: the embedded DuckDB file (default) and, later, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings, redact_url
from ..errors import ConfigError
from .base import InsertResult, ScanStats, Store

__all__ = ["InsertResult", "ScanStats", "Store", "open_store"]


def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    """Open the store the settings name: a DuckDB file path or a database URL."""
    url = settings.store_url
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"the PostgreSQL store {redact_url(url)} needs marketexport's postgres "
                f"support, which is not available: {exc}"
            ) from None
        return PostgresStore(url, settings=settings)  # type: ignore[no-any-return]
    if "://" in url:
        raise ConfigError(
            f"unsupported store {redact_url(url)!r} (expected a DuckDB file path or a "
            "postgresql:// URL)"
        )
    from .duckdb import DuckDBStore

    return DuckDBStore(
        Path(url),
        read_only=read_only,
        threads=settings.cpu_threads,
        # The limit keeps exports flat; an import's one transaction per file needs room.
        memory_limit_mb=settings.store_memory_mb if read_only else None,
    )
