"""Property-based fuzzing of ``POST /ingest`` with hostile bodies.

Whatever arrives — random JSON, wrong types, huge strings, deep nesting, NUL and lone
surrogates, missing fields, boundary numbers, bytes that are not JSON at all — the answer is
never a 5xx, a refused request stores nothing, an accepted one stores exactly what it says,
and every 400 names the offending field. Three kinds of body: mutations of valid events,
documents shaped like the envelope with any values in its fields (mostly plausible CLI
events, so they reach the INSERT), and raw bytes under either media type.
"""

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awards.models import Award
from scoring.apikeys import api_key_create
from scoring.models import MemberMetrics, TelemetryEvent
from tests.cli_wire import bot_award_event, cli_event
from tests.factories import UserFactory
from tests.scoring.test_ingest import cli_event as recorded_cli_event

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
ALLOWED = {202, 400, 403, 409, 413, 415}

# Every code point, including NUL and lone surrogates (hypothesis leaves surrogates out by
# default); json.dumps spells the unstorable ones as \u escapes, as a hostile client would.
hostile_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\U0001f438", "\u202e", "null", "🐸" * 3]
)
huge_text = st.integers(min_value=1_000, max_value=200_000).map(lambda n: "ü" * n)
boundary_numbers = st.sampled_from(
    [0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]
) | st.sampled_from([0.0, -0.0, 0.5, 1e308, -1e308, 5e-324, 1.7976931348623157e308])
scalars = (
    st.none()
    | st.booleans()
    | boundary_numbers
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int) -> Any:
    value: Any = "core"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


deep_values = st.integers(min_value=20, max_value=400).map(_nested)

FIELDS = ["event", "distinct_id", "insert_id", "timestamp", "properties"]
PROPERTY_PATHS = [
    ("invocation",),
    ("invocation", "command"),
    ("invocation", "args"),
    ("startedAt",),
    ("id",),
    ("result",),
    ("durationMs",),
]
AWARD_PATHS = [("username",), ("points",), ("reason",), ("category",), ("public",), ("awardId",)]


@st.composite
def mutated_events(draw, *, recipient: str) -> dict[str, Any]:
    """A valid event (CLI or award) with a few fields dropped, retyped or made hostile."""
    n = draw(st.integers(min_value=0, max_value=10**6))
    if draw(st.booleans()):
        event = cli_event(f"fuzz-{n}")
        paths = PROPERTY_PATHS
    else:
        event = bot_award_event(
            username=recipient, points=5, reason="fuzzed award", award_id=f"a{n}"
        )
        paths = AWARD_PATHS
    replacement = json_values | huge_text | deep_values
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if draw(st.booleans()):
            field = draw(st.sampled_from(FIELDS))
            if draw(st.booleans()):
                event.pop(field, None)
            else:
                event[field] = draw(replacement)
        elif isinstance(event.get("properties"), dict):
            *parents, leaf = draw(st.sampled_from(paths))
            target = event["properties"]
            for parent in parents:
                target = target.get(parent) if isinstance(target, dict) else None
            if isinstance(target, dict):
                if draw(st.booleans()):
                    target.pop(leaf, None)
                else:
                    target[leaf] = draw(replacement)
    if draw(st.booleans()):
        event[draw(hostile_text)] = draw(json_values)
    return event


def _bodies(recipient: str):
    events = mutated_events(recipient=recipient)
    documents = (
        json_values
        | deep_values
        | events
        | st.lists(events, min_size=0, max_size=5).map(lambda e: {"events": e})
        | st.builds(
            lambda e, extra: {"events": e, **extra},
            st.lists(events),
            json_values.filter(lambda v: isinstance(v, dict)),
        )
    )
    encoded = documents.map(lambda d: json.dumps(d).encode())
    raw = st.binary(max_size=200) | st.sampled_from(
        [
            b"",
            b"{",
            b'{"event": NaN}',
            b'{"event": Infinity}',
            b'{"a": 1e999}',
            b"\xff\xfe{}",
            b'{"event": "cli_invocation", "event": "award"}',
            b"[" * 100_000,
            b'"\\ud800"',
        ]
    )
    return encoded | raw


# Documents shaped like the envelope: its fields present or not, holding any value.
timestamps = (
    st.datetimes().map(lambda dt: dt.isoformat())
    | st.sampled_from(["2026-11-24T10:00:00Z", "2026-02-30T00:00:00Z", "", "Z", "9999-12-31"])
    | json_values
)
cli_properties = st.fixed_dictionaries(
    {},
    optional={
        "id": hostile_text | json_values,
        "invocation": st.fixed_dictionaries(
            {}, optional={"command": hostile_text | json_values, "args": json_values}
        )
        | json_values,
        "startedAt": timestamps,
        "username": hostile_text,
    },
)
award_properties = st.fixed_dictionaries(
    {},
    optional={
        "username": hostile_text | st.just("fuzz-recipient"),
        "points": json_values | st.integers(min_value=-5, max_value=10**6),
        "reason": hostile_text | json_values,
        "category": hostile_text,
        "public": json_values,
        "awardId": hostile_text | json_values,
    },
)
shaped_events = st.fixed_dictionaries(
    {"event": st.sampled_from(["cli_invocation", "award", "mystery", ""]) | json_values},
    optional={
        "distinct_id": hostile_text | json_values,
        "insert_id": hostile_text | json_values,
        "timestamp": timestamps,
        "properties": cli_properties | award_properties | json_values,
    },
)


