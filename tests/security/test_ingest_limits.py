"""Limits on ``POST /ingest``: per-key rate limit, body size, JSON depth, media type, auth."""

import json

import pytest
from django.conf import settings
from django.core.cache import cache

from scoring.apikeys import api_key_create, api_key_revoke
from scoring.ingest import MAX_DEPTH
from scoring.models import TelemetryEvent
from tests.cli_wire import bot_award_event, cli_event
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_rate_counters():
    # Counters live in the shared cache for a whole window; a rerun of the suite within that
    # window must not find the counters of the previous run under the same key id.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def key(db):
    """An ingest key's plaintext."""
    return api_key_create(owner=UserFactory(), scopes=["ingest"])[1]


def _post(client, body, *, key=None, content_type="application/json", **headers):
    if key is not None:
        headers["HTTP_X_API_KEY"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/ingest", data=data, content_type=content_type, **headers)


def test_over_the_rate_limit_is_429_with_retry_after_per_key(client, key, settings):
    settings.INGEST_RATE_LIMIT = 3
    other = api_key_create(owner=UserFactory(), scopes=["ingest"])[1]
    for n in range(3):
        assert _post(client, cli_event(f"rl-{n}"), key=key).status_code == 202
    response = _post(client, cli_event("rl-over"), key=key)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= settings.INGEST_RATE_WINDOW_S
    assert not TelemetryEvent.objects.filter(insert_id="rl-over").exists()
    # The limit is per key: another key of the same window is unaffected.
    assert _post(client, cli_event("rl-other"), key=other).status_code == 202


def test_body_over_the_size_limit_is_413_and_one_at_the_limit_is_accepted(client, key):
    limit = settings.INGEST_MAX_BYTES
    event = cli_event("size-ok")
    event["properties"]["notes"] = ""
    filler = limit - len(json.dumps(event).encode())
    event["properties"]["notes"] = "n" * filler
    at_limit = json.dumps(event).encode()
    assert len(at_limit) == limit
    assert _post(client, at_limit, key=key).status_code == 202

    event["insert_id"] = event["properties"]["id"] = "size-ov"  # same length as "size-ok"
    event["properties"]["notes"] += "n"
    over = json.dumps(event).encode()
    assert len(over) == limit + 1
    response = _post(client, over, key=key)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert not TelemetryEvent.objects.filter(insert_id="size-ov").exists()


def test_declared_length_over_the_limit_is_refused_before_reading(client, key):
    # A client announcing a huge body is answered from the header alone.
    response = _post(client, b"{}", key=key, CONTENT_LENGTH=str(settings.INGEST_MAX_BYTES * 50))
    assert response.status_code == 413


def _nested_properties(depth: int) -> dict:
    # The event object is level 1 and ``properties`` level 2, so ``depth`` counts from the
    # top of the body.
    value: dict = {"leaf": 1}
    for _ in range(depth - 3):
        value = {"n": value}
    event = cli_event(f"depth-{depth}")
    event["properties"]["nested"] = value
    return event


def test_json_nested_deeper_than_the_limit_is_400_naming_the_body(client, key):
    assert _post(client, _nested_properties(MAX_DEPTH), key=key).status_code == 202
    response = _post(client, _nested_properties(MAX_DEPTH + 1), key=key)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"
    assert not TelemetryEvent.objects.filter(insert_id=f"depth-{MAX_DEPTH + 1}").exists()
    # Far deeper than Python's recursion limit: still a clean 400, not a crash.
    response = _post(client, b"[" * 50_000 + b"]" * 50_000, key=key)
    assert response.status_code == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_other_media_types_are_415(client, key, content_type):
    response = _post(client, cli_event("media-1"), key=key, content_type=content_type)
    assert response.status_code == 415
    assert TelemetryEvent.objects.count() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_API_KEY": "swamp_" + "0" * 32},
        {"HTTP_X_API_KEY": "not-a-key"},
        {"HTTP_AUTHORIZATION": "Basic c3dhbXA6c3dhbXA="},
        {"HTTP_AUTHORIZATION": "Bearer"},
    ],
    ids=["missing", "unknown", "malformed", "basic-auth", "empty-bearer"],
)
def test_requests_without_a_valid_key_are_401(client, headers):
    response = _post(client, cli_event("auth-1"), **headers)
    assert response.status_code == 401
    assert TelemetryEvent.objects.count() == 0


def test_bearer_header_is_accepted_like_x_api_key(client, key):
    response = _post(client, cli_event("bearer-1"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202


def test_award_event_without_the_award_scope_is_403_and_stores_nothing(client, key):
    UserFactory(username="heron")
    batch = {
        "events": [
            cli_event("scope-1"),
            bot_award_event(username="heron", points=10, reason="Helped out", award_id="s-1"),
        ]
    }
    response = _post(client, batch, key=key)
    assert response.status_code == 403
    assert TelemetryEvent.objects.count() == 0


def test_revoked_key_is_refused_on_the_very_next_request(client):
    api_key, raw = api_key_create(owner=UserFactory(), scopes=["ingest"])
    assert _post(client, cli_event("rev-1"), key=raw).status_code == 202
    api_key_revoke(api_key=api_key)
    assert _post(client, cli_event("rev-2"), key=raw).status_code == 401
    assert list(TelemetryEvent.objects.values_list("insert_id", flat=True)) == ["rev-1"]
