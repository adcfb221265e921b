"""``POST /ingest`` (SPEC §4): every answer the endpoint gives, and what it stores."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from scoring import ratelimit, registry
from scoring.apikeys import api_key_create, api_key_revoke
from scoring.ingest import IngestRejected, IngestResult, events_ingest
from scoring.models import TelemetryEvent
from scoring.registry import EventType, FieldError, HandleResult
from tests.cli_wire import cli_entry
from tests.factories import UserFactory, granter_make

pytestmark = pytest.mark.django_db

URL = "/ingest"
NUL = "\x00"


def cli_event(n: int = 0, **overrides):
    """A ``cli_invocation`` event as the swamp CLI sends it (``tests.cli_wire``), with a
    ``timestamp`` and an extra property, ``ci``, as a newer CLI might add."""
    event = cli_entry(
        command="Model",
        subcommand="run",
        args=["fit.yaml"],
        option_keys=["--verbose"],
        global_options=["--json"],
        started_at=datetime(2026, 11, 24, 10, 14, 58, tzinfo=UTC),
        duration_ms=2100,
        entry_id=f"inv-{n:06d}",
        distinct_id="device-7f3a",
        repo_id=None,
        ci=True,
    )
    del event["insert_id"]  # the default: properties.id
    event["timestamp"] = "2026-11-24T10:15:00.250Z"
    event.update(overrides)
    return event


def post(client, body, key: str | None, **kwargs):
    """POST ``body`` (JSON-encoded unless bytes/str) to /ingest with the ``x-api-key``."""
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers.setdefault("x-api-key", key)
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    content_type = kwargs.pop("content_type", "application/json")
    return client.post(URL, data=body, content_type=content_type, headers=headers, **kwargs)


def errors_of(response):
    """The ``(index, field)`` pairs of a 400 answer."""
    assert response.status_code == 400, response.content
    return {(error["index"], error["field"]) for error in response.json()["errors"]}


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Members are created per test; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def raw_key(ingest_key):
    return ingest_key[1]


@pytest.fixture
def award_key(member):
    return api_key_create(owner=granter_make(member), scopes=["ingest", "award"], name="bot")[1]


@pytest.fixture
def scoped_type(monkeypatch):
    """A throwaway event type needing the ``award`` scope; the registry is restored after."""
    calls = []

    def validate(event, api_key):
        calls.append(event)
        if event["properties"].get("points") == "many":
            return [FieldError("properties.points", "must be an integer")]
        return []

    def conflict(events, api_key):
        return "points changed" if any(e["properties"].get("clash") for e in events) else None

    event_type = EventType(
        name="test_grant",
        scope="award",
        handle=lambda events: HandleResult(),
        validate=validate,
        conflict=conflict,
        default_insert_id=lambda event, api_key: f"grant-{event['properties'].get('ref')}",
    )
    monkeypatch.setitem(registry._registry, "test_grant", event_type)
    return calls


# --- 202 ------------------------------------------------------------------------------------


def test_single_event_is_stored_for_the_key_owner(client, ingest_key):
    api_key, raw = ingest_key
    before = timezone.now()

    response = post(client, cli_event(), raw)

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    stored = TelemetryEvent.objects.get()
    assert stored.insert_id == "inv-000000"  # defaulted from properties.id
    assert stored.event == "cli_invocation"
    assert stored.distinct_id == "device-7f3a"
    assert stored.member == api_key.owner
    assert stored.api_key == api_key
    assert stored.status == TelemetryEvent.Status.PENDING
    assert stored.error == ""
    assert stored.timestamp == datetime(2026, 11, 24, 10, 15, 0, 250000, tzinfo=UTC)
    assert stored.received_at >= before
    assert stored.properties == cli_event()["properties"]  # extras such as "ci" are kept


def test_batch_is_stored_in_request_order(client, raw_key):
    events = [cli_event(n) for n in range(3)]

    response = post(client, {"events": events}, raw_key)

    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert list(TelemetryEvent.objects.order_by("id").values_list("insert_id", flat=True)) == [
        "inv-000000",
        "inv-000001",
        "inv-000002",
    ]


def test_bearer_authorization_is_accepted(client, raw_key):
    response = post(client, cli_event(), None, headers={"Authorization": f"Bearer {raw_key}"})

    assert response.status_code == 202
    assert TelemetryEvent.objects.count() == 1


def test_charset_parameter_is_accepted(client, raw_key):
    response = post(client, cli_event(), raw_key, content_type="application/json; charset=UTF-8")

    assert response.status_code == 202


def test_resent_batch_counts_as_duplicates(client, raw_key):
    batch = {"events": [cli_event(n) for n in range(4)]}
    assert post(client, batch, raw_key).json() == {"accepted": 4, "duplicates": 0}

    batch["events"].append(cli_event(9))
    response = post(client, batch, raw_key)

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 4}
    assert TelemetryEvent.objects.count() == 5


def test_repeated_insert_id_within_a_request_is_stored_once(client, raw_key):
    first = cli_event(1)
    again = cli_event(1, distinct_id="other-device")

    response = post(client, {"events": [first, again, cli_event(2)]}, raw_key)

    assert response.json() == {"accepted": 2, "duplicates": 1}
    # The first occurrence wins.
    assert TelemetryEvent.objects.get(insert_id="inv-000001").distinct_id == "device-7f3a"


def test_explicit_insert_id_wins_over_properties_id(client, raw_key):
    post(client, cli_event(insert_id="explicit-1"), raw_key)

    assert TelemetryEvent.objects.get().insert_id == "explicit-1"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-11-24T10:15:00Z", datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),
        ("2026-11-24T12:15:00+02:00", datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),
        ("2026-11-24T10:15:00", datetime(2026, 11, 24, 10, 15, tzinfo=UTC)),  # naive = UTC
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
    ],
)
def test_timestamp_is_stored_in_utc(client, raw_key, sent, stored):
    post(client, cli_event(timestamp=sent), raw_key)

    assert TelemetryEvent.objects.get().timestamp == stored


def test_missing_timestamp_defaults_to_the_time_received(client, raw_key):
    # An event type with no time of its own (a cli_invocation has startedAt: below).
    event = {"event": "new_cli_event", "distinct_id": "d", "insert_id": "n-1", "properties": {}}

    post(client, event, raw_key)

    stored = TelemetryEvent.objects.get()
    assert stored.timestamp == stored.received_at
    assert timezone.now() - stored.timestamp < timedelta(minutes=5)


def test_missing_timestamp_of_a_cli_invocation_is_its_started_at(client, raw_key):
    # The event's own time: a resend carries the same startedAt, lands in the same
    # partition and is a duplicate there.
    event = cli_event()
    del event["timestamp"]

    assert post(client, event, raw_key).json() == {"accepted": 1, "duplicates": 0}
    assert post(client, event, raw_key).json() == {"accepted": 0, "duplicates": 1}

    stored = TelemetryEvent.objects.get()
    assert stored.timestamp == datetime.fromisoformat(event["properties"]["startedAt"])


def test_resent_event_without_any_time_of_its_own_is_a_duplicate(client, raw_key):
    event = {"event": "new_cli_event", "distinct_id": "d", "insert_id": "n-2", "properties": {}}

    assert post(client, event, raw_key).json() == {"accepted": 1, "duplicates": 0}
    assert post(client, event, raw_key).json() == {"accepted": 0, "duplicates": 1}
    assert TelemetryEvent.objects.count() == 1


def test_spoofed_username_and_distinct_id_never_change_the_member(client, ingest_key):
    api_key, raw = ingest_key
    victim = UserFactory(username="victim")
    event = cli_event(distinct_id="victim")
    event["properties"]["username"] = "victim"
    event["username"] = "victim"

    assert post(client, event, raw).status_code == 202

    stored = TelemetryEvent.objects.get()
    assert stored.member == api_key.owner
    assert stored.member != victim
    assert not victim.telemetry_events.exists()


def test_unregistered_event_type_is_stored_for_the_consumer_to_judge(client, raw_key):
    event = {
        "event": "mystery",
        "distinct_id": "d",
        "insert_id": "m-1",
        "properties": {"anything": [1, {"x": None}]},
    }

    response = post(client, event, raw_key)

    assert response.status_code == 202
    assert TelemetryEvent.objects.get().properties == {"anything": [1, {"x": None}]}


def test_escaped_backslash_before_u0000_is_ordinary_text(client, raw_key):
    # The raw body holds the six characters \u0000 after an escaped backslash: no NUL.
    event = cli_event()
    event["properties"]["path"] = "C:\\u0000dir"

    response = post(client, event, raw_key)

    assert response.status_code == 202
    assert TelemetryEvent.objects.get().properties["path"] == "C:\\u0000dir"


def test_zeros_and_ordinary_floats_are_kept(client, raw_key):
    event = cli_event()
    event["properties"].update(zero=0.0, negative_zero=-0.0, tiny=5e-324, big=1.5e308)

    response = post(client, json.dumps(event).replace("0.0,", "0e7,", 1), raw_key)

    assert response.status_code == 202
    properties = TelemetryEvent.objects.get().properties
    assert properties["zero"] == 0
    assert properties["tiny"] == 5e-324
    assert float(properties["big"]) == 1.5e308  # jsonb may print it as an integer


def test_service_accepts_a_decoded_payload(ingest_key):
    api_key, _ = ingest_key
    batch = {"events": [cli_event(1), cli_event(2), cli_event(1)]}

    result = events_ingest(api_key=api_key, payload=batch)

    assert result == IngestResult(accepted=2, duplicates=1)
    stored = TelemetryEvent.objects.get(insert_id="inv-000002")
    assert stored.properties == cli_event(2)["properties"]
    assert stored.event == "cli_invocation"
    assert stored.distinct_id == "device-7f3a"
    assert stored.member == api_key.owner


def test_service_scans_a_decoded_payload_for_unstorable_text(ingest_key):
    event = cli_event()
    event["properties"]["note"] = f"nul{NUL}"

    with pytest.raises(IngestRejected) as rejected:
        events_ingest(api_key=ingest_key[0], payload={"events": [event], "meta": NUL})

    assert rejected.value.status == 400
    assert {(e["index"], e["field"]) for e in rejected.value.body["errors"]} == {
        (0, "properties.note"),
        (None, "meta"),
    }
    assert not TelemetryEvent.objects.exists()


def test_non_ascii_text_and_emoji_are_kept(client, raw_key):
    event = cli_event(distinct_id="bögwälker-🐸")
    event["properties"]["note"] = "marsh 沼 \U0001f438"

    response = post(client, json.dumps(event, ensure_ascii=True), raw_key)

    assert response.status_code == 202
    stored = TelemetryEvent.objects.get()
    assert stored.distinct_id == "bögwälker-🐸"
    assert stored.properties["note"] == "marsh 沼 \U0001f438"


def test_request_with_events_wakes_the_consumer_after_commit(
    client, raw_key, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("scoring.wakeups._send", lambda name, **options: sent.append(name))

    with django_capture_on_commit_callbacks(execute=True):
        post(client, cli_event(), raw_key)
    with django_capture_on_commit_callbacks(execute=True):
        post(client, cli_event(), raw_key)  # only a duplicate: nothing to wake for

    assert sent == ["scoring.events_consume"]


# --- 400 ------------------------------------------------------------------------------------


def _without(key):
    event = cli_event()
    del event[key]
    return event


def _props(**changes):
    event = cli_event()
    for path, value in changes.items():
        node = event["properties"]
        *parents, leaf = path.split("__")
        for parent in parents:
            node = node[parent]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (_without("event"), "event"),
        (cli_event(event=""), "event"),
        (cli_event(event="   "), "event"),
        (cli_event(event="x" * 201), "event"),
        (cli_event(event=7), "event"),
        (_without("distinct_id"), "distinct_id"),
        (cli_event(distinct_id=""), "distinct_id"),
        (cli_event(distinct_id="d" * 201), "distinct_id"),
        (cli_event(distinct_id=["d"]), "distinct_id"),
        (cli_event(insert_id=""), "insert_id"),
        (cli_event(insert_id="i" * 101), "insert_id"),
        (cli_event(insert_id=12), "insert_id"),
        (cli_event(timestamp="yesterday"), "timestamp"),
        (cli_event(timestamp="2026-13-01T00:00:00Z"), "timestamp"),
        (cli_event(timestamp=1764000000), "timestamp"),
        (cli_event(timestamp="0001-01-01T00:00:00+01:00"), "timestamp"),
        (_without("properties"), "properties"),
        (cli_event(properties=[1, 2]), "properties"),
        (cli_event(properties="{}"), "properties"),
        (_props(invocation=...), "properties.invocation"),
        (_props(invocation="model"), "properties.invocation"),
        (_props(invocation__command=...), "properties.invocation.command"),
        (_props(invocation__command=""), "properties.invocation.command"),
        (_props(invocation__command=None), "properties.invocation.command"),
        (_props(invocation__command=["model"]), "properties.invocation.command"),
        (_props(startedAt="not a time"), "properties.startedAt"),
        (_props(startedAt=12), "properties.startedAt"),
        (_props(startedAt=...), "properties.startedAt"),
        (_props(id=...), "insert_id"),
        (_props(id=""), "properties.id"),
        (_props(id="i" * 101), "properties.id"),
        (cli_event(distinct_id=f"dev{NUL}ice"), "distinct_id"),
        (cli_event(event=f"cli_invocation{NUL}"), "event"),
        (_props(invocation__args=["ok", f"b{NUL}d"]), "properties.invocation.args[1]"),
        (_props(**{f"ke{NUL}y": "v"}), "properties.ke\\u0000y"),
        (_props(**{"": NUL}), 'properties[""]'),
        (_props(**{"a": [NUL]}), "properties.a[0]"),
        (_props(note="\ud800 lone surrogate"), "properties.note"),
    ],
)
def test_invalid_event_is_refused_naming_the_field(client, raw_key, event, field):
    response = post(client, event, raw_key)

    assert response.json()["error"] == "invalid_events"
    assert (0, field) in errors_of(response)
    assert all(error["message"] for error in response.json()["errors"])
    assert not TelemetryEvent.objects.exists()


def test_cli_invocation_needs_only_the_command_start_and_id(client, raw_key):
    minimal = {
        "event": "cli_invocation",
        "distinct_id": "d",
        "properties": {
            "id": "minimal-1",
            "invocation": {"command": "data", "subcommand": None},
            "startedAt": "2026-11-24T10:14:58.000Z",
            "result": None,
        },
    }

    assert post(client, minimal, raw_key).status_code == 202


def test_unregistered_event_type_needs_an_insert_id(client, raw_key):
    response = post(client, {"event": "mystery", "distinct_id": "d", "properties": {}}, raw_key)

    assert errors_of(response) == {(0, "insert_id")}


def test_one_bad_event_stores_nothing_and_names_its_index(client, raw_key):
    events = [cli_event(n) for n in range(5)]
    events[3]["properties"]["invocation"]["command"] = ""
    events[4]["distinct_id"] = ""

    response = post(client, {"events": events}, raw_key)

    assert errors_of(response) == {(3, "properties.invocation.command"), (4, "distinct_id")}
    assert not TelemetryEvent.objects.exists()


def test_every_error_of_an_event_is_reported_at_once(client, raw_key):
    event = cli_event(distinct_id="", timestamp="soon")
    event["properties"]["invocation"]["command"] = 5

    response = post(client, event, raw_key)

    assert errors_of(response) == {
        (0, "distinct_id"),
        (0, "timestamp"),
        (0, "properties.invocation.command"),
    }


def test_non_object_event_in_a_batch_is_refused(client, raw_key):
    response = post(client, {"events": [cli_event(), "nope", 3]}, raw_key)

    assert errors_of(response) == {(1, "events"), (2, "events")}


@pytest.mark.parametrize("events", [[], "all", {"a": 1}, None])
def test_events_must_be_a_non_empty_list(client, raw_key, events):
    response = post(client, {"events": events}, raw_key)

    assert response.json()["field"] == "events"
    assert errors_of(response) == {(None, "events")}


def test_more_than_the_batch_limit_is_refused(client, raw_key):
    response = post(client, {"events": [cli_event(n) for n in range(1001)]}, raw_key)

    assert errors_of(response) == {(None, "events")}
    assert "1001" in response.json()["message"]
    assert not TelemetryEvent.objects.exists()


def test_exactly_the_batch_limit_is_accepted(client, raw_key):
    response = post(client, {"events": [cli_event(n) for n in range(1000)]}, raw_key)

    assert response.json() == {"accepted": 1000, "duplicates": 0}


@pytest.mark.parametrize(
    "body",
    [
        b" ",
        b"{",
        b"not json",
        b'{"event": "x",}',
        b"\xff\xfe{}",  # not UTF-8
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": 1e-400}',  # would silently become 0.0
        b'{"a": 0.' + b"0" * 120 + b"1}",
        b'{"a": "raw \x01 control"}',
        b"[" * 33 + b"]" * 33,  # one level too deep
        b'{"a":' * 40 + b"1" + b"}" * 40,
        b"[" * 200_000 + b"]" * 200_000,  # deep enough to exhaust the parser's recursion
    ],
)
def test_body_that_is_not_acceptable_json_is_refused(client, raw_key, body):
    response = post(client, body, raw_key)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert response.json()["field"] == "body"


@pytest.mark.parametrize("body", [[cli_event()], "a string", 42, None])
def test_body_must_be_an_object(client, raw_key, body):
    response = post(client, body, raw_key)

    assert errors_of(response) == {(None, "body")}


def test_nesting_up_to_the_limit_is_accepted(client, raw_key):
    event = cli_event()
    deep = 1
    for _ in range(29):  # properties sits at depth 2; 29 more levels reach 32 with the value
        deep = {"d": deep}
    event["properties"]["deep"] = deep

    assert post(client, event, raw_key).status_code == 202


# --- 401 / 403 / 405 / 409 / 413 / 415 / 429 / 503 ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": ""},
        {"x-api-key": "swamp_" + "0" * 32},  # well-formed, unknown
        {"x-api-key": "not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_unknown_key_is_refused(client, ingest_key, headers):
    response = client.post(URL, data="{}", content_type="application/json", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_right_prefix_with_wrong_secret_is_refused(client, raw_key):
    forged = raw_key[:14] + ("0" if raw_key[14] != "0" else "1") + raw_key[15:]

    assert post(client, cli_event(), forged).status_code == 401


def test_revoked_key_is_refused(client, ingest_key):
    api_key, raw = ingest_key
    api_key_revoke(api_key=api_key)

    response = post(client, cli_event(), raw)

    assert response.status_code == 401
    assert not TelemetryEvent.objects.exists()


def test_award_event_needs_the_award_scope(client, raw_key):
    award = {
        "event": "award",
        "distinct_id": "staff-bot",
        "properties": {"username": "someone", "points": 10, "reason": "for the swamp"},
    }

    response = post(client, {"events": [cli_event(), award]}, raw_key)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert response.json()["field"] == "event"
    assert response.json()["index"] == 1
    assert not TelemetryEvent.objects.exists()


def test_registered_type_scope_is_enforced_before_its_validation(client, raw_key, scoped_type):
    event = {"event": "test_grant", "distinct_id": "d", "properties": {"points": "many"}}

    response = post(client, event, raw_key)

    assert response.status_code == 403
    assert response.json()["scope"] == "award"
    assert scoped_type == []  # its validation never ran for a key without the scope
    assert not TelemetryEvent.objects.exists()


def test_registered_type_validation_errors_join_the_400(client, award_key, scoped_type):
    events = [
        cli_event(0, distinct_id=""),
        {"event": "test_grant", "distinct_id": "d", "properties": {"points": "many"}},
    ]

    response = post(client, {"events": events}, award_key)

    assert errors_of(response) == {(0, "distinct_id"), (1, "properties.points")}


def test_registered_type_default_insert_id_is_used(client, award_key, scoped_type):
    event = {"event": "test_grant", "distinct_id": "d", "properties": {"ref": "abc"}}

    response = post(client, event, award_key)

    assert response.status_code == 202
    assert TelemetryEvent.objects.get().insert_id == "grant-abc"


def test_registered_type_conflict_answers_409_and_stores_nothing(client, award_key, scoped_type):
    events = [
        cli_event(),
        {"event": "test_grant", "distinct_id": "d", "properties": {"ref": 1, "clash": True}},
    ]

    response = post(client, {"events": events}, award_key)

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "event": "test_grant",
        "message": "points changed",
    }
    assert not TelemetryEvent.objects.exists()


def test_get_is_not_allowed(client, raw_key):
    response = client.get(URL, headers={"x-api-key": raw_key})

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_body_that_is_not_declared_json_is_refused(client, raw_key, content_type):
    response = post(client, cli_event(), raw_key, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert not TelemetryEvent.objects.exists()


def test_body_over_one_mebibyte_is_refused(client, raw_key):
    event = cli_event()
    event["properties"]["blob"] = "x" * (1024 * 1024)

    response = post(client, event, raw_key)

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert not TelemetryEvent.objects.exists()


def test_body_over_django_upload_limit_is_refused_with_413(client, raw_key):
    # Above DATA_UPLOAD_MAX_MEMORY_SIZE Django itself refuses to read the body.
    response = post(client, b"{" + b" " * (3 * 1024 * 1024) + b"}", raw_key)

    assert response.status_code == 413


@override_settings(INGEST_MAX_BYTES=200)
def test_body_size_limit_counts_bytes(client, raw_key):
    small = {"event": "e", "distinct_id": "d", "insert_id": "i", "properties": {}}
    assert post(client, small, raw_key).status_code == 202

    small["properties"]["pad"] = "é" * 80  # 80 characters, 160 bytes of UTF-8
    assert post(client, small, raw_key).status_code == 413


def test_invalid_content_length_is_refused(client, raw_key):
    response = post(client, cli_event(), raw_key, CONTENT_LENGTH="ten")

    assert response.status_code == 400
    assert response.json()["field"] == "Content-Length"


@pytest.fixture
def frozen_window(monkeypatch, ingest_key):
    """Pin the rate limiter's clock 15 s into a 60 s window and start it empty."""

    class Clock:
        @staticmethod
        def time():
            return 6_000_015.0

    monkeypatch.setattr(ratelimit, "time", Clock)
    ratelimit.rate_limit_reset(bucket=f"ingest:{ingest_key[0].pk}", window_s=60)


