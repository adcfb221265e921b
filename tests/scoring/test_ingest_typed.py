"""The typed path (``scoring.ingest.cli_batch``): the CLI's well-typed requests are decoded
in one call, store exactly what the generic path stores, and anything else — or any broken
rule — goes the generic way, with its answers."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from scoring import registry
from scoring.ingest import cli_batch
from scoring.ingest.cli_batch import cli_batch_decode
from scoring.models import TelemetryEvent
from scoring.registry import EventType, HandleResult
from tests.cli_wire import (
    FIXTURES_DIR,
    cli_entry,
    cli_headers,
    cli_post,
    fixture_files,
    fixture_load,
)
from tests.scoring.test_ingest import errors_of

pytestmark = pytest.mark.django_db

COMMAND = "properties.invocation.command"
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def typed_rows(monkeypatch):
    """The number of rows each request's typed path produced (None: it passed)."""
    produced = []
    real = cli_batch.cli_batch_rows

    def spy(*args, **kwargs):
        rows = real(*args, **kwargs)
        produced.append(None if rows is None else len(rows))
        return rows

    monkeypatch.setattr("scoring.ingest.cli_batch_rows", spy)
    return produced


def _entries(prefix: str, n: int = 3, **overrides):
    return [
        cli_entry(
            entry_id=f"{prefix}{i}",
            started_at=STARTED + timedelta(seconds=i),
            global_options=["--json"] if i % 2 else [],
            exit_code=i,
            **overrides,
        )
        for i in range(n)
    ]


def _stored(prefix: str) -> list[dict]:
    rows = TelemetryEvent.objects.filter(insert_id__startswith=prefix).order_by("id")
    out = []
    for row in rows.values(
        "insert_id", "event", "distinct_id", "timestamp", "properties", "drift", "cli_version"
    ):
        row["insert_id"] = row["insert_id"].removeprefix(prefix)
        row["properties"]["id"] = row["properties"]["id"].removeprefix(prefix)
        out.append(row)
    return out


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_recorded_request_takes_the_typed_path(path):
    body = json.dumps(fixture_load(path)["body"]).encode()
    decoded = cli_batch_decode(body)
    assert decoded is not None
    assert decoded.batch == ("events" in json.loads(body))


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e["properties"].update(sandbox=True),  # a newer CLI's field
        lambda e: e["properties"]["invocation"].update(positionalKinds=["file"]),
        lambda e: e["properties"]["result"].update(signal=None),
        lambda e: e.update(sent_by="test"),  # an unknown event-level key (not stored)
        lambda e: e["properties"].update(durationMs="12"),  # drift
        lambda e: e["properties"].update(durationMs=12.5),  # a float literal
        lambda e: e["properties"]["invocation"].update(globalOptions={"json": True}),
        lambda e: e.update(event="award"),
        lambda e: e.update(insert_id=None),
        lambda e: e["properties"].pop("startedAt"),
    ],
)
def test_anything_but_the_wire_format_goes_the_generic_way(change):
    entries = _entries("x-", 2)
    change(entries[1])
    assert cli_batch_decode(json.dumps({"events": entries}).encode()) is None
    assert cli_batch_decode(json.dumps(entries[1]).encode()) is None
    assert cli_batch_decode(json.dumps({"events": entries, "sent": 1}).encode()) is None


def test_the_typed_path_stores_what_the_generic_path_stores(client, ingest_key, typed_rows):
    raw_key = ingest_key[1]
    typed = _entries("t-")
    generic = _entries("g-")
    # Times in other forms than the CLI's: an offset, naive (UTC), fractions of a second.
    sent_times = ["2026-11-24T12:15:00+02:00", "2026-11-24T10:15:00", "2026-11-24T10:15:00.5Z"]
    for entries in (typed, generic):
        for entry, sent in zip(entries, sent_times, strict=True):
            entry["timestamp"] = sent
    generic[0]["sent_by"] = "test"  # not stored; only sends this batch the generic way
    assert cli_post(client, typed, raw_key).json() == {"accepted": 3, "duplicates": 0}
    assert cli_post(client, generic, raw_key).json() == {"accepted": 3, "duplicates": 0}
    assert typed_rows == [3]  # the second batch never decoded as typed

    assert _stored("t-") == _stored("g-")
    assert [row["timestamp"] for row in _stored("t-")] == [
        datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        datetime(2026, 11, 24, 10, 15, 0, 500000, tzinfo=UTC),
    ]
    assert [row["drift"] for row in _stored("t-")] == [None, None, None]
    stored = TelemetryEvent.objects.filter(insert_id__startswith="t-").order_by("id")
    assert [row.properties for row in stored] == [entry["properties"] for entry in typed]


