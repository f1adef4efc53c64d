"""build_request judges every entry point's input alike: repeated or empty columns, empty
bounds, codecs a format cannot take, and offending values too long to echo in full."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from marketexport.cli import main
from marketexport.errors import ConfigError, RequestError, shown_value
from marketexport.request import build_request
from tests.tasks.helpers import queued_tasks


def _refusal(**fields: object) -> str:
    with pytest.raises(ConfigError) as caught:  # RequestError, or ConfigError for a key name
        build_request(**{"dataset": "trades", "format": "csv", **fields})  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize("columns", ["price,price", "price, amount,price", ["open", "open"]])
def test_a_column_given_twice_is_refused_naming_it(columns: object) -> None:
    dataset = "ohlcv" if isinstance(columns, list) else "trades"

    message = _refusal(dataset=dataset, columns=columns)

    name = "open" if isinstance(columns, list) else "price"
    assert message == f"column {name!r} is given twice in columns (each column may appear once)"


@pytest.mark.parametrize(("columns", "shown"), [("", "''"), (",", "','"), (" , ", "' , '"),
                                                ([], "[]")])  # fmt: skip
def test_no_column_at_all_is_refused_not_taken_as_every_column(columns: object, shown: str) -> None:
    message = _refusal(columns=columns)

    assert message.startswith(f"no column in columns {shown} (expected one or more of: ")
    assert "price" in message and "leave columns out" in message


def test_chosen_columns_keep_their_order() -> None:
    request = build_request(dataset="trades", format="csv", columns="price, amount")

    assert request.columns == ("price", "amount")


@pytest.mark.parametrize("bound", ["start", "end"])
def test_an_empty_bound_is_refused_and_a_missing_one_is_open(bound: str) -> None:
    message = _refusal(**{bound: ""})

    assert message.startswith(f"invalid {bound} '' (expected a date (2024-01-31)")
    assert getattr(build_request(dataset="trades", format="csv"), f"{bound}_ns") is None


@pytest.mark.parametrize(
    ("field", "start"),
    [("sign_key", "invalid key name ''"), ("destination", "invalid destination ''")],
)
def test_empty_signing_key_or_destination_is_refused(field: str, start: str) -> None:
    assert _refusal(**{field: ""}).startswith(start)


@pytest.mark.parametrize("codec", ["gzip", "zlib", "snappy", "lz4", "zstd"])
def test_xlsx_takes_no_outer_compression(codec: str) -> None:
    message = _refusal(format="xlsx", compression=codec)

    assert message == (
        f"compression {codec!r} does not apply to xlsx: the workbook is a zip archive "
        "compressed inside (expected: none)"
    )


def test_every_other_format_takes_every_codec() -> None:
    for fmt in ("csv", "json", "jsonl", "parquet", "xml"):
        for codec in ("none", "gzip", "zlib", "snappy", "lz4", "zstd"):
            assert build_request(dataset="trades", format=fmt, compression=codec).compression


def test_a_huge_value_is_shown_cut_with_its_length() -> None:
    symbol = "A" * 1_000_000

    with pytest.raises(RequestError) as caught:
        build_request(dataset="trades", format="csv", symbols=[symbol])

    message = str(caught.value)
    assert message.startswith(f"invalid symbol {shown_value(symbol)} (expected BASE/QUOTE")
    assert "\u2026 (1000000 characters)" in message and len(message) < 300
    assert caught.value.symbol == symbol  # type: ignore[attr-defined]
    assert str(pickle.loads(pickle.dumps(caught.value))) == message


def test_shown_value_keeps_short_text_whole() -> None:
    assert shown_value("x" * 80) == repr("x" * 80)
    assert shown_value("a\nb") == "'a\\nb'"
    assert shown_value("y" * 81) == repr("y" * 80) + "\u2026 (81 characters)"


@pytest.mark.parametrize(
    "args",
    [
        ["tasks", "submit", "ohlcv", "--format", "xlsx", "--compression", "gzip"],
        ["schedule", "add", "daily", "--cron", "0 0 * * *", "--window", "previous-day",
         "--", "ohlcv", "--format", "xlsx", "--compression", "zstd"],
        ["tasks", "submit", "ohlcv", "--format", "parquet", "--columns", "open,open"],
        ["tasks", "submit", "ohlcv", "--format", "csv", "--start", ""],
    ],
    ids=["task-xlsx-gzip", "schedule-xlsx-zstd", "task-open-twice", "task-empty-start"],
)  # fmt: skip
def test_queued_requests_are_refused_when_submitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    data_dir = tmp_path / "data"

    code = main(["--data-dir", str(data_dir), *args])

    err = capsys.readouterr().err
    assert code == 2 and err.startswith("RequestError: ") and err.count("\n") == 1
    assert queued_tasks(data_dir) == 0


@pytest.mark.parametrize("columns", ["price,price", ",", ""])
def test_export_refuses_bad_columns_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], columns: str
) -> None:
    out = tmp_path / "out"

    code = main(["--data-dir", str(tmp_path / "data"), "export", "trades", "--format",
                 "parquet", "--columns", columns, "--output", str(out)])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2 and err.startswith("RequestError: ") and err.count("\n") == 1
    assert not out.exists()
