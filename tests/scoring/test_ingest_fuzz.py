"""Property tests: no body, however odd, makes ``POST /ingest`` answer 5xx or store half."""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scoring.apikeys import api_key_create
from scoring.models import TelemetryEvent
from tests.factories import granter_make
from tests.scoring.test_ingest import cli_event

pytestmark = pytest.mark.django_db

# Every character, including NUL and the lone surrogates PostgreSQL cannot store.
any_text = st.text(st.characters(exclude_categories=()), max_size=24)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
timestamps = (
    st.datetimes().map(lambda dt: dt.isoformat())
    | st.sampled_from(["2026-11-24T10:00:00Z", "2026-02-30T00:00:00Z", "", "Z", "9999-12-31"])
    | json_values
)
cli_properties = st.fixed_dictionaries(
    {},
    optional={
        "id": any_text | json_values,
        "invocation": st.fixed_dictionaries(
            {}, optional={"command": any_text | json_values, "args": json_values}
        )
        | json_values,
        "startedAt": timestamps,
        "username": any_text,
    },
)
award_properties = st.fixed_dictionaries(
    {},
    optional={
        "username": any_text | st.just("operative0"),
        "points": json_values | st.integers(min_value=-5, max_value=10**6),
        "reason": any_text | json_values,
        "category": any_text,
        "public": json_values,
        "awardId": any_text | json_values,
    },
)
events = st.fixed_dictionaries(
    {"event": st.sampled_from(["cli_invocation", "award", "mystery", ""]) | json_values},
    optional={
        "distinct_id": any_text | json_values,
        "insert_id": any_text | json_values,
        "timestamp": timestamps,
        "properties": cli_properties | award_properties | json_values,
    },
)


def _plausible(insert_id, distinct_id, command, extras, timestamp):
    event = cli_event(0, insert_id=insert_id, distinct_id=distinct_id, timestamp=timestamp)
    event["properties"]["invocation"]["command"] = command
    event["properties"].update(extras)
    return event


# Mostly valid cli_invocation events with odd but legal values: these reach the INSERT.
plausible_events = st.builds(
    _plausible,
    insert_id=st.text(min_size=1, max_size=100),
    distinct_id=st.text(min_size=1, max_size=200),
    command=st.text(min_size=1, max_size=100),
    extras=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
    timestamp=st.datetimes(timezones=st.timezones()).map(lambda dt: dt.isoformat()),
)
payloads = (
    events
    | plausible_events
    | st.fixed_dictionaries(
        {"events": st.lists(plausible_events | events, min_size=1, max_size=6) | json_values}
    )
    | json_values
)


def _encode(payload, ensure_ascii: bool) -> bytes:
    # Without ASCII escapes a lone surrogate becomes bytes that are not valid UTF-8.
    return json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@pytest.fixture
def keys(member, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.INGEST_RATE_LIMIT = 10**9  # the fuzzer sends far more than a real client
    return [
        api_key_create(owner=member, scopes=["ingest"])[1],
        api_key_create(owner=granter_make(member), scopes=["ingest", "award"])[1],
    ]


def _check(response, stored_before: int) -> None:
    assert response.status_code < 500, response.content
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    body = response.json()
    stored_after = TelemetryEvent.objects.count()
    if response.status_code == 202:
        assert stored_after == stored_before + body["accepted"]
    else:
        assert stored_after == stored_before  # refused means nothing stored
        assert isinstance(body["error"], str)
    if response.status_code == 400 and body["error"] == "invalid_events":
        for error in body["errors"]:
            assert isinstance(error["field"], str)
            assert error["message"]


@hypothesis_settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=payloads, ensure_ascii=st.booleans(), award_scope=st.booleans())
def test_any_json_body_gets_a_deliberate_answer(client, keys, payload, ensure_ascii, award_scope):
    stored_before = TelemetryEvent.objects.count()
    # Each example in a savepoint: a failure in one must not poison the next.
    with transaction.atomic():
        response = client.post(
            "/ingest",
            data=_encode(payload, ensure_ascii),
            content_type="application/json",
            headers={"x-api-key": keys[award_scope]},
        )
        _check(response, stored_before)


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "x/y"]))
def test_any_bytes_get_a_deliberate_answer(client, keys, body, content_type):
    stored_before = TelemetryEvent.objects.count()
    with transaction.atomic():
        response = client.post(
            "/ingest", data=body, content_type=content_type, headers={"x-api-key": keys[0]}
        )
        _check(response, stored_before)
