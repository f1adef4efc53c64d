"""A bounded load test of the HTTP service on 127.0.0.1.

While 4 exports run, 200 concurrent clients poll task status and 10 download a finished
export at once. Reports request counts, errors and status-poll latency percentiles.

    python benchmarks/api_load.py                 # prints the figures
    python benchmarks/api_load.py --readme        # also writes them into README.md

The load is bounded: each poller sends --polls requests, each downloader one download.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


async def _poll(
    client: httpx.AsyncClient, task_id: str, count: int, out: list[float], errors: list[str]
) -> None:
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(f"/v1/tasks/{task_id}")
        out.append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(f"status poll {response.status_code}")


async def _download(
    client: httpx.AsyncClient, task_id: str, digest: str, errors: list[str]
) -> None:
    response = await client.get(f"/v1/tasks/{task_id}/download")
    if response.status_code != 200:
        errors.append(f"download {response.status_code}")
    elif hashlib.sha256(response.content).hexdigest() != digest:
        errors.append("download checksum differs")


async def run_load(
    url: str,
    token: str,
    pollers: int = 200,
    polls: int = 20,
    downloaders: int = 10,
    exports: int = 4,
) -> dict[str, Any]:
    """Run the load against a service that has the demo store; return the figures."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=pollers + downloaders + 10)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=120, limits=limits
    ) as client:
        body = {"dataset": "trades", "format": "csv", "compression": "gzip"}
        ready = (await client.post("/v1/tasks", json=body)).json()
        while True:
            task = (await client.get(f"/v1/tasks/{ready['id']}")).json()
            if task["state"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.2)
        if task["state"] != "completed":
            raise RuntimeError(f"the export to download failed: {task['error']}")
        digest = task["result"]["file_sha256"]
        running = [
            (await client.post("/v1/tasks", json={"dataset": "ohlcv", "format": fmt})).json()
            for fmt in ("jsonl", "csv", "json", "parquet")[:exports]
        ]
        latencies: list[float] = []
        errors: list[str] = []
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _poll(client, running[i % len(running)]["id"], polls, latencies, errors)
                for i in range(pollers)
            ),
            *(_download(client, ready["id"], digest, errors) for _ in range(downloaders)),
        )
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies) + downloaders,
        "errors": errors,
        "seconds": elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
        "pollers": pollers,
        "downloaders": downloaders,
        "exports": exports,
    }


def markdown(result: dict[str, Any]) -> str:
    return (
        "| concurrent status polls | concurrent downloads | exports running | requests | "
        "errors | p50 status ms | p99 status ms | max ms |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['pollers']} | {result['downloaders']} | {result['exports']} | "
        f"{result['requests']} | {len(result['errors'])} | {result['p50_ms']:.1f} | "
        f"{result['p99_ms']:.1f} | {result['max_ms']:.1f} |"
    )


def main() -> None:
    from tests.api.conftest import start_service, stop_service

    from marketexport.demo import load_demo
    from marketexport.store.duckdb import DuckDBStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="marketexport-load-"))
    store = DuckDBStore(data_dir / "store.duckdb")
    load_demo(store)
    store.close()
    service = start_service(data_dir)
    try:
        result = asyncio.run(run_load(service.url, service.tokens["alice"]))
    finally:
        stop_service(service)
    text = markdown(result)
    print(text)
    if args.readme:
        readme = REPO / "README.md"
        begin, end = "<!-- bench:api_load -->", "<!-- /bench:api_load -->"
        content = readme.read_text(encoding="utf-8")
        block = f"{begin}\n{text}\n{end}"
        if begin in content:
            content = re.sub(re.escape(begin) + ".*?" + re.escape(end), block, content, flags=re.S)
        else:
            content += "\n" + block + "\n"
        readme.write_text(content, encoding="utf-8")


if __name__ == "__main__":
    main()
