"""Delivery speed and memory: one large CSV export sent to a directory, SFTP and S3.

The SFTP server is Debian's sshd and the S3 server is moto's server mode, both on 127.0.0.1
and both in their own processes, so the peak RSS measured here is the delivering process's
alone. Each delivery is verified (SFTP reads every byte back; S3 checks every part).

    python benchmarks/delivery_speed.py --rows 1000000

Needs openssh-server (and unshare, for sshd's /run/sshd in a private mount namespace).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.delivery.conftest import (  # noqa: E402
    PASSPHRASE,
    S3_ENV,
    SshServer,
    delivery_settings,
    free_port,
)
from tests.tasks.conftest import build_candles  # noqa: E402

from marketexport.delivery import deliver  # noqa: E402
from marketexport.delivery.sshlogin import PASSPHRASE_VARIABLE  # noqa: E402
from marketexport.export.pipeline import ExportResult, run_export  # noqa: E402
from marketexport.request import build_request  # noqa: E402
from marketexport.store.duckdb import DuckDBStore  # noqa: E402


class PeakRss:
    """Samples this process's RSS every 20 ms while in use; reports the peak growth."""

    def __enter__(self) -> PeakRss:
        self._process = psutil.Process()
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


def timed(label: str, result: ExportResult, action: Any) -> None:
    with PeakRss() as rss:
        started = time.perf_counter()
        receipt = action()
        elapsed = time.perf_counter() - started
    size_mb = result.manifest.file_bytes / 1e6
    print(
        f"| {label} | {size_mb:.1f} | {elapsed:.2f} | {size_mb / elapsed:.1f} | "
        f"{rss.growth_mb:.1f} | {len(receipt.files)} |"
    )


def ssh_key(directory: Path) -> str:
    directory.mkdir(mode=0o700)
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", key], check=True)
    return (directory / "id_ed25519.pub").read_text().strip()


def start_moto(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIABENCHMARK0000001",
        aws_secret_access_key="benchmark",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket="delivery-bench")
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="candles to export")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
    build_candles(root / "store.duckdb", args.rows)
    store = DuckDBStore(root / "store.duckdb", read_only=True)
    request = build_request(dataset="ohlcv", format="csv")
    result = run_export(request, store, output_dir=root / "out")
    store.close()

    public = ssh_key(root / "keys")
    sshd = SshServer(root / "sshd", public)
    (root / "keys" / "known_hosts").write_text(sshd.known_hosts_line())
    port = free_port()
    settings = delivery_settings(
        root, root / "keys", s3_endpoint=f"http://127.0.0.1:{port}", s3_allow_http_loopback=True
    )
    sshd.start()
    moto = start_moto(port)
    print("| destination | MB | seconds | MB/s | peak RSS growth MB | files |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    try:
        timed("local directory", result, lambda: deliver(result, str(root / "copy"), settings))
        env = {PASSPHRASE_VARIABLE: PASSPHRASE}
        url = sshd.url(root / "remote")
        timed("sftp (sshd)", result, lambda: deliver(result, url, settings, environ=env))
        s3 = "s3://delivery-bench/exports"
        timed("s3 (moto server)", result, lambda: deliver(result, s3, settings, environ=S3_ENV))
    finally:
        sshd.kill()
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
