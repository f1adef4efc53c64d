"""Delivery fixtures: exports to send, a real OpenSSH server, an S3-protocol server.

Every server here listens on 127.0.0.1 only, keeps all its files under the test's temporary
directory and is stopped by its own PID. The secrets the tests use (the SSH key's
passphrase, the S3 secret key, the private key itself) are watched: every log record the
tests capture, and every error and record they hand to ``watch``, is searched for them
when each test ends.
"""

from __future__ import annotations

import base64
import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization

from marketexport.config import Settings, load_settings
from marketexport.datasets import OHLCV
from marketexport.export.encryption import KeyRing
from marketexport.export.pipeline import ExportResult, run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore

PASSPHRASE = "pass-3f9c1d7e-delivery-test"
S3_KEY_ID = "AKIADELIVERYTEST0001"
S3_SECRET = "secret-8b2e7a55c0d94f1e-delivery-test"
S3_TOKEN = "token-51d0c4a9e7b23f68-delivery-test"
T0_NS = 1_700_000_000_000 * 1_000_000
SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ohlcv_table(rows: int) -> pa.Table:
    """Candles with exact decimal prices, built column by column (no per-row objects)."""
    index = list(range(rows))
    prices = pa.array([f"{1 + i % 99991}.{i % 997:03d}00001" for i in index])
    decimal = pa.decimal128(38, 18)
    columns = {
        "exchange": pa.array(["binance"] * rows),
        "symbol": pa.array(["BTC/USDT" if i % 2 else "ETH/USDT" for i in index]),
        "timeframe": pa.array(["1m"] * rows),
        "price_type": pa.array(["trade"] * rows),
        "time": pa.array([T0_NS + (i // 2) * 60_000_000_000 for i in index], pa.timestamp("ns")),
        "open": prices.cast(decimal),
        "high": prices.cast(decimal),
        "low": prices.cast(decimal),
        "close": prices.cast(decimal),
        "volume": pa.array(["0.5"] * rows).cast(decimal),
        "quote_volume": pa.nulls(rows, decimal),
        "trades": pa.array(index, pa.int64()),
        "taker_buy_volume": pa.nulls(rows, decimal),
        "taker_buy_quote_volume": pa.nulls(rows, decimal),
    }
    return pa.Table.from_pydict(columns, schema=OHLCV.store_schema)


@dataclass
class Exports:
    """A filled store, and a helper that runs exports from it into a directory."""

    store: DuckDBStore
    root: Path

    def run(
        self, fmt: str, *, rows: int | None = None, keys: KeyRing | None = None, **fields: Any
    ) -> ExportResult:
        end = None if rows is None else f"{(T0_NS + rows // 2 * 60_000_000_000)}ns"
        request = build_request(dataset="ohlcv", format=fmt, end=end, **fields)
        folder = self.root / f"{fmt}-{len(list(self.root.iterdir()))}"
        return run_export(request, self.store, output_dir=folder, keys=keys)


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exports]:
    """250,000 candles (a CSV export of all of them is about 20 MB)."""
    root = tmp_path_factory.mktemp("delivery-store")
    store = DuckDBStore(root / "store.duckdb")
    store.insert([(OHLCV, ohlcv_table(250_000).to_batches(max_chunksize=50_000))])
    out = root / "exports"
    out.mkdir()
    yield Exports(store, out)
    store.close()


@pytest.fixture(scope="session")
def big_export(exports: Exports) -> ExportResult:
    """One multi-megabyte export, for interrupted and resumed uploads."""
    result = exports.run("csv")
    assert result.manifest.file_bytes > 17 << 20, result.manifest.file_bytes
    return result


@dataclass
class KeyDir:
    """A key directory with the SSH client key (encrypted with PASSPHRASE)."""

    path: Path
    private_key: Path
    public_line: str

    def secret_texts(self) -> list[str]:
        """The private key as it may leak: file lines, raw bytes in hex and base64."""
        text = self.private_key.read_text()
        body = [line for line in text.splitlines() if line and not line.startswith("-----")]
        key = serialization.load_ssh_private_key(text.encode(), PASSPHRASE.encode())
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return [*body, raw.hex(), base64.b64encode(raw).decode().rstrip("=")]


@pytest.fixture
def key_dir(tmp_path: Path) -> KeyDir:
    path = tmp_path / "keys"
    path.mkdir(mode=0o700)
    private = path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "client", "-f", private],
        check=True,
    )
    public = (path / "id_ed25519.pub").read_text().strip()
    return KeyDir(path, private, public)


