"""A bounded load on loopback: 200 status pollers and 10 downloads while 4 exports run."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from tests.api.conftest import Service
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_load_gives_no_error_responses(service: Service) -> None:
    spec = importlib.util.spec_from_file_location("api_load", REPO / "benchmarks" / "api_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    result = asyncio.run(module.run_load(service.url, service.tokens["alice"], polls=5))

    assert result["errors"] == []
    assert result["requests"] == 200 * 5 + 10
    print(module.markdown(result))
