"""The README and the example configuration stay true to the code."""

from __future__ import annotations

import tomllib

from marketexport.cli.schema_cmd import markdown_tables
from marketexport.config import load_settings
from tests.conftest import REPO


def test_readme_opens_with_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()

    assert text.index("```sh") < 40
    assert block == [
        "pip install -e . && marketexport demo",
        "pip install -e '.[test]' && python -m pytest --all",
    ]


def test_readme_documents_every_dataset_column() -> None:
    text = (REPO / "README.md").read_text()
    documented = text.split("<!-- datasets -->\n", 1)[1].split("\n<!-- /datasets -->", 1)[0]

    assert documented == markdown_tables()


def test_example_configuration_is_valid() -> None:
    path = REPO / "docs" / "marketexport.example.toml"
    data = tomllib.loads(path.read_text())

    settings = load_settings(config_file=path, environ={})

    assert data
    assert settings.concurrency >= 1
