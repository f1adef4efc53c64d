"""SFTP delivery against a real OpenSSH server on 127.0.0.1 (Debian's sshd)."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import pytest

from marketexport.delivery import DeliveryProgress, deliver
from marketexport.delivery.sshlogin import PASSPHRASE_VARIABLE
from marketexport.errors import DeliveryError
from marketexport.export.encryption import KeyRing
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.export.formats import FORMATS
from marketexport.export.verify import verify_export
from tests.delivery.conftest import (
    PASSPHRASE,
    Exports,
    KeyDir,
    SecretWatch,
    SshServer,
    delivery_settings,
)

ENV = {PASSPHRASE_VARIABLE: PASSPHRASE}


def sha256sum_check(directory: Path) -> list[str]:
    """Run coreutils' sha256sum -c in ``directory``; return the names it found OK."""
    done = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=directory, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return sorted(line.rsplit(": ", 1)[0] for line in done.stdout.splitlines())


def failure(watch: SecretWatch, *args: object, **kwargs: object) -> DeliveryError:
    """The DeliveryError that ``deliver`` raises, recorded (and pickled) for the watch."""
    with pytest.raises(DeliveryError) as caught:
        deliver(*args, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    watch.add(error, repr(error.attrs), pickle.dumps(error).decode("latin-1"))
    return error


@pytest.mark.slow
def test_every_format_arrives_verified(
    sshd: SshServer, key_dir: KeyDir, exports: Exports, watch: SecretWatch, tmp_path: Path
) -> None:
    """Each format's export, manifest and SHA256SUMS arrive; sha256sum -c accepts them."""
    settings = delivery_settings(tmp_path, key_dir.path)
    remote = tmp_path / "remote" / "drop"
    url = sshd.url(remote)
    results = [exports.run(fmt, rows=4_000, destination=url) for fmt in FORMATS]

    receipts = [
        deliver(r, r.manifest.request["destination"], settings, environ=ENV) for r in results
    ]

    expected = sorted(name for r in results for name in (r.path.name, r.manifest_path.name))
    assert sha256sum_check(remote) == expected
    assert sorted(p.name for p in remote.iterdir()) == sorted([*expected, "SHA256SUMS"])
    for result, receipt in zip(results, receipts, strict=True):
        watch.add(receipt.to_dict(), result.manifest.to_dict())
        assert (remote / result.path.name).read_bytes() == result.path.read_bytes()
        assert verify_export(remote / result.path.name).ok
        assert [f.name for f in receipt.files] == [
            result.path.name,
            result.manifest_path.name,
            "SHA256SUMS",
        ]
        assert receipt.destination == url


@pytest.mark.slow
def test_changed_or_unknown_host_key_is_refused(
    sshd: SshServer, key_dir: KeyDir, exports: Exports, watch: SecretWatch, tmp_path: Path
) -> None:
    settings = delivery_settings(tmp_path, key_dir.path)
    result = exports.run("csv", rows=100)
    remote = tmp_path / "remote"
    other = SshServer(tmp_path / "other-host", key_dir.public_line)
    known_hosts = key_dir.path / "known_hosts"

    known_hosts.write_text(sshd.known_hosts_line(other.host_public))
    changed = failure(watch, result, sshd.url(remote), settings, environ=ENV)
    known_hosts.write_text(other.known_hosts_line())
    unknown = failure(watch, result, sshd.url(remote), settings, environ=ENV)
    known_hosts.unlink()
    missing = failure(watch, result, sshd.url(remote), settings, environ=ENV)

    assert "CHANGED" in str(changed) and sshd.host_public.split()[0] in str(changed)
    assert "is not in known-hosts file" in str(unknown)
    assert "does not exist" in str(missing) and str(known_hosts) in str(missing)
    assert not any(error.retryable for error in (changed, unknown, missing))
    assert not remote.exists()


@pytest.mark.slow
def test_login_problems_are_named_and_not_retried(
    sshd: SshServer, key_dir: KeyDir, exports: Exports, watch: SecretWatch, tmp_path: Path
) -> None:
    settings = delivery_settings(tmp_path, key_dir.path)
    result = exports.run("csv", rows=100)
    url = sshd.url(tmp_path / "remote")

    locked = failure(watch, result, url, settings, environ={})
    wrong = failure(watch, result, url, settings, environ={PASSPHRASE_VARIABLE: "not-it"})
    (sshd.root / "authorized_keys").write_text("")
    refused = failure(watch, result, url, settings, environ=ENV)

    assert "is encrypted" in str(locked) and PASSPHRASE_VARIABLE in str(locked)
    assert "does not open it" in str(wrong)
    assert f"SSH login as '{sshd.user}'" in str(refused) and "was refused" in str(refused)
    assert not any(error.retryable for error in (locked, wrong, refused))


@pytest.mark.slow
def test_cut_connection_leaves_no_file_and_retry_resumes(
    sshd: SshServer, key_dir: KeyDir, big_export: object, watch: SecretWatch, tmp_path: Path
) -> None:
    """sshd is killed mid-upload: no file under the final name; the retry resumes."""
    result = big_export
    settings = delivery_settings(tmp_path, key_dir.path)
    remote = tmp_path / "remote"
    name = result.path.name  # type: ignore[attr-defined]
    cut_at = 6 << 20

    def cut(step: DeliveryProgress) -> None:
        if step.bytes_done >= cut_at and sshd.process is not None:
            sshd.kill()

    error = failure(watch, result, sshd.url(remote), settings, environ=ENV, progress=cut)
    temp = remote / f".{name}.part"
    left = temp.stat().st_size
    assert error.retryable and "will retry" in str(error)
    assert not (remote / name).exists() and not (remote / "SHA256SUMS").exists()
    assert 0 < left < result.manifest.file_bytes  # type: ignore[attr-defined]

    sshd.start()
    steps: list[DeliveryProgress] = []
    receipt = deliver(result, sshd.url(remote), settings, environ=ENV, progress=steps.append)  # type: ignore[arg-type]
    watch.add(receipt.to_dict())

    assert receipt.files[0].resumed_from == left
    assert steps[0].name == name and steps[0].bytes_done > left
    assert sorted(p.name for p in remote.iterdir()) == sorted(
        [name, f"{name}.manifest.json", "SHA256SUMS"]
    )
    assert sha256sum_check(remote) == sorted([name, f"{name}.manifest.json"])


@pytest.mark.slow
def test_temporary_file_that_is_not_a_prefix_is_replaced(
    sshd: SshServer, key_dir: KeyDir, exports: Exports, watch: SecretWatch, tmp_path: Path
) -> None:
    settings = delivery_settings(tmp_path, key_dir.path)
    result = exports.run("jsonl", rows=2_000)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / f".{result.path.name}.part").write_bytes(b"not the start of the export")

    receipt = deliver(result, sshd.url(remote), settings, environ=ENV)
    watch.add(receipt.to_dict())

    assert receipt.files[0].resumed_from == 0
    assert (remote / result.path.name).read_bytes() == result.path.read_bytes()
    assert not list(remote.glob(".*.part"))


