"""The OpenAPI document at /api/schema, and a schemathesis run of the API against it."""

from datetime import UTC, datetime

import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, settings

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
# JSON Schema cannot say "no NUL in any string, known key or not"; the document says it in
# words, and ingest refuses NUL (PostgreSQL cannot store it) with a 400 naming the field.
schema.config.generation.update(allow_x00=False)

EXAMPLE_MEMBER = "ada"


def _within_rules_beyond_json_schema(case) -> None:
    """Keep a schema-valid ``/ingest`` body within the two rules JSON Schema cannot state.

    Relative time: a ``timestamp``/``startedAt`` more than five minutes ahead of now is a
    400 (SPEC §4), so a generated future date-time is moved to a past one. Database state:
    an award's recipient must be an existing member, so it becomes the example member. Only
    positive cases are touched: a schema-invalid case stays exactly as generated.
    """
    if case.operation.path != "/ingest" or not case.meta.generation.mode.is_positive:
        return
    body = case.body
    events = body.get("events") if isinstance(body, dict) else None
    for event in events if isinstance(events, list) else [body]:
        if not isinstance(event, dict):
            continue
        properties = event.get("properties")
        for holder, key in ((event, "timestamp"), (properties, "startedAt")):
            if isinstance(holder, dict) and _is_future(holder.get(key)):
                holder[key] = "2026-01-02T03:04:05Z"
        if event.get("event") == "award" and isinstance(properties, dict):
            properties["username"] = EXAMPLE_MEMBER


def _is_future(value) -> bool:
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return (at if at.tzinfo else at.replace(tzinfo=UTC)) > datetime(2026, 1, 1, tzinfo=UTC)


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
    # Every check schemathesis has: every response matches the document (status, content
    # type, body, headers), no input produces a server error, what the schema allows is
    # accepted and what it forbids is refused, and an undeclared method is answered 405.
    _within_rules_beyond_json_schema(case)
    case.call_and_validate(headers={"x-api-key": ingest_key})


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