@override_settings(INGEST_RATE_LIMIT=2, INGEST_RATE_WINDOW_S=60)
def test_over_the_rate_limit_answers_429_with_retry_after(client, raw_key, frozen_window):
    assert post(client, cli_event(1), raw_key).status_code == 202
    assert post(client, cli_event(2), raw_key).status_code == 202

    response = post(client, cli_event(3), raw_key)

    assert response.status_code == 429
    assert response["Retry-After"] == "45"
    assert response.json()["error"] == "rate_limited"
    assert TelemetryEvent.objects.count() == 2


@override_settings(INGEST_RATE_LIMIT=1, INGEST_RATE_WINDOW_S=60)
def test_rate_limit_is_per_key(client, member, raw_key, frozen_window):
    other = api_key_create(owner=member, scopes=["ingest"])
    ratelimit.rate_limit_reset(bucket=f"ingest:{other[0].pk}", window_s=60)

    assert post(client, cli_event(1), raw_key).status_code == 202
    assert post(client, cli_event(2), raw_key).status_code == 429
    assert post(client, cli_event(3), other[1]).status_code == 202


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    },
    INGEST_RATE_LIMIT=1,
)
def test_ingest_keeps_accepting_while_the_rate_limit_cache_is_down(client, raw_key, caplog):
    for n in range(3):
        assert post(client, cli_event(n), raw_key).status_code == 202

    assert TelemetryEvent.objects.count() == 3
    assert "rate limit cache unavailable" in caplog.text


