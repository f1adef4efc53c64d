"""Destination URLs, the HTTPS rule for S3 endpoints, settings, and the request field."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from marketexport.config import load_settings
from marketexport.delivery import parse_destination
from marketexport.delivery.s3 import MAX_PARTS, PART_BYTES, plan_parts
from marketexport.delivery.s3login import check_endpoint
from marketexport.errors import ConfigError, DeliveryError, ExportError, RequestError
from marketexport.request import ExportRequest, build_request
from tests.delivery.conftest import SecretWatch


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("sftp://bob@Files.Example.org/drop/", "sftp://bob@files.example.org/drop"),
        ("sftp://bob@127.0.0.1:2222/srv/in", "sftp://bob@127.0.0.1:2222/srv/in"),
        ("sftp://bob@[::1]:2200/~/in", "sftp://bob@[::1]:2200/~/in"),
        ("sftp://bob@host:22/x", "sftp://bob@host/x"),
        ("s3://lake-raw/market/ohlcv/", "s3://lake-raw/market/ohlcv"),
        ("s3://lake-raw", "s3://lake-raw"),
        ("file:///srv/exports", "/srv/exports"),
        ("/srv/exports/", "/srv/exports"),
    ],
)
def test_destination_forms_are_parsed_to_one_written_form(text: str, url: str) -> None:
    assert parse_destination(text).url == url


def test_relative_directory_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert parse_destination("out/daily").url == str(tmp_path / "out" / "daily")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ftp://bob@host/x", "unsupported scheme 'ftp'"),
        ("http://host/x", "unsupported scheme 'http'"),
        ("sftp://host/x", "needs a login name"),
        ("sftp://bob@host:99999/x", "port"),
        ("sftp://bob@host/a/../b", "'..'"),
        ("s3://ab/x", "not a valid bucket name"),
        ("s3://Upper/x", "not a valid bucket name"),
        ("s3://bucket/a//b", "empty, '.' or '..'"),
        ("s3://bucket/a/../b", "empty, '.' or '..'"),
        ("file://otherhost/x", "local directory only"),
        ("", "empty"),
    ],
)
def test_bad_destinations_are_refused_with_the_forms(text: str, says: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_destination(text)

    assert says in str(caught.value)
    assert "sftp://user@host[:port]/path" in str(caught.value) or "password" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "sftp://bob:hunter2-secret@host/x",
        "sftp://bob:hunter2-secret@host:2222/x",
        "s3://AKIA:hunter2-secret@bucket/x",
        "sftp://bob@host/x?password=hunter2-secret",
        "s3://bucket/x#hunter2-secret",
    ],
)
def test_urls_with_secrets_are_refused_without_repeating_them(text: str) -> None:
    with pytest.raises(RequestError) as caught:
        build_request(dataset="ohlcv", format="csv", destination=text)

    error = caught.value
    assert "hunter2-secret" not in f"{error} {error!r} {error.attrs}"
    assert "hunter2-secret" not in pickle.dumps(error).decode("latin-1")
    assert error.exit_code == 2


def test_request_keeps_its_destination_through_a_round_trip() -> None:
    request = build_request(dataset="trades", format="jsonl", destination="s3://lake/t/")

    again = ExportRequest.from_dict(request.to_dict())

    assert request.to_dict()["destination"] == "s3://lake/t"
    assert again == request
    assert build_request(dataset="trades", format="jsonl").destination is None


@pytest.mark.parametrize(
    ("endpoint", "allow", "accepted"),
    [
        (None, False, True),
        ("https://objects.example.net", False, True),
        ("https://127.0.0.1:9000", False, True),
        ("http://127.0.0.1:9000", True, True),
        ("http://127.0.0.2:9000", True, True),
        ("http://localhost:9000", True, True),
        ("http://[::1]:9000", True, True),
        ("http://127.0.0.1:9000", False, False),
        ("http://10.1.2.3:9000", True, False),
        ("http://objects.example.net", True, False),
        ("ftp://127.0.0.1", True, False),
        ("https://key:hunter2-secret@objects.example.net", False, False),
    ],
)
def test_s3_endpoint_is_https_unless_loopback_http_is_allowed(
    endpoint: str | None, allow: bool, accepted: bool
) -> None:
    if accepted:
        assert check_endpoint(endpoint, allow) == endpoint
        return
    with pytest.raises(ConfigError) as caught:
        check_endpoint(endpoint, allow)
    assert "hunter2-secret" not in str(caught.value)


def test_delivery_settings_come_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "marketexport.toml"
    config.write_text('s3_endpoint = "https://objects.example.net"\ns3_region = "eu-west-1"\n')

    settings = load_settings(
        {"data_dir": tmp_path},
        environ={
            "MARKETEXPORT_S3_ALLOW_HTTP_LOOPBACK": "yes",
            "MARKETEXPORT_SFTP_KNOWN_HOSTS": str(tmp_path / "kh"),
        },
    )

    assert settings.s3_endpoint == "https://objects.example.net"
    assert settings.s3_region == "eu-west-1"
    assert settings.s3_allow_http_loopback is True
    assert settings.sftp_known_hosts == tmp_path / "kh"
    with pytest.raises(ConfigError, match="expected true or false"):
        load_settings({"s3_allow_http_loopback": "maybe"}, environ={})


def test_parts_cover_the_file_and_stay_within_the_part_limit() -> None:
    for size in (0, 1, PART_BYTES, PART_BYTES + 1, 3 * PART_BYTES - 5, 200 * PART_BYTES * 100):
        parts = plan_parts(size)

        assert sum(p.length for p in parts) == size
        assert [p.number for p in parts] == list(range(1, len(parts) + 1))
        assert len(parts) <= MAX_PARTS
        assert all(p.offset == sum(q.length for q in parts[: p.number - 1]) for p in parts[:50])


def test_delivery_error_is_an_export_error_that_pickles_with_its_retry_flag() -> None:
    error = DeliveryError("lost", retryable=True, destination="s3://lake/x")

    again = pickle.loads(pickle.dumps(error))

    assert isinstance(again, ExportError) and again.retryable and again.destination == "s3://lake/x"
    assert DeliveryError("refused").retryable is False


def test_secret_watch_finds_a_planted_secret() -> None:
    """The leak check used by every delivery test can fail."""
    watch = SecretWatch(["s3cr3t", "other"])

    assert watch.leaks(["a line with s3cr3t inside", "nothing"]) == ["s3cr3t"]
    assert watch.leaks(["clean"]) == []
