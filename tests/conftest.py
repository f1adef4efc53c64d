"""Shared fixtures: the real data folder, a fresh store, and the --all switch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketexport.config import Settings, load_settings
from marketexport.store.duckdb import DuckDBStore

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MARKETEXPORT_SHARED", REPO.parent / "shared"))
REAL = SHARED / "data" / "real"
VECTORS = SHARED / "vectors"
MARKED = ("slow", "postgres", "redis", "browser")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        default=False,
        help="also run slow and service-backed tests (CI does)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--all"):
        return
    for item in items:
        marks = [name for name in MARKED if item.get_closest_marker(name)]
        if marks:
            item.add_marker(pytest.mark.skip(reason=f"{marks[0]} test: run with --all"))


@pytest.fixture
def real() -> Path:
    """The folder of real exchange files (../shared/data/real)."""
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} not found (set MARKETEXPORT_SHARED)")
    return REAL


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings({"data_dir": tmp_path / "data"}, environ={})


@pytest.fixture
def store(settings: Settings) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(Path(settings.store_url))
    yield opened
    opened.close()