@pytest.mark.slow
def test_signed_export_arrives_with_matching_signatures(
    sshd: SshServer, key_dir: KeyDir, exports: Exports, watch: SecretWatch, tmp_path: Path
) -> None:
    """The destination's merged SHA256SUMS is signed again with the export's key."""
    KeyDirectory(key_dir.path).generate("signing", "release")
    secret_file = key_dir.path / "release.minisign.key"
    watch.secrets.extend(line for line in secret_file.read_text().splitlines()[1:] if line)
    settings = delivery_settings(tmp_path, key_dir.path)
    keys = KeyRing.from_settings(settings, environ={})
    remote = tmp_path / "remote"
    earlier = exports.run("csv", rows=50)
    deliver(earlier, sshd.url(remote), settings, environ=ENV)
    result = exports.run("parquet", rows=500, sign_key="release", keys=keys)

    receipt = deliver(result, sshd.url(remote), settings, environ=ENV)
    watch.add(receipt.to_dict())

    report = verify_export(
        remote / result.path.name, public_key=key_dir.path / "release.minisign.pub"
    )
    assert report.ok, report.problems
    assert "SHA256SUMS signature" in report.checked
    assert sha256sum_check(remote) == sorted(
        n for r in (earlier, result) for n in (r.path.name, r.manifest_path.name)
    )
