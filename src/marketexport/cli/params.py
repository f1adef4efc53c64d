"""Parameter types that refuse empty text instead of taking it as a default.

``click.Path`` turns ``""`` into ``Path(".")``: ``--output ""`` would write into the current
directory and ``ingest ""`` would walk it. An option given as empty text is a mistake (a
variable that was not set), so it is a one-line exit-2 error naming the option; leaving the
option out still gives its default. Empty *environment* variables are read as unset by
``load_settings`` and are not judged here.
"""

from __future__ import annotations

from typing import Any

import click

from ..errors import ConfigError


def _refuse_empty(param: click.Parameter | None, expected: str) -> ConfigError:
    if isinstance(param, click.Option):
        name = max(param.opts, key=len)
        hint = "; leave the option out for its default"
    else:
        name = param.human_readable_name if param is not None else "value"
        hint = ""
    return ConfigError(f"empty {name} (expected {expected}{hint})", option=name)


class NonEmptyPath(click.Path):
    """A ``click.Path`` that refuses ``""``; ``expected`` says what the path should be."""

    def __init__(self, *, expected: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected = expected

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            raise _refuse_empty(param, self.expected)
        return super().convert(value, param, ctx)


class NonEmptyText(click.ParamType):
    """Text that must not be empty; ``expected`` says what it should be."""

    name = "text"

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip() == "":
            raise _refuse_empty(param, self.expected)
        return value
