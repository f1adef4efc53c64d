"""Every real source file, imported and exported to xlsx and XML, read back exactly.

The importers decide what a file becomes; these tests check that xlsx (read by openpyxl,
and pandas for the smaller files) and XML (parsed by lxml and validated against the
shipped XSD) carry exactly what the store holds. A file that no importer takes yet, or
that its importer refuses, is skipped with the importer's message.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketexport.datasets import get_dataset
from marketexport.export.verify import verify_export
from marketexport.ingest import Hints, ingest_file, iter_files
from marketexport.store.duckdb import DuckDBStore
from tests.conftest import REAL
from tests.export import test_xlsx, test_xml
from tests.export.office_samples import export, store_rows

PANDAS_ROWS = 20_000  # pandas reads the whole workbook at once: only for the smaller files


@cache
def _hints() -> dict[str, dict[str, str]]:
    """The hints (--exchange, --symbol) each real file needs, as the import tests record
    them in their ``*CASES`` tables; a file not listed there is imported without."""
    import tests.ingest

    found: dict[str, dict[str, str]] = {}
    for module_info in pkgutil.iter_modules(tests.ingest.__path__):
        module = importlib.import_module(f"tests.ingest.{module_info.name}")
        for name, value in vars(module).items():
            if name.endswith("CASES") and isinstance(value, tuple | list):
                for case in value:
                    if hasattr(case, "path") and hasattr(case, "hints"):
                        found.setdefault(str(case.path), dict(case.hints))
    return found


def _real_files() -> list[str]:
    if not REAL.is_dir():
        return []
    return [str(path.relative_to(REAL)) for path in iter_files([REAL])]


@pytest.mark.slow
@pytest.mark.parametrize("relative", _real_files() or ["(no real data folder)"])
def test_real_file_exports_exactly_to_xlsx_and_xml(
    real: Path, store: DuckDBStore, tmp_path: Path, relative: str
) -> None:
    report = ingest_file(real / relative, store, Hints(**_hints().get(relative, {})))
    if not report.ok:
        pytest.skip(f"not imported (importer missing or refusing): {report.error}")
    datasets = [name for name, counts in report.datasets.items() if counts["rows_added"]]
    assert datasets, f"{relative} imported no rows"

    for dataset in datasets:
        spec = get_dataset(dataset)
        source = store_rows(store, spec)
        check_xlsx(store, tmp_path / dataset, dataset, source)
        check_xml(store, tmp_path / dataset, dataset, source)


def check_xlsx(store: DuckDBStore, work: Path, dataset: str, source: list[dict[str, Any]]) -> None:
    spec = get_dataset(dataset)
    result = export(store, work, dataset, "xlsx", batch_rows=65_536)
    found = test_xlsx.data_rows(result.path)
    test_xlsx.check_rows(spec, found, source)
    if len(source) <= PANDAS_ROWS:
        frames = pd.read_excel(result.path, sheet_name=None, engine="openpyxl", dtype=object)
        rows = [
            tuple(None if pd.isna(value) else value for value in row)
            for frame in frames.values()
            for row in frame.itertuples(index=False)
        ]
        test_xlsx.check_rows(spec, rows, source)
    assert result.manifest.rows == len(source)
    assert verify_export(result.path).ok


def check_xml(store: DuckDBStore, work: Path, dataset: str, source: list[dict[str, Any]]) -> None:
    spec = get_dataset(dataset)
    result = export(store, work, dataset, "xml", batch_rows=65_536)
    root = test_xml.parse(result.path.read_bytes(), dataset)
    test_xml.check_rows(spec, root, source, spec.column_names)
    assert result.manifest.rows == len(source)
    assert verify_export(result.path).ok
