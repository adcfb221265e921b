"""Ingest against a real PostgreSQL: concurrent posts of one batch, and a database outage."""

import json
import threading
import time

import pytest
from django.db import connection, connections
from django.test import Client

from scoring import registry
from scoring.ingest import IngestPayload, IngestRejected, IngestResult, events_ingest
from scoring.models import TelemetryEvent
from scoring.registry import EventType, HandleResult
from tests.concurrency import errors_of, run_together
from tests.scoring.test_ingest import cli_event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (real concurrent transactions and a server to lose)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def woken(monkeypatch):
    """The consumer wake-ups sent after commit (the broker is the outside world here)."""
    sent = []
    monkeypatch.setattr("scoring.wakeups._send", lambda name, **options: sent.append(name))
    return sent


def test_concurrent_posts_of_one_batch_store_each_event_once(ingest_key, woken):
    _, raw = ingest_key
    body = json.dumps({"events": [cli_event(n) for n in range(200)]})

    def send():
        response = Client().post(
            "/ingest", data=body, content_type="application/json", headers={"x-api-key": raw}
        )
        return response.status_code, response.json()

    answers = run_together([send, send], timeout=10)
    failures = errors_of(answers)

    assert failures == []
    assert [status for status, _ in answers] == [202, 202]
    assert sum(answer["accepted"] for _, answer in answers) == 200
    assert sum(answer["duplicates"] for _, answer in answers) == 200
    assert TelemetryEvent.objects.count() == 200
    assert TelemetryEvent.objects.values("insert_id").distinct().count() == 200
    # Only the request that stored something wakes the consumer.
    assert woken.count("scoring.events_consume") in (1, 2)


def test_database_outage_answers_503_and_recovers(ingest_key, woken):
    _, raw = ingest_key
    client = Client()
    conn = connections["default"]
    original = dict(conn.settings_dict)
    conn.close()
    # Nothing listens on port 1: every connection attempt is refused, as when PostgreSQL
    # is down.
    conn.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        response = client.post(
            "/ingest",
            data=json.dumps(cli_event()),
            content_type="application/json",
            headers={"x-api-key": raw},
        )
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(original)

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert int(response["Retry-After"]) > 0
    assert not TelemetryEvent.objects.exists()

    retry = client.post(
        "/ingest",
        data=json.dumps(cli_event()),
        content_type="application/json",
        headers={"x-api-key": raw},
    )
    assert retry.status_code == 202
    assert TelemetryEvent.objects.count() == 1
    assert woken == ["scoring.events_consume"]


def test_value_the_database_refuses_is_a_400_not_a_500(ingest_key):
    # A number PostgreSQL's numeric cannot hold, in text the parser let through (the
    # body parser refuses such numbers itself; this is the last line of defence).
    api_key, _ = ingest_key
    event = cli_event()
    text = json.dumps(event).replace('"durationMs": 2100', '"durationMs": 1e-20000')

    with pytest.raises(IngestRejected) as rejected:
        events_ingest(
            api_key=api_key, payload=IngestPayload(data=event, text=text, text_checked=True)
        )

    assert rejected.value.status == 400
    assert rejected.value.body["field"] == "body"
    assert not TelemetryEvent.objects.exists()


def test_a_request_sharing_a_conflict_key_waits_for_the_lock_holder_and_answers_409(
    ingest_key, monkeypatch
):
    # A throwaway type whose conflict check compares ``value`` with stored events of the
    # same ``ref``; both requests share one default insert_id, so without the lock the
    # second would pass its check and be counted a duplicate instead of a conflict.
    api_key, _ = ingest_key
    paused, release = threading.Event(), threading.Event()

    def conflict(events, key):
        if any(event["properties"].get("pause") for event in events):
            paused.set()
            release.wait(timeout=30)  # inside the transaction, holding the lock
        refs = {event["properties"]["ref"]: event["properties"]["value"] for event in events}
        stored = TelemetryEvent.objects.filter(
            event="test_lock", properties__ref__in=list(refs)
        ).values_list("properties", flat=True)
        clash = any(refs[p["ref"]] != p["value"] for p in stored)
        return "value changed" if clash else None

    monkeypatch.setitem(
        registry._registry,
        "test_lock",
        EventType(
            name="test_lock",
            scope="ingest",
            handle=lambda events: HandleResult(),
            conflict=conflict,
            conflict_keys=lambda events, key: {e["properties"]["ref"] for e in events},
            default_insert_id=lambda event, key: f"lock-{event['properties']['ref']}",
        ),
    )
    first = {"event": "test_lock", "distinct_id": "d", "properties": {"ref": "k", "value": 1}}
    second = {**first, "properties": {"ref": "k", "value": 2}}
    answers: dict[str, object] = {}

    def send(name: str, event: dict) -> None:
        try:
            answers[name] = events_ingest(api_key=api_key, payload=event)
        except IngestRejected as exc:
            answers[name] = exc.status
        finally:
            connections.close_all()

    holder = threading.Thread(
        target=send, args=("first", {**first, "properties": {**first["properties"], "pause": 1}})
    )
    holder.start()
    assert paused.wait(timeout=30)
    waiter = threading.Thread(target=send, args=("second", second))
    waiter.start()
    try:
        # The second request is blocked on the advisory lock the first one holds.
        with connection.cursor() as cursor:
            for _ in range(600):
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the second request never waited for the lock")
    finally:
        release.set()  # also when the check above fails, so no thread is left waiting
        holder.join(timeout=30)
        waiter.join(timeout=30)

    assert answers == {"first": IngestResult(accepted=1, duplicates=0), "second": 409}
    assert list(TelemetryEvent.objects.values_list("properties", flat=True)) == [
        {"ref": "k", "value": 1, "pause": 1}
    ]


def test_a_real_outage_is_logged_once_going_and_once_coming_back(ingest_key, woken, caplog):
    _, raw = ingest_key
    client = Client()
    conn = connections["default"]
    original = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        statuses = [
            client.post(
                "/ingest",
                data=json.dumps(cli_event(n)),
                content_type="application/json",
                headers={"x-api-key": raw},
            ).status_code
            for n in range(4)
        ]
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(original)
    assert statuses == [503] * 4
    ingest_lines = [r for r in caplog.records if r.name == "swampclub.ingest"]
    assert len(ingest_lines) == 1
    assert "database unavailable" in ingest_lines[0].getMessage()
    assert ingest_lines[0].exc_info is None
    assert "Traceback" not in caplog.text

    retry = client.post(
        "/ingest",
        data=json.dumps(cli_event(9)),
        content_type="application/json",
        headers={"x-api-key": raw},
    )
    assert retry.status_code == 202
    ingest_lines = [r for r in caplog.records if r.name == "swampclub.ingest"]
    assert len(ingest_lines) == 2
    assert "database is back after" in ingest_lines[1].getMessage()
    assert "4 requests affected" in ingest_lines[1].getMessage()
