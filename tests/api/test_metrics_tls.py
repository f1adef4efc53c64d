"""Metrics agree with the task store; the API speaks TLS 1.2+ and refuses TLS 1.1."""

from __future__ import annotations

import datetime
import os
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from marketexport.config import load_settings
from marketexport.tasks.stats import task_stats
from marketexport.tasks.store import TaskStore
from tests.api.conftest import Service, free_port, wait_for

pytestmark = pytest.mark.slow


def test_metrics_match_the_task_store(service: Service) -> None:
    with service.client("alice") as client:
        created = client.post("/v1/tasks", json={"dataset": "trades", "format": "jsonl"}).json()
        wait_for(client, created["id"], {"completed"})
        text = client.get("/metrics").text
    tasks = TaskStore.open(load_settings({"data_dir": service.data_dir}, environ={}))
    stats = task_stats(tasks)
    tasks.close()

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    for state, count in stats.by_state.items():
        assert samples[("marketexport_tasks", (("state", state),))] == count
    assert samples[("marketexport_rows_exported_total", ())] == stats.rows_exported
    assert samples[("marketexport_bytes_exported_total", ())] == stats.bytes_exported
    assert samples[("marketexport_queue_length", ())] == stats.by_state["pending"]
    completed_jsonl = samples[
        ("marketexport_export_duration_seconds_count", (("format", "jsonl"),))
    ]
    assert completed_jsonl >= 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def test_api_serves_tls_and_refuses_tls_1_1(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    log = (tmp_path / "serve.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketexport",
            "serve",
            "--port",
            str(port),
            "--no-runner",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        env={**os.environ, "MARKETEXPORT_DATA_DIR": str(tmp_path / "data")},
        stdout=log,
        stderr=log,
    )
    log.close()
    url = f"https://127.0.0.1:{port}"
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(url + "/healthz", verify=context, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        tls12 = ssl.create_default_context(cafile=str(cert))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        answer_12 = httpx.get(url + "/healthz", verify=tls12, timeout=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.load_verify_locations(str(cert))
            old.minimum_version = ssl.TLSVersion.TLSv1_1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with pytest.raises(httpx.HTTPError) as refused:
            httpx.get(url + "/healthz", verify=old, timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert answer is not None and answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer_12.status_code == 200
    # The server refused the handshake (an alert), not the client's own library.
    assert "no protocols available" not in str(refused.value)
