"""Standard tools open what marketexport writes: `age --decrypt` reads the age profile, and
`minisign -V` checks signed manifests and SHA256SUMS. Also the reverse directions."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

from marketexport.errors import EncryptionError
from marketexport.export.encryption import DecryptionKeys, EncryptionSpec, KeyRing, open_encryptor
from marketexport.export.encryption.agekeys import X25519Identity
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.export.encryption.signing import SigningKey, read_public_key, verify_file
from marketexport.export.pipeline import run_export
from marketexport.export.verify import verify_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore

from .test_export_roundtrip import filled  # noqa: F401 - fixture
from .test_schemes import decrypt

AGE = shutil.which("age")
MINISIGN = shutil.which("minisign")
needs_age = pytest.mark.skipif(AGE is None, reason="age not installed (.ci/run installs it)")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="minisign not installed")


def _age_encrypt(ring: KeyRing, spec: EncryptionSpec, data: bytes) -> bytes:
    stage = open_encryptor(spec, ring, {})
    return stage.write(data) + stage.flush()


@needs_age
@pytest.mark.parametrize("size", [0, 1, 65_536, 65_537, 300_000])
def test_age_tool_decrypts_our_files(ring: KeyRing, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    sealed = tmp_path / "data.age"
    sealed.write_bytes(_age_encrypt(ring, EncryptionSpec("age", key="g"), data))
    identity = ring.directory.private_path("g", "age")

    done = subprocess.run(
        [str(AGE), "--decrypt", "-i", str(identity), str(sealed)], capture_output=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == data


@needs_age
def test_age_tool_refuses_a_changed_file(ring: KeyRing, tmp_path: Path) -> None:
    sealed = bytearray(_age_encrypt(ring, EncryptionSpec("age", key="g"), os.urandom(200_000)))
    sealed[-100] ^= 1
    path = tmp_path / "changed.age"
    path.write_bytes(bytes(sealed))
    identity = ring.directory.private_path("g", "age")

    done = subprocess.run([str(AGE), "-d", "-i", str(identity), str(path)], capture_output=True)

    assert done.returncode != 0


@needs_age
def test_we_decrypt_what_the_age_tool_writes(ring: KeyRing, tmp_path: Path) -> None:
    identity = X25519Identity.generate()
    identity_file = tmp_path / "id.txt"
    identity_file.write_text(identity.to_text() + "\n")
    identity_file.chmod(0o600)
    data = os.urandom(150_000)
    (tmp_path / "plain").write_bytes(data)

    subprocess.run(
        [str(AGE), "-r", str(identity.recipient), "-o", str(tmp_path / "x.age")]
        + [str(tmp_path / "plain")],
        check=True,
    )
    sealed = (tmp_path / "x.age").read_bytes()

    assert decrypt(ring, DecryptionKeys(identity=str(identity_file)), sealed, 4096) == data


def _run_with_tty_passphrase(args: list[str], passphrase: str) -> tuple[int, bytes]:
    """Run a command whose passphrase prompt reads the terminal; answer it through a pty."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the age process, with the pty as its terminal
        os.execv(args[0], args)
    output = b""
    answered = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"passphrase" in output.lower():
            os.write(fd, passphrase.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@needs_age
@pytest.mark.slow
def test_age_tool_decrypts_our_passphrase_files(key_dir: KeyDirectory, tmp_path: Path) -> None:
    ring = KeyRing(key_dir, {"AGE_PASS": "a passphrase for age"})
    data = os.urandom(70_000)
    sealed = tmp_path / "p.age"
    sealed.write_bytes(_age_encrypt(ring, EncryptionSpec("age", passphrase_env="AGE_PASS"), data))
    out = tmp_path / "p.out"

    code, _ = _run_with_tty_passphrase(
        [str(AGE), "-d", "-o", str(out), str(sealed)], "a passphrase for age"
    )

    assert code == 0
    assert out.read_bytes() == data
    with pytest.raises(EncryptionError, match="wrong identity or passphrase"):
        other = KeyRing(key_dir, {"AGE_PASS": "not the passphrase"})
        decrypt(other, DecryptionKeys(passphrase_env="AGE_PASS"), sealed.read_bytes(), 1000)


@needs_minisign
def test_minisign_verifies_a_signed_export(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    spec = EncryptionSpec("aes256", key="k")
    request = build_request(dataset="ohlcv", format="csv", encryption=spec, sign_key="s")
    public = ring.directory.public_path("s", "signing")
    assert public is not None

    result = run_export(request, filled, output_dir=tmp_path, keys=ring)
    sums = subprocess.run(
        [str(MINISIGN), "-Vm", str(result.sums_path), "-p", str(public)], capture_output=True
    )
    manifest = subprocess.run(
        [str(MINISIGN), "-Vm", str(result.manifest_path), "-p", str(public)], capture_output=True
    )

    assert sums.returncode == 0, sums.stderr
    assert manifest.returncode == 0, manifest.stderr
    assert result.manifest.signed_by == read_public_key(public).fingerprint
    report = verify_export(result.path, public_key=public)
    assert report.ok and "SHA256SUMS signature" in report.checked

    result.sums_path.write_text(result.sums_path.read_text().replace("0", "1", 1))
    changed = subprocess.run(
        [str(MINISIGN), "-Vm", str(result.sums_path), "-p", str(public)], capture_output=True
    )
    assert changed.returncode != 0
    assert not verify_export(result.path, public_key=public).ok


@needs_minisign
def test_signature_from_another_key_fails(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    request = build_request(dataset="ohlcv", format="csv", sign_key="s")
    other = SigningKey.generate().public
    other_path = tmp_path / "other.pub"
    other_path.write_text(other.to_text())

    result = run_export(request, filled, output_dir=tmp_path / "out", keys=ring)
    report = verify_export(result.path, public_key=other_path)
    tool = subprocess.run(
        [str(MINISIGN), "-Vm", str(result.sums_path), "-p", str(other_path)], capture_output=True
    )

    assert not report.ok and any("made by key" in p for p in report.problems)
    assert tool.returncode != 0


@needs_minisign
def test_minisign_tool_signs_with_our_secret_key(ring: KeyRing, tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("rows\n")
    secret = ring.directory.private_path("s", "signing")
    public = ring.directory.public_path("s", "signing")
    assert public is not None

    subprocess.run(
        [str(MINISIGN), "-S", "-s", str(secret), "-m", str(target)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )

    assert "file:file.txt" in verify_file(target, read_public_key(public))


def test_unsigned_export_removes_a_stale_sums_signature(
    filled: DuckDBStore,  # noqa: F811
    ring: KeyRing,
    tmp_path: Path,
) -> None:
    signed = build_request(dataset="ohlcv", format="csv", sign_key="s")
    plain = build_request(dataset="ohlcv", format="jsonl")

    run_export(signed, filled, output_dir=tmp_path, keys=ring)
    assert (tmp_path / "SHA256SUMS.minisig").exists()
    run_export(plain, filled, output_dir=tmp_path, keys=ring)

    assert not (tmp_path / "SHA256SUMS.minisig").exists()