def _plausible(insert_id, distinct_id, command, extras, timestamp):
    event = recorded_cli_event(0, insert_id=insert_id, distinct_id=distinct_id, timestamp=timestamp)
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
shaped_payloads = (
    shaped_events
    | plausible_events
    | st.fixed_dictionaries(
        {"events": st.lists(plausible_events | shaped_events, min_size=1, max_size=6) | json_values}
    )
    | json_values
)


def _encode(payload, ensure_ascii: bool) -> bytes:
    # Without ASCII escapes a lone surrogate becomes bytes that are not valid UTF-8.
    return json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def _counts() -> tuple[int, int, int]:
    return (
        TelemetryEvent.objects.count(),
        Award.objects.count(),
        MemberMetrics.objects.count(),
    )


@pytest.fixture
def fuzz_client(client):
    """A client with a key holding both scopes, and a member to receive awards."""
    owner = UserFactory(username="fuzz-bot", granter=True)
    UserFactory(username="fuzz-recipient")
    _, raw = api_key_create(owner=owner, scopes=["ingest", "award"], name="fuzz")
    client.defaults["HTTP_X_API_KEY"] = raw
    client.raise_request_exception = False
    return client


@pytest.fixture
def ingest_only_key():
    """The plaintext of a key without the ``award`` scope (award events are then 403)."""
    return api_key_create(owner=UserFactory(username="fuzz-cli"), scopes=["ingest"])[1]


def _check(client, body: bytes, *, content_type: str = "application/json", **headers) -> None:
    before = _counts()
    response = client.post("/ingest", data=body, content_type=content_type, **headers)
    status = response.status_code
    assert status in ALLOWED, (status, body[:300], response.content[:500])
    payload = response.json()
    after = _counts()
    if status == 202:
        assert after[0] == before[0] + payload["accepted"]
        assert after[1:] == before[1:], "ingest itself never grants or folds"
        return
    assert after == before, f"{status} but rows were written: {before} -> {after}"
    assert isinstance(payload.get("error"), str)
    if status == 400:
        assert payload["errors"], payload
        for error in payload["errors"]:
            # A path, never empty (an empty key is spelled [""]); a key that is only
            # spaces is named as it is.
            assert isinstance(error["field"], str)
            assert error["field"], payload
            assert error["message"], payload


@override_settings(INGEST_RATE_LIMIT=10**9)
@FUZZ
@given(data=st.data())
def test_hostile_bodies_never_5xx_never_half_stored(fuzz_client, data):
    body = data.draw(_bodies("fuzz-recipient"), label="body")
    _check(fuzz_client, body)


@override_settings(INGEST_RATE_LIMIT=10**9)
@settings(FUZZ, max_examples=250)
@given(payload=shaped_payloads, ensure_ascii=st.booleans(), award_scope=st.booleans())
def test_any_json_body_gets_a_deliberate_answer(
    fuzz_client, ingest_only_key, payload, ensure_ascii, award_scope
):
    # Both keys: with the award scope, and without it (award events are then refused).
    headers = {} if award_scope else {"HTTP_X_API_KEY": ingest_only_key}
    # Each example in a savepoint: a failure in one must not poison the next.
    with transaction.atomic():
        _check(fuzz_client, _encode(payload, ensure_ascii), **headers)


@override_settings(INGEST_RATE_LIMIT=10**9)
@settings(FUZZ, max_examples=100)
@given(body=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "x/y"]))
def test_any_bytes_get_a_deliberate_answer(fuzz_client, ingest_only_key, body, content_type):
    with transaction.atomic():
        _check(fuzz_client, body, content_type=content_type, HTTP_X_API_KEY=ingest_only_key)


@override_settings(INGEST_RATE_LIMIT=10**9)
@FUZZ
@given(
    batch=st.lists(mutated_events(recipient="fuzz-recipient"), min_size=2, max_size=6),
    position=st.integers(min_value=0, max_value=5),
)
def test_one_bad_event_refuses_the_whole_batch(fuzz_client, batch, position):
    # A batch of valid events with one hostile event somewhere: all-or-nothing.
    valid = [cli_event(f"ok-{position}-{i}") for i in range(len(batch))]
    valid.insert(position % (len(valid) + 1), batch[0])
    _check(fuzz_client, json.dumps({"events": valid}).encode())


@override_settings(INGEST_RATE_LIMIT=10**9)
@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("distinct_id", "a\x00b", "distinct_id"),
        ("insert_id", "\ud800", "insert_id"),
        ("event", "x" * 201, "event"),
        ("insert_id", "y" * 101, "insert_id"),
        ("timestamp", "yesterday", "timestamp"),
        ("properties", [], "properties"),
    ],
)
def test_each_bad_field_is_named(fuzz_client, field, value, named):
    event = cli_event("named-1")
    event[field] = value
    response = fuzz_client.post(
        "/ingest", data=json.dumps(event).encode(), content_type="application/json"
    )
    assert response.status_code == 400
    fields = [error["field"] for error in response.json()["errors"]]
    assert named in fields
    assert TelemetryEvent.objects.count() == 0


@override_settings(INGEST_RATE_LIMIT=10**9)
def test_nul_and_surrogates_deep_inside_properties_are_named(fuzz_client):
    event = cli_event("deep-text-1")
    event["properties"]["extra"] = {"notes": ["fine", "bad\x00"], "\ud83d": 1}
    response = fuzz_client.post(
        "/ingest", data=json.dumps(event).encode(), content_type="application/json"
    )
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert any(f.startswith("properties.extra.notes") for f in fields), fields
    assert any(f.startswith("properties.extra.") and "notes" not in f for f in fields), fields
    assert TelemetryEvent.objects.count() == 0
