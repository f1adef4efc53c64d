"""``serve`` refuses what it cannot start with before starting anything: a taken port is one
line and exit code 1, a certificate or key file TLS cannot use is one line and exit code 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketexport.cli import main

from .test_metrics_tls import _self_signed


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _serve(tmp_path: Path, *args: str) -> int:
    return main(["--data-dir", str(tmp_path / "data"), "serve", *args])


def test_a_taken_port_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    code = _serve(tmp_path, "--port", str(taken_port))

    assert code == 1
    assert capsys.readouterr().err == (
        f"ServiceError: cannot listen on 127.0.0.1:{taken_port}: Address already in use; "
        "another process is listening there: stop it or choose another --port\n"
    )
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("/etc/passwd", "/etc/passwd", "--tls-cert /etc/passwd holds no PEM certificate "
         "(expected a file with a '-----BEGIN CERTIFICATE-----' block)"),
        ("{cert}", "/etc/passwd", "--tls-key /etc/passwd holds no unencrypted PEM private key "
         "(expected a file with a '-----BEGIN PRIVATE KEY-----' block, or an RSA or EC one)"),
        ("{cert}", "{other_key}", "--tls-key {other_key} does not belong to the certificate "
         "in {cert} (expected the private key the certificate was made for)"),
        ("{key}", "{key}", "--tls-cert {key} holds no PEM certificate"),
    ],
    ids=["passwd", "key-not-a-key", "key-of-another-cert", "key-as-cert"],
)  # fmt: skip
def test_unusable_tls_file_is_named_with_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    taken_port: int,
    cert: str,
    key: str,
    message: str,
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    cert_path, key_path = _self_signed(tmp_path / "one")
    other_key = _self_signed(tmp_path / "two")[1]
    paths = {"cert": cert_path, "key": key_path, "other_key": other_key}

    code = _serve(tmp_path, "--port", str(taken_port),
                  "--tls-cert", cert.format(**paths), "--tls-key", key.format(**paths))  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ConfigError: " + message.format(**paths)) and err.count("\n") == 1
