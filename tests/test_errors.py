"""The error classes: every one pickles, long values are cut, and a command run by hand is
told what to do about a transient fault instead of "will retry"."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from marketexport import errors
from marketexport.cli import main
from marketexport.errors import (
    BUSY_HINT,
    ExportError,
    KeyFileError,
    ServiceError,
    TransientStoreError,
    foreground_message,
)

ERRORS = [
    value
    for value in vars(errors).values()
    if isinstance(value, type) and issubclass(value, ExportError)
]


@pytest.mark.parametrize("kind", ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_pickles_with_its_message_and_values(kind: type[ExportError]) -> None:
    error = kind("it failed", path="/x", hint="do this")

    again = pickle.loads(pickle.dumps(error))

    assert type(again) is kind and str(again) == "it failed"
    assert again.path == "/x"  # type: ignore[attr-defined]


def test_new_errors_have_their_exit_codes() -> None:
    assert (KeyFileError("k").exit_code, ServiceError("s").exit_code) == (2, 1)


def test_retry_promise_becomes_the_hint_for_a_command_run_by_hand() -> None:
    busy = TransientStoreError("the store s.duckdb is busy; will retry", hint=BUSY_HINT)
    bare = TransientStoreError("connection dropped; will retry")

    assert foreground_message(busy) == f"the store s.duckdb is busy; {BUSY_HINT}"
    assert foreground_message(bare) == "connection dropped; run the command again once that " + (
        "has passed"
    )
    assert foreground_message(ExportError("plain")) == "plain"
    assert str(busy).endswith("; will retry")  # what a task runner records stays as it was


def test_cli_with_a_refused_postgres_says_what_to_do(
    real: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Port 1 on this machine refuses at once; nothing retries a command run by hand."""
    source = real / "trades" / "okx"

    code = main(["--data-dir", str(tmp_path), "--store", "postgresql://127.0.0.1:1/x",
                 "ingest", str(source)])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith('TransientStoreError: cannot connect to PostgreSQL database "x"')
    assert "will retry" not in err
    assert err.endswith(
        "; check that the PostgreSQL server is running and reachable at the URL's host and "
        "port, then run the command again\n"
    )
