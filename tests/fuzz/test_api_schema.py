"""The OpenAPI document at /api/schema, and a schemathesis run of the API against it."""

import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from awards.services import award_grant
from scoring.apikeys import api_key_create
from swampclub.wsgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingest_key(transactional_db, settings):
    """A key with both scopes, so /ingest requests get past authentication."""
    # Hundreds of requests in a few seconds: past the rate limit they would all be 429s.
    settings.INGEST_RATE_LIMIT = 10**9
    owner = UserFactory(username="schema-bot", granter=True)
    # The document's example member, with a score and an award, so the example requests
    # get full 200 answers to check against the schema.
    ada = UserFactory(username="ada")
    award_grant(
        recipient=ada,
        points=1200,
        reason="Wrote the getting-started guide",
        idempotency_key="schema-award",
        granted_by=owner,
        source="api",
    )
    _, raw = api_key_create(owner=owner, scopes=["ingest", "award"], name="schemathesis")
    return raw


# Loaded from the running application (no database needed to serve it), so the test checks
# the document clients actually get.
schema = schemathesis.openapi.from_wsgi("/api/schema", application)


# The run goes through the real WSGI handler, which closes a connection left inside an
# atomic block at the end of each request; so this test commits for real (transactional).
@schema.parametrize()
@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, ingest_key):
    # Every response must match the document (status, content type, body, headers), and
    # no input may produce a server error. Left out, on purpose:
    # - whether the server accepts exactly the bodies the schema allows: some rules are
    #   beyond JSON Schema (the award recipient must exist, nobody grants to themselves,
    #   ISO-8601 is broader than RFC 3339 "date-time"), so either direction would flag
    #   correct answers; tests/fuzz/test_ingest_fuzz.py checks what is refused and why;
    # - 405 for methods the document does not list: Django's CSRF protection answers an
    #   unsafe method without a token with 403 before the view can say 405.
    case.call_and_validate(
        headers={"x-api-key": ingest_key},
        excluded_checks=[negative_data_rejection, positive_data_acceptance, unsupported_method],
    )


def _json_routes(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _json_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and (route.startswith("api/") or route == "ingest"):
            yield route


def test_every_json_route_is_documented(client):
    document = client.get("/api/schema").json()
    documented = {path.lstrip("/") for path in document["paths"]}
    for route in _json_routes(get_resolver().url_patterns):
        # Django's "<str:username>" is OpenAPI's "{username}".
        openapi_route = route.replace("<str:", "{").replace("<", "{").replace(">", "}")
        assert openapi_route in documented, f"/{route} is missing from /api/schema"
