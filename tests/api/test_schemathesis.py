"""Property-based tests over the served OpenAPI schema: no 5xx, no response off-schema."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Service  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(service: Service) -> object:
    return schemathesis.openapi.from_url(service.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_holds_its_schema(case: object, service: Service) -> None:
    case.call_and_validate(  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {service.tokens['alice']}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
        excluded_checks=[],
    )
