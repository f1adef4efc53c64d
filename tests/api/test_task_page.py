"""The task page in headless Chromium: live progress, then cancel with the page's button."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from marketexport.store.duckdb import DuckDBStore
from tests.api.conftest import Service, start_service, stop_service, wait_for
from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"


def build_big_store(path: Path, rows: int) -> None:
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        f"""INSERT INTO ohlcv SELECT 'binance', 'BTC/USDT', '1m', 'trade',
        make_timestamp_ns((1577836800000000 + i * 60000000) * 1000),
        30000.5, 30010.25, 29990.125, 30005.0625, i * 0.001, NULL, i % 100, NULL, NULL
        FROM range({rows}) t(i)"""
    ).fetchall()
    con.close()


@pytest.fixture(scope="module")
def slow_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("page")
    build_big_store(data_dir / "store.duckdb", 2_000_000)
    # Small batches make the export long enough to watch its progress bar move.
    running = start_service(data_dir, {"MARKETEXPORT_BATCH_ROWS": "2000"})
    yield running
    stop_service(running)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_page_shows_progress_and_cancels(slow_service: Service) -> None:
    from playwright.sync_api import sync_playwright

    with slow_service.client("alice") as client:
        task = client.post("/v1/tasks", json={"dataset": "ohlcv", "format": "jsonl"}).json()
        wait_for(client, task["id"], {"running"})

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page()
            page.goto(slow_service.url + "/ui")
            page.fill("#token", slow_service.tokens["alice"])
            page.click("#login button")
            bar = page.locator(f'.bar[data-task="{task["id"]}"]')
            bar.wait_for(timeout=20_000)
            first = float(bar.get_attribute("aria-valuenow") or 0)
            deadline = time.monotonic() + 30
            later = first
            while later <= first and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                later = float(bar.get_attribute("aria-valuenow") or 0)
            page.click(f'button.cancel[data-task="{task["id"]}"]')
            page.locator(f"#task-{task['id']} .state-cancelled").wait_for(timeout=30_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "task-page.png"), full_page=True)
            browser.close()

        final = client.get(f"/v1/tasks/{task['id']}").json()

    assert later > first, "the progress bar did not advance"
    assert final["state"] == "cancelled"
    out = slow_service.data_dir / "exports" / "alice" / task["id"]
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    assert (ARTIFACTS / "task-page.png").stat().st_size > 0
