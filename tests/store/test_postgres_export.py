"""Exports from PostgreSQL and from DuckDB holding the same rows are the same files.

Text formats must be byte-identical; Parquet and Excel must hold equal tables (their
containers carry writer details such as timestamps that need not match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest

from marketexport.datasets import DATASETS
from marketexport.export.formats import FORMATS
from marketexport.export.pipeline import run_export
from marketexport.ingest import Hints, ingest_paths
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.store.samples import sample_table

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _xlsx_values(path: Path) -> list[list[list[Any]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [[list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book]
    finally:
        book.close()


def assert_same_export(pg_store: Any, duck: DuckDBStore, dataset: str, tmp_path: Path) -> int:
    """Export ``dataset`` in every format from both stores and compare; returns the rows."""
    rows = 0
    for name in FORMATS:
        request = build_request(dataset=dataset, format=name)
        from_pg = run_export(request, pg_store, output_dir=tmp_path / "pg" / name)
        from_duck = run_export(request, duck, output_dir=tmp_path / "duck" / name)
        pg_manifest, duck_manifest = from_pg.manifest, from_duck.manifest

        assert from_pg.path.name == from_duck.path.name
        for field in ("rows", "time_unit", "first_time", "last_time", "schema"):
            assert getattr(pg_manifest, field) == getattr(duck_manifest, field), (name, field)
        if name == "parquet":
            assert pq.read_table(from_pg.path).equals(pq.read_table(from_duck.path))
        elif name == "xlsx":
            assert _xlsx_values(from_pg.path) == _xlsx_values(from_duck.path)
        else:
            assert from_pg.path.read_bytes() == from_duck.path.read_bytes(), name
            assert pg_manifest.payload_sha256 == duck_manifest.payload_sha256
        rows = pg_manifest.rows
    return rows


def test_every_dataset_in_every_format_matches_duckdb(
    pg_store: Any, duck: DuckDBStore, tmp_path: Path
) -> None:
    units = ["ns", "us", "ms"]
    for i, spec in enumerate(DATASETS.values()):
        table = sample_table(spec, 30, units[i % len(units)])
        pg_store.insert([(spec, table.to_batches())])
        duck.insert([(spec, table.to_batches())])

    for spec in DATASETS.values():
        assert assert_same_export(pg_store, duck, spec.name, tmp_path / spec.name) > 0


# The real files by kind; each kind is skipped, naming the files, while no importer reads it.
REAL_KINDS = {
    "ohlcv": ["ohlcv"],
    "trades": ["trades", "aggtrades"],
    "account": ["account"],
}


@pytest.mark.parametrize("kind", list(REAL_KINDS))
def test_real_files_export_the_same_from_both_stores(
    real: Path, pg_store: Any, duck: DuckDBStore, tmp_path: Path, kind: str
) -> None:
    paths = [real / folder for folder in REAL_KINDS[kind] if (real / folder).exists()]
    if not paths:
        pytest.skip(f"no real {kind} files under {real}")

    into_pg = ingest_paths(paths, pg_store, Hints())
    into_duck = ingest_paths(paths, duck, Hints())
    # files that do not say their exchange (freqtrade, plain CSV) get one, as a user would
    refused = [Path(report.path) for report in into_pg if not report.ok]
    into_pg += ingest_paths(refused, pg_store, Hints(exchange="binance"))
    into_duck += ingest_paths(refused, duck, Hints(exchange="binance"))

    assert [r.to_dict() for r in into_pg] == [r.to_dict() for r in into_duck]
    imported = {name for report in into_pg if report.ok for name in report.datasets}
    if not imported:
        refused = "; ".join(f"{r.path}: {r.error}" for r in into_pg[:3])
        pytest.skip(f"no importer reads the real {kind} files yet ({refused})")
    for dataset in sorted(imported):
        assert assert_same_export(pg_store, duck, dataset, tmp_path / dataset) > 0
