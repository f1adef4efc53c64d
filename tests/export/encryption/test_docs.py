"""The recipient's Fernet snippet in docs/encryption.md works as printed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from marketexport.export.encryption import KeyRing

from .test_schemes import chunk_spans, encrypt

DOC = Path(__file__).resolve().parents[3] / "docs" / "encryption.md"


def _snippet() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- fernet-recipient -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the Fernet recipient snippet is missing from docs/encryption.md"
    return match.group(1)


def test_docs_fernet_snippet_decrypts(ring: KeyRing, tmp_path: Path) -> None:
    data = os.urandom(1_300_000)
    sealed = tmp_path / "export.csv.mxe"
    sealed.write_bytes(encrypt(ring, "fernet", data))
    keys = (ring.directory.path / "f.fernet").read_text().split()
    namespace: dict[str, object] = {}
    exec(compile(_snippet(), str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own code
    decrypt_fernet_export = namespace["decrypt_fernet_export"]

    decrypt_fernet_export(sealed, keys, tmp_path / "plain")  # type: ignore[operator]

    assert (tmp_path / "plain").read_bytes() == data


def test_docs_fernet_snippet_refuses_reordering(ring: KeyRing, tmp_path: Path) -> None:
    original = encrypt(ring, "fernet", os.urandom(1_300_000))
    spans = chunk_spans("fernet", original)
    swapped = original[: spans[0][0]] + original[slice(*spans[1])] + original[slice(*spans[0])]
    sealed = tmp_path / "swapped.mxe"
    sealed.write_bytes(swapped + original[spans[2][0] :])
    keys = (ring.directory.path / "f.fernet").read_text().split()
    namespace: dict[str, object] = {}
    exec(compile(_snippet(), str(DOC), "exec"), namespace)  # noqa: S102

    with pytest.raises(ValueError, match="reordered"):
        namespace["decrypt_fernet_export"](sealed, keys, tmp_path / "plain")  # type: ignore[operator]