class SshServer:
    """Debian's sshd on 127.0.0.1 with its own host key, config and authorized keys."""

    def __init__(self, root: Path, authorized: str) -> None:
        self.root = root
        root.mkdir()
        self.port = free_port()
        host_key = root / "host_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", host_key],
            check=True,
        )
        self.host_public = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        (root / "authorized_keys").write_text(authorized + "\n")
        self.config = root / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
            "StrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n"
            "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
        )
        self.user = getpass.getuser()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        sshd = [str(SSHD), "-D", "-e", "-f", str(self.config)]
        if os.getuid() != 0 or Path("/run/sshd").is_dir():
            return sshd
        # sshd as root wants its privilege-separation directory /run/sshd: it gets one in a
        # private mount namespace, so nothing is created outside the test's directory.
        script = 'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *sshd]

    def start(self) -> None:
        log = open(self.root / "sshd.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "sshd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL this sshd and the session processes it forked, each by its own PID."""
        if self.process is None:
            return
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        for child in [*tree, psutil.Process(self.process.pid)]:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None

    def known_hosts_line(self, public: str | None = None) -> str:
        return f"[127.0.0.1]:{self.port} {public or self.host_public}\n"

    def url(self, path: Path) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"


@pytest.fixture
def sshd(tmp_path: Path, key_dir: KeyDir) -> Iterator[SshServer]:
    if not SSHD.exists() or shutil.which("unshare") is None:
        pytest.fail("openssh-server (/usr/sbin/sshd) and unshare are needed (.ci/run installs)")
    server = SshServer(tmp_path / "sshd", key_dir.public_line)
    (key_dir.path / "known_hosts").write_text(server.known_hosts_line())
    server.start()
    yield server
    server.kill()


def delivery_settings(tmp_path: Path, key_dir: Path, **more: Any) -> Settings:
    return load_settings({"data_dir": tmp_path / "data", "key_dir": key_dir, **more}, environ={})


@dataclass
class SecretWatch:
    """Texts the tests produced (errors, records); checked with the captured logs."""

    secrets: list[str]
    texts: list[str] = field(default_factory=list)

    def add(self, *items: Any) -> None:
        for item in items:
            self.texts.append(item if isinstance(item, str) else f"{item!s} {item!r}")

    def leaks(self, texts: list[str]) -> list[str]:
        return [secret for secret in self.secrets if any(secret in text for text in texts)]


@pytest.fixture
def watch(caplog: pytest.LogCaptureFixture, key_dir: KeyDir) -> Iterator[SecretWatch]:
    """Capture every log record at DEBUG; at the end no secret may appear anywhere."""
    caplog.set_level(logging.DEBUG)
    seen = SecretWatch([PASSPHRASE, S3_SECRET, S3_TOKEN, S3_KEY_ID, *key_dir.secret_texts()])
    yield seen
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]  # type: ignore[arg-type]
    logged = [formatter.format(record) for record in records]
    assert logged, "no log line was captured: the check would prove nothing"
    assert seen.leaks(logged + seen.texts) == []


class S3Server:
    """moto's S3-protocol server on 127.0.0.1, in this process (its state survives a stop)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            # The test's own client has other keys, so the watched ones are only deliver's.
            aws_access_key_id="AKIATESTINSPECTOR001",
            aws_secret_access_key="inspector-secret",
        )

    def download(self, bucket: str, prefix: str, into: Path) -> list[str]:
        """Every object under ``prefix/`` written to ``into``; returns the names."""
        client = self.client()
        into.mkdir(parents=True, exist_ok=True)
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("Contents", [])
        names = []
        for item in listed:
            name = item["Key"][len(prefix) + 1 :]
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            (into / name).write_bytes(body.read())
            names.append(name)
        client.close()
        return sorted(names)

    def open_uploads(self, bucket: str) -> list[dict[str, Any]]:
        client = self.client()
        uploads: list[dict[str, Any]] = client.list_multipart_uploads(Bucket=bucket).get(
            "Uploads", []
        )
        client.close()
        return uploads


S3_ENV = {
    "AWS_ACCESS_KEY_ID": S3_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    "AWS_SESSION_TOKEN": S3_TOKEN,
}


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    import uuid

    name = f"deliveries-{uuid.uuid4().hex[:12]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    client.close()
    return name