def test_a_typed_single_entry_and_its_resend(client, ingest_key, typed_rows):
    raw_key = ingest_key[1]
    entry = _entries("s-", 1)[0]
    del entry["insert_id"]  # the default: properties.id
    entry["timestamp"] = (STARTED + timedelta(seconds=5)).isoformat()
    assert cli_post(client, [entry], raw_key).json() == {"accepted": 1, "duplicates": 0}
    assert cli_post(client, [entry], raw_key).json() == {"accepted": 0, "duplicates": 1}
    assert typed_rows == [1, 1]
    stored = TelemetryEvent.objects.get()
    assert stored.insert_id == "s-0"
    assert stored.timestamp == STARTED + timedelta(seconds=5)
    assert stored.properties == entry["properties"]
    assert stored.cli_version  # from the User-Agent


def test_a_resent_batch_with_a_repeat_counts_duplicates(client, ingest_key):
    raw_key = ingest_key[1]
    entries = _entries("d-", 3)
    entries.append(dict(entries[0]))  # repeated within the request: the first one wins
    assert cli_post(client, entries, raw_key).json() == {"accepted": 3, "duplicates": 1}
    assert cli_post(client, entries, raw_key).json() == {"accepted": 0, "duplicates": 4}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.update(distinct_id="   "), "distinct_id"),
        (lambda e: e.update(insert_id="x" * 101), "insert_id"),
        (
            lambda e: e["properties"]["invocation"].update(command=""),
            "properties.invocation.command",
        ),
        (
            lambda e: e["properties"]["invocation"].update(command="c" * 101),
            "properties.invocation.command",
        ),
        (lambda e: e["properties"].update(startedAt="yesterday"), "properties.startedAt"),
        (
            lambda e: e["properties"].update(
                startedAt=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
            ),
            "properties.startedAt",
        ),
        (lambda e: e.update(timestamp="2026-13-01T00:00:00Z"), "timestamp"),
        (lambda e: (e.pop("insert_id"), e["properties"].update(id=" ")), "properties.id"),
    ],
)
def test_a_typed_entry_breaking_a_rule_is_refused_naming_the_field(
    client, ingest_key, typed_rows, change, field
):
    entries = _entries("r-", 3)
    change(entries[2])
    response = cli_post(client, entries, ingest_key[1])
    assert (2, field) in errors_of(response)
    assert typed_rows == [None]
    assert not TelemetryEvent.objects.exists()


def test_unstorable_text_is_refused_by_the_generic_path(client, ingest_key):
    entries = _entries("u-", 2)
    entries[1]["properties"]["platform"] = "linux\x00"
    assert (1, "properties.platform") in errors_of(cli_post(client, entries, ingest_key[1]))
    assert not TelemetryEvent.objects.exists()


def test_a_registered_cli_invocation_check_sends_requests_the_generic_way(
    client, ingest_key, monkeypatch, typed_rows
):
    seen = []

    def no_op(events):
        return HandleResult()

    def validate(event, api_key):
        seen.append(event["properties"]["id"])
        return []

    monkeypatch.setitem(
        registry._registry,
        "cli_invocation",
        EventType(
            name="cli_invocation",
            scope="ingest",
            handle=lambda e: HandleResult(),
            validate=validate,
        ),
    )
    response = cli_post(client, _entries("v-", 2), ingest_key[1])
    assert response.status_code == 202
    assert seen == ["v-0", "v-1"]
    assert typed_rows == []


def test_the_recorded_batch_is_stored_as_sent_by_the_typed_path(client, ingest_key, typed_rows):
    recorded = fixture_load(FIXTURES_DIR / "batch-workflow-child-error.json")
    body = recorded["body"]
    # Fresh times, so no entry is late or in the future whatever the date of the run.
    for n, entry in enumerate(body["events"]):
        entry["properties"]["startedAt"] = (STARTED + timedelta(seconds=n)).isoformat()
    response = client.post(
        "/ingest",
        data=json.dumps(body),
        content_type="application/json",
        headers=cli_headers(ingest_key[1]),
    )
    assert response.status_code == 202
    assert typed_rows == [len(body["events"])]
    stored = {row.insert_id: row.properties for row in TelemetryEvent.objects.all()}
    assert stored == {entry["insert_id"]: entry["properties"] for entry in body["events"]}
