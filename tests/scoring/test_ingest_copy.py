"""The COPY store (``swampclub.dialect.events_copy_new``): on PostgreSQL it stores exactly what
the INSERT stores, with the same counts — resends, repeats within a request, events
deduplicated by ``insert_id`` alone — and falls back to the INSERT when a concurrent writer
stores a key between its look-up and its COPY."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from scoring.ingest import store
from scoring.models import TelemetryEvent
from tests.cli_wire import cli_entry, cli_headers

pytestmark = pytest.mark.django_db

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (the COPY store)"
)
STARTED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
# What differs between two stores of one request under two prefixes.
VOLATILE = ("id", "received_at")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def paths(monkeypatch):
    """Which store each request took: "copy", "insert", or "copy lost" then "insert"."""
    taken: list[str] = []
    copy, insert = store.events_copy_new, store.events_insert_rows

    def copy_spy(**kwargs):
        copied = copy(**kwargs)
        taken.append("copy lost" if copied is None else "copy")
        return copied

    def insert_spy(**kwargs):
        taken.append("insert")
        return insert(**kwargs)

    monkeypatch.setattr(store, "events_copy_new", copy_spy)
    monkeypatch.setattr(store, "events_insert_rows", insert_spy)
    return taken


@pytest.fixture(params=["insert", pytest.param("copy", marks=needs_postgresql)])
def path(request, settings):
    """Each test below runs once with every request stored by the INSERT and once (on
    PostgreSQL) with every request stored by the COPY."""
    settings.INGEST_COPY_MIN_EVENTS = 0 if request.param == "insert" else 1
    return request.param


def _post(client, key: str, body, *, indent: int | None = None):
    text = body if isinstance(body, str) else json.dumps(body, indent=indent, ensure_ascii=False)
    return client.post(
        "/ingest", data=text, content_type="application/json", headers=cli_headers(key)
    )


def _typed(prefix: str, n: int = 12) -> list[dict]:
    entries = [
        cli_entry(
            entry_id=f"{prefix}{i}",
            started_at=STARTED + timedelta(seconds=i),
            global_options=["--json"] if i % 2 else [],
            exit_code=i,
            error_message='tab\there, a "quote", a \\ and a\nnewline: é ☃' if i == 3 else None,
        )
        for i in range(n)
    ]
    entries[1]["timestamp"] = "2026-11-24T12:15:00.5+02:00"
    del entries[2]["insert_id"]  # the default: properties.id
    return entries


def _generic(prefix: str) -> list[dict]:
    entries = _typed(prefix, 6)
    entries[0]["properties"]["durationMs"] = "12"  # drift
    entries[1]["properties"]["sandbox"] = {"nested": [1.50, 1e3, -0.0, None, True]}
    entries[2]["sent_by"] = "test"  # an unknown event-level key: not stored
    # Another event type, timed by its arrival: deduplicated by insert_id alone.
    entries.append(
        {
            "event": "tool_ping",
            "distinct_id": "mac-42f1",
            "insert_id": f"{prefix}ping",
            "properties": {"tool": "x", "n": 12345678901234567890},
        }
    )
    return entries


def _stored(prefix: str) -> list[dict]:
    out = []
    for row in TelemetryEvent.objects.filter(insert_id__startswith=prefix).order_by("id").values():
        if row["timestamp"] == row["received_at"]:
            row["timestamp"] = "arrival"
        for name in VOLATILE:
            del row[name]
        row["insert_id"] = row["insert_id"].removeprefix(prefix)
        if "id" in row["properties"]:
            row["properties"]["id"] = row["properties"]["id"].removeprefix(prefix)
        out.append(row)
    return out


@needs_postgresql
def test_the_copy_stores_exactly_what_the_insert_stored(client, ingest_key, settings, paths):
    key = ingest_key[1]
    for prefix, threshold in (("i-", 0), ("c-", 1)):
        settings.INGEST_COPY_MIN_EVENTS = threshold
        # A typed batch, compact; a generic one, indented with tabs and newlines between
        # the tokens (stored as sent, so the COPY's text escaping must hold).
        assert _post(client, key, {"events": _typed(prefix)}).json() == {
            "accepted": 12,
            "duplicates": 0,
        }
        text = json.dumps({"events": _generic(prefix + "g")}, indent="\t", ensure_ascii=False)
        assert _post(client, key, text.replace("\n", "\r\n")).json() == {
            "accepted": 7,
            "duplicates": 0,
        }
    assert paths == ["insert", "insert", "copy", "copy"]

    copied, inserted = _stored("c-"), _stored("i-")
    assert len(copied) == 19
    assert copied == inserted
    # Spot checks that the comparison compares something.
    assert copied[3]["properties"]["result"]["errorMessage"] == (
        'tab\there, a "quote", a \\ and a\nnewline: é ☃'
    )
    assert copied[1]["timestamp"] == datetime(2026, 11, 24, 10, 15, 0, 500000, tzinfo=UTC)
    assert copied[12]["drift"] == ["durationMs"]
    assert copied[13]["properties"]["sandbox"] == {"nested": [1.5, 1000, 0, None, True]}
    assert copied[18]["timestamp"] == "arrival"
    assert copied[18]["properties"]["n"] == 12345678901234567890
    # Both paths queue every stored event for the consumer (the table's trigger).
    assert TelemetryEvent.objects.filter(insert_id__startswith="c-").pending().count() == 19
    assert TelemetryEvent.objects.filter(insert_id__startswith="i-").pending().count() == 19
    assert {row["cli_version"] for row in copied} != {""}
    # The consumer claims in id order: the COPY keeps the request's order.
    assert [row["insert_id"] for row in copied] == [row["insert_id"] for row in inserted]


def test_a_resend_is_all_duplicates(client, ingest_key, path, paths):
    key = ingest_key[1]
    assert _post(client, key, {"events": _generic("r-")}).json() == {
        "accepted": 7,
        "duplicates": 0,
    }
    assert _post(client, key, {"events": _generic("r-")}).json() == {
        "accepted": 0,
        "duplicates": 7,
    }
    typed = _typed("r-", 12)
    assert _post(client, key, {"events": typed}).json() == {"accepted": 6, "duplicates": 6}
    assert _post(client, key, {"events": typed}).json() == {"accepted": 0, "duplicates": 12}
    assert TelemetryEvent.objects.count() == 13
    assert set(paths) == {path}


def test_repeats_within_a_request_count_once_and_the_first_wins(client, ingest_key, path, paths):
    key = ingest_key[1]
    entries = _typed("d-", 12)
    repeat = json.loads(json.dumps(entries[0]))
    repeat["properties"]["result"]["exitCode"] = 99
    # The same id at another explicit time is another event (the unique key holds the time).
    later = json.loads(json.dumps(entries[4]))
    later["timestamp"] = (STARTED - timedelta(days=1)).isoformat()
    entries[5:5] = [repeat, later, entries[3]]

    assert _post(client, key, {"events": entries}).json() == {"accepted": 13, "duplicates": 2}
    stored = TelemetryEvent.objects.filter(insert_id="d-0").get()
    assert stored.properties["result"]["exitCode"] == 0
    assert TelemetryEvent.objects.filter(insert_id="d-4").count() == 2
    assert [row.insert_id for row in TelemetryEvent.objects.order_by("id")][:8] == [
        "d-0",
        "d-1",
        "d-2",
        "d-3",
        "d-4",
        "d-4",
        "d-5",
        "d-6",
    ]
    assert set(paths) == {path}


def test_an_id_deduplicated_alone_is_a_duplicate_at_any_time(client, ingest_key, path, paths):
    key = ingest_key[1]
    ping = _generic("p-")[-1]
    assert _post(client, key, ping).json() == {"accepted": 1, "duplicates": 0}
    # Stored again later, at another arrival time, among new events: still a duplicate.
    batch = [*_typed("p-", 11), ping]
    assert _post(client, key, {"events": batch}).json() == {"accepted": 11, "duplicates": 1}
    assert TelemetryEvent.objects.filter(insert_id="p-ping").count() == 1
    assert TelemetryEvent.objects.count() == 12


def _steal(monkeypatch, *, insert_id: str, timestamp: datetime, member_id: int, other: bool):
    """Store one event with ``insert_id`` right after the COPY store's look-up and before
    its COPY: from another connection, committed (a concurrent resend), or on the request's
    own connection (``other`` False)."""
    real = store._properties_texts

    def texts(*args, **kwargs):
        sql = (
            "INSERT INTO scoring_telemetryevent (insert_id, event, distinct_id, timestamp, "
            "received_at, properties, error, member_id) "
            "VALUES (%s, 'cli_invocation', 'other-writer', %s, now(), '{}', '', %s)"
        )
        if other:
            writer = connections.create_connection("default")
            try:
                with writer.cursor() as cursor:
                    cursor.execute(sql, [insert_id, timestamp, member_id])
            finally:
                writer.close()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, [insert_id, timestamp, member_id])
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "_properties_texts", texts)


def _race(client, ingest_key, monkeypatch, paths, settings, *, other: bool) -> None:
    api_key, key = ingest_key
    settings.INGEST_COPY_MIN_EVENTS = 1
    entries = _typed("x-", 20)
    _steal(
        monkeypatch,
        insert_id="x-7",
        timestamp=STARTED + timedelta(seconds=7),
        member_id=api_key.owner_id,
        other=other,
    )
    assert _post(client, key, {"events": entries}).json() == {"accepted": 19, "duplicates": 1}
    assert paths == ["copy lost", "insert"]
    assert TelemetryEvent.objects.count() == 20
    assert TelemetryEvent.objects.get(insert_id="x-7").distinct_id == "other-writer"
    assert TelemetryEvent.objects.exclude(insert_id="x-7").filter(api_key=api_key).count() == 19
    # The resend after the race: every event a duplicate, by the COPY store's look-up.
    monkeypatch.setattr(store, "_properties_texts", lambda *a, **k: pytest.fail("no COPY"))
    assert _post(client, key, {"events": entries}).json() == {"accepted": 0, "duplicates": 20}
    assert paths[-1] == "copy"


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_writer_winning_the_race_falls_back_to_the_insert(
    client, ingest_key, monkeypatch, paths, settings
):
    # Autocommit, as in production: the COPY is its own transaction, and it is undone whole.
    _race(client, ingest_key, monkeypatch, paths, settings, other=True)


@needs_postgresql
def test_inside_a_transaction_a_lost_race_rolls_back_to_the_savepoint(
    client, ingest_key, monkeypatch, paths, settings
):
    # The test runs in a transaction: the COPY runs in a savepoint, and rolling back to it
    # keeps what the transaction did before (here the competing row itself).
    assert connection.in_atomic_block
    _race(client, ingest_key, monkeypatch, paths, settings, other=False)
