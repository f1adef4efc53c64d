"""An export is whole or absent: something in the way of one of its final names (a directory
called SHA256SUMS, a manifest path that is a directory...) is found before anything is
written, and a failure after the file is in place removes what the export wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.datasets import OHLCV
from marketexport.errors import ConfigError, SinkError
from marketexport.export import pipeline
from marketexport.export.encryption import KeyRing
from marketexport.export.encryption.keys import KeyDirectory
from marketexport.export.pipeline import run_export
from marketexport.request import build_request
from marketexport.store.duckdb import DuckDBStore
from tests.helpers import table_of

NAME = "ohlcv_all_all_20231114T221320Z_20231114T221620Z.csv"
CANDLES = [
    {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "price_type": "trade",
     "time": (1_700_000_000_000 + i * 60_000) * 1_000_000, "open": "1", "high": "2",
     "low": "0.5", "close": "1.5", "volume": "3"}
    for i in range(4)
]  # fmt: skip
IN_THE_WAY = [
    NAME,
    f"{NAME}.manifest.json",
    "SHA256SUMS",
    f"{NAME}.manifest.json.minisig",
    "SHA256SUMS.minisig",
]


@pytest.fixture
def filled(store: DuckDBStore) -> DuckDBStore:
    store.insert([(OHLCV, table_of(OHLCV, CANDLES).to_batches())])
    return store


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    directory = KeyDirectory(tmp_path / "keys")
    directory.generate("signing", "release")
    return KeyRing(directory, {})


def _listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize("blocked", IN_THE_WAY)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_directory_under_a_final_name_is_refused_before_writing(
    filled: DuckDBStore, ring: KeyRing, tmp_path: Path, blocked: str, signed: bool
) -> None:
    out = tmp_path / "out"
    (out / blocked).mkdir(parents=True)
    request = build_request(dataset="ohlcv", format="csv", sign_key="release" if signed else None)

    with pytest.raises(ConfigError) as caught:
        run_export(request, filled, output_dir=out, keys=ring)

    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"{out / blocked} is a directory, where the export must write a file; move it away "
        "and export again (nothing was written)"
    )
    assert _listing(out) == [blocked]


def test_cli_says_it_in_one_line_with_exit_2(
    filled: DuckDBStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (out / "SHA256SUMS").mkdir(parents=True)
    store_path = str(filled.path)
    filled.close()

    code = main(["--store", store_path, "export", "ohlcv", "--format", "csv", "--output", str(out)])

    assert code == 2
    assert capsys.readouterr().err == (
        f"ConfigError: {out / 'SHA256SUMS'} is a directory, where the export must write a "
        "file; move it away and export again (nothing was written)\n"
    )
    assert _listing(out) == ["SHA256SUMS"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_after_the_file_is_in_place_removes_file_and_manifest(
    filled: DuckDBStore,
    ring: KeyRing,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    out = tmp_path / "out"
    request = build_request(dataset="ohlcv", format="csv", sign_key="release")

    def failing_sums(*args: object, **kwargs: object) -> Path:
        raise error

    monkeypatch.setattr(pipeline, "update_sums", failing_sums)

    with pytest.raises((SinkError, KeyboardInterrupt)) as caught:
        run_export(request, filled, output_dir=out, keys=ring)

    assert _listing(out) == []
    if isinstance(error, OSError):
        assert str(caught.value) == (
            f"finishing the export {out / NAME} failed ([Errno 28] No space left on device); "
            "file and manifest removed"
        )


def test_a_second_export_still_replaces_regular_files(filled: DuckDBStore, tmp_path: Path) -> None:
    request = build_request(dataset="ohlcv", format="csv")

    first = run_export(request, filled, output_dir=tmp_path / "out")
    second = run_export(request, filled, output_dir=tmp_path / "out")

    assert first.path == second.path
    assert _listing(tmp_path / "out") == sorted([NAME, f"{NAME}.manifest.json", "SHA256SUMS"])


@pytest.mark.parametrize("at", ["manifest", "sums"])
def test_an_interrupt_while_finishing_leaves_a_whole_export_over_an_earlier_one(
    filled: DuckDBStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    """Ctrl-C after the rename over an earlier export of the same name used to remove the
    new file and manifest: the earlier export was gone and SHA256SUMS named missing files.
    The last steps now finish first; the interrupt is delivered after them."""
    import signal

    from marketexport.export.verify import verify_export

    out = tmp_path / "out"
    request = build_request(dataset="ohlcv", format="csv")
    run_export(request, filled, output_dir=out)
    step = {"manifest": "write_manifest", "sums": "update_sums"}[at]
    real = getattr(pipeline, step)

    def interrupted(*args: object, **kwargs: object) -> object:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C lands in the middle of this step
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, step, interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_export(request, filled, output_dir=out)

    assert _listing(out) == sorted([NAME, f"{NAME}.manifest.json", "SHA256SUMS"])
    assert verify_export(out / NAME).ok
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_lines_of_other_checksum_tools_stay_in_sha256sums(
    filled: DuckDBStore, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.bin").write_bytes(b"b")
    (out / "c.txt").write_bytes(b"c")
    digest = "ab" * 32
    foreign = [
        f"{digest} *b.bin",  # sha256sum --binary
        f"SHA256 (c.txt) = {digest}",  # sha256sum --tag
        "# kept by hand",
        f"{digest} *{NAME}",  # names the export: replaced by its own line
    ]
    (out / "SHA256SUMS").write_text("\n".join(foreign) + "\n")

    run_export(build_request(dataset="ohlcv", format="csv"), filled, output_dir=out)

    lines = (out / "SHA256SUMS").read_text().splitlines()
    assert lines[:3] == foreign[:3]
    assert [line.split("  ")[1] for line in lines[3:]] == [NAME, f"{NAME}.manifest.json"]


def test_sha256sums_keeps_lines_in_other_encodings_and_replaces_a_dot_slash_name(
    filled: DuckDBStore, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"listed by another tool")
    latin1 = b"ab" * 32 + b"  caf\xe9.txt\n"  # its name in Latin-1, not UTF-8
    stale = ("0" * 64 + f"  ./{NAME}\n").encode()  # the export's own name, as ./NAME
    (out / "SHA256SUMS").write_bytes(latin1 + stale)

    run_export(build_request(dataset="ohlcv", format="csv"), filled, output_dir=out)

    lines = (out / "SHA256SUMS").read_bytes().splitlines(keepends=True)
    assert lines[0] == latin1
    assert [line.split(b"  ")[1] for line in lines[1:]] == [
        NAME.encode() + b"\n",
        f"{NAME}.manifest.json\n".encode(),
    ]
    assert b"0" * 64 not in b"".join(lines)