def test_database_error_answers_503_never_202(client, raw_key, monkeypatch):
    def fail(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("scoring.views.events_ingest", fail)

    response = post(client, cli_event(), raw_key)

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert int(response["Retry-After"]) > 0


# --- cost ------------------------------------------------------------------------------------


def test_query_count_does_not_grow_with_the_batch(
    client, raw_key, settings, django_assert_num_queries
):
    post(client, cli_event(999_999), raw_key)  # last_used_at is now fresh: no UPDATE below
    # One SELECT for the key (with its owner), one INSERT, and the service's savepoint pair
    # (the test runs inside a transaction).
    with django_assert_num_queries(4):
        assert post(client, cli_event(0), raw_key).json()["accepted"] == 1
    with django_assert_num_queries(4):
        response = post(client, {"events": [cli_event(n) for n in range(1, 501)]}, raw_key)
    assert response.json()["accepted"] == 500
    # With the COPY store on PostgreSQL: the look-up of stored keys, then the COPY in a
    # savepoint of its own, instead of the INSERT; the same for any batch.
    settings.INGEST_COPY_MIN_EVENTS = 10
    batch_queries = 7 if connection.vendor == "postgresql" else 4
    with django_assert_num_queries(batch_queries):
        response = post(client, {"events": [cli_event(n) for n in range(501, 1001)]}, raw_key)
    assert response.json()["accepted"] == 500
    with django_assert_num_queries(batch_queries):
        response = post(client, {"events": [cli_event(n) for n in range(1001, 1021)]}, raw_key)
    assert response.json()["accepted"] == 20
