"""A local destination on a read-only file system fails with a DeliveryError naming the
directory, not with the OSError of cleaning up (unlink says EROFS, not ENOENT, there)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from marketexport.delivery.base import DeliveryFile
from marketexport.delivery.local import LocalDestination
from marketexport.errors import DeliveryError


def _read_only(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.EROFS, "Read-only file system")


def test_copy_onto_a_read_only_file_system_names_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(b"x\n")
    target = LocalDestination(tmp_path / "inbox")
    monkeypatch.setattr(LocalDestination, "_copy", _read_only)
    monkeypatch.setattr(Path, "unlink", _read_only)

    with pytest.raises(DeliveryError) as caught:
        target.put(DeliveryFile("a.csv", source, 2, "0" * 64), None)

    assert str(caught.value) == (
        f"delivering a.csv to {tmp_path / 'inbox'} failed: Read-only file system"
    )
    assert caught.value.exit_code == 1 and not caught.value.retryable


def test_removing_from_a_read_only_file_system_is_a_delivery_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = LocalDestination(tmp_path)
    monkeypatch.setattr(Path, "unlink", _read_only)

    with pytest.raises(DeliveryError, match=r"removing SHA256SUMS.minisig from .* failed: Read"):
        target.remove("SHA256SUMS.minisig")
