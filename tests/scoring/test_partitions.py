"""The events table's monthly partitions and retention (docs/scaling.md "Partitions")."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, PendingEvent, TelemetryEvent, UserScore
from scoring.partitions import (
    DEFAULT,
    partition_create,
    partition_for,
    partitions_create_ahead,
    partitions_list,
)
from scoring.retention import partitions_retire, retention_horizon
from scoring.scores import scores_process_batch
from tests.cli_wire import cli_entry
from tests.factories import TelemetryEventFactory

pytestmark = pytest.mark.django_db
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: declarative partitioning"
)
NOW = datetime.now(UTC)


def month(offset: int) -> datetime:
    """The first instant of the month ``offset`` months from now (UTC)."""
    index = NOW.year * 12 + NOW.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def table_of(event: TelemetryEvent) -> str:
    """The partition holding ``event``'s row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM scoring_telemetryevent WHERE id = %s",
            [event.pk],
        )
        return cursor.fetchone()[0]


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def exported_rows(path) -> list[dict]:
    with gzip.open(path, "rt", newline="") as text:
        return list(csv.DictReader(text))


def folded(member) -> tuple | None:
    """What the consumer folded for ``member`` (None: nothing yet)."""
    return (
        MemberMetrics.objects.filter(member=member)
        .values_list("total_events", "event_counts", "active_dates")
        .first()
    )


def post(client, key: str, body) -> dict:
    response = client.post(
        "/ingest", data=json.dumps(body), content_type="application/json",
        headers={"x-api-key": key},
    )  # fmt: skip
    assert response.status_code == 202, response.content
    return response.json()


def cli_event(entry_id: str, started_at: datetime) -> dict:
    """A CLI entry as the swamp CLI sends it: no ``timestamp``, its time is ``startedAt``."""
    return cli_entry(entry_id=entry_id, started_at=started_at, repo_id=None)


def test_the_beat_schedule_runs_partition_maintenance():
    from swampclub.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["telemetry-partitions"]
    assert entry["task"] == "scoring.telemetry_partitions"
    assert entry["schedule"] == timedelta(seconds=settings.TELEMETRY_PARTITIONS_INTERVAL_S)
    import scoring.tasks  # noqa: F401  (a worker imports the task modules itself)

    assert "scoring.telemetry_partitions" in app.tasks


def test_the_maintenance_task_is_idempotent():
    from scoring.tasks import telemetry_partitions_task

    telemetry_partitions_task()
    # Everything ahead exists and nothing is old enough: nothing more to do.
    assert telemetry_partitions_task() == 0


def test_a_retention_shorter_than_the_counting_window_is_refused(settings):
    settings.TELEMETRY_RETENTION_MONTHS = 0
    with pytest.raises(ImproperlyConfigured):
        retention_horizon(NOW)
    settings.TELEMETRY_RETENTION_MONTHS = 13
    assert retention_horizon(NOW) == month(-13)


@needs_postgres
def test_partitions_are_created_ahead_once():
    names = {p.name for p in partitions_list()}
    # The migration made the current month and the next TELEMETRY_PARTITIONS_AHEAD.
    for offset in range(settings.TELEMETRY_PARTITIONS_AHEAD + 1):
        assert partition_for(month(offset)).name in names

    later = month(6) + timedelta(days=3)
    created = partitions_create_ahead(now=later, months=2)

    assert created == [partition_for(month(m)).name for m in (6, 7, 8)]
    assert partitions_create_ahead(now=later, months=2) == []
    assert [p.start for p in partitions_list()][-3:] == [month(6), month(7), month(8)]


@needs_postgres
def test_rows_in_the_default_partition_move_into_a_late_partition(member):
    event = TelemetryEventFactory(member=member, timestamp=month(10) + timedelta(days=2))
    assert table_of(event) == DEFAULT

    assert partition_create(partition_for(month(10))) is True

    assert table_of(event) == partition_for(month(10)).name
    assert TelemetryEvent.objects.get(pk=event.pk).insert_id == event.insert_id


@needs_postgres
def test_dedup_is_exact_within_a_partition(client, member):
    _, key = api_key_create(owner=member, scopes=["ingest"])
    batch = {"events": [cli_event(f"e-{n}", month(0) + timedelta(hours=n)) for n in range(5)]}

    assert post(client, key, batch) == {"accepted": 5, "duplicates": 0}
    assert post(client, key, batch) == {"accepted": 0, "duplicates": 5}
    # Resent one by one, mixed with a new entry, and twice within one request.
    again = {"events": [batch["events"][2], cli_event("e-new", month(0)), batch["events"][2]]}
    assert post(client, key, again) == {"accepted": 1, "duplicates": 2}

    events = TelemetryEvent.objects.all()
    assert events.count() == 6
    assert {table_of(e) for e in events} == {partition_for(month(0)).name}


@needs_postgres
def test_old_partitions_are_exported_then_dropped_and_the_ledger_still_holds(
    client, member, tmp_path
):
    # Live activity, scored through the whole pipeline.
    _, key = api_key_create(owner=member, scopes=["ingest"])
    post(
        client,
        key,
        {"events": [cli_event(f"live-{n}", NOW - timedelta(hours=n)) for n in range(3)]},
    )
    # Fourteen months ago: processed long since (one rejected), in its own partition.
    old_start = month(-14)
    partition_create(partition_for(old_start))
    old = [
        TelemetryEventFactory(member=member, timestamp=old_start + timedelta(days=n))
        for n in range(3)
    ]
    PendingEvent.objects.filter(event_id__in=[e.pk for e in old]).delete()
    TelemetryEvent.objects.filter(pk=old[2].pk).update(error="unknown event type")
    assert events_consume() == 3
    scores_process_batch()
    metrics = folded(member)
    score = UserScore.objects.get(member=member)
    name = partition_for(old_start).name
    expected = {
        str(e.pk): e
        for e in TelemetryEvent.objects.filter(pk__in=[e.pk for e in old]).order_by("pk")
    }

    retired = partitions_retire(now=NOW, directory=tmp_path)

    assert [(r.name, r.rows) for r in retired] == [(name, 3)]
    assert retired[0].path == tmp_path / f"{name}.csv.gz"
    assert not table_exists(name)
    assert name not in {p.name for p in partitions_list()}
    rows = exported_rows(retired[0].path)
    assert set(rows[0]) == {f.column for f in TelemetryEvent._meta.concrete_fields}
    assert {row["id"]: row["insert_id"] for row in rows} == {
        pk: e.insert_id for pk, e in expected.items()
    }
    # Processed or rejected: the export keeps each outcome in ``error``.
    assert [row["error"] for row in rows] == ["", "", "unknown event type"]
    assert json.loads(rows[0]["properties"]) == expected[rows[0]["id"]].properties
    assert datetime.fromisoformat(rows[1]["timestamp"]) == expected[rows[1]["id"]].timestamp
    # Scoring never needed them: metrics and score are untouched, the ledger holds.
    assert TelemetryEvent.objects.count() == 3
    assert folded(member) == metrics
    scores_process_batch()
    assert UserScore.objects.get(member=member).total_score == score.total_score
    call_command("check_ledger")
    # Nothing more to retire.
    assert partitions_retire(now=NOW, directory=tmp_path) == []


@needs_postgres
def test_a_partition_with_pending_events_is_kept(member, tmp_path):
    partition_create(partition_for(month(-15)))
    TelemetryEventFactory(member=member, timestamp=month(-15) + timedelta(days=1))

    assert partitions_retire(now=NOW, directory=tmp_path) == []
    assert partition_for(month(-15)).name in {p.name for p in partitions_list()}
    assert list(tmp_path.iterdir()) == []


@needs_postgres
def test_a_partition_detached_by_an_interrupted_run_is_finished(member, tmp_path):
    partition = partition_for(month(-16))
    partition_create(partition)
    event = TelemetryEventFactory(
        member=member, timestamp=month(-16), status=TelemetryEvent.Status.PROCESSED
    )
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE scoring_telemetryevent DETACH PARTITION "{partition.name}"')

    retired = partitions_retire(now=NOW, directory=tmp_path)

    assert [(r.name, r.rows) for r in retired] == [(partition.name, 1)]
    assert [row["insert_id"] for row in exported_rows(retired[0].path)] == [event.insert_id]
    assert not table_exists(partition.name)


@needs_postgres
def test_a_resend_after_its_partition_was_exported_is_stored_late_and_never_counted(
    client, member, tmp_path
):
    _, key = api_key_create(owner=member, scopes=["ingest"])
    old_start = month(-14)
    partition_create(partition_for(old_start))
    event = cli_event("ancient-1", old_start + timedelta(days=3))
    assert post(client, key, event) == {"accepted": 1, "duplicates": 0}
    assert events_consume() == 1
    assert TelemetryEvent.objects.get().late is True
    metrics = folded(member)
    retired = partitions_retire(now=NOW, directory=tmp_path)
    assert [r.rows for r in retired] == [1]
    assert not TelemetryEvent.objects.exists()

    # The partition is gone: the resend lands in the DEFAULT partition, as a late event.
    assert post(client, key, event) == {"accepted": 1, "duplicates": 0}
    assert post(client, key, event) == {"accepted": 0, "duplicates": 1}
    stored = TelemetryEvent.objects.get()
    assert table_of(stored) == DEFAULT
    assert events_consume() == 1
    stored.refresh_from_db()
    assert (stored.status, stored.late) == (TelemetryEvent.Status.PROCESSED, True)
    assert folded(member) == metrics

    # The next run takes it out of the DEFAULT partition the same way.
    again = partitions_retire(now=NOW, directory=tmp_path)
    assert [r.rows for r in again] == [1]
    assert again[0].name.startswith(f"{DEFAULT}-")
    assert [row["insert_id"] for row in exported_rows(again[0].path)] == ["ancient-1"]
    assert not TelemetryEvent.objects.exists()
    call_command("check_ledger")


@needs_postgres
def test_pending_rows_of_the_default_partition_stay(member, tmp_path):
    ancient = TelemetryEventFactory(member=member, timestamp=month(-40))
    assert table_of(ancient) == DEFAULT

    assert partitions_retire(now=NOW, directory=tmp_path) == []
    assert TelemetryEvent.objects.filter(pk=ancient.pk).exists()


def test_the_command_creates_retires_and_reports():
    out = io.StringIO()
    call_command("telemetry_partitions", stdout=out)
    lines = out.getvalue().splitlines()
    count = len(partitions_list())
    assert lines[-1].startswith(f"{count} monthly partitions")
    if connection.vendor == "postgresql":
        assert count >= settings.TELEMETRY_PARTITIONS_AHEAD + 1
    else:
        # SQLite keeps one plain table: nothing to create or retire.
        assert lines == ["0 monthly partitions"]
        assert partitions_retire() == []
        assert partitions_create_ahead() == []


@needs_postgres
def test_a_detach_that_cannot_get_its_lock_gives_up_until_the_next_run(
    member, tmp_path, monkeypatch
):
    import psycopg

    from scoring import retention

    monkeypatch.setattr(retention, "LOCK_TIMEOUT", "100ms")
    db = connection.settings_dict
    # Another session reading the events table in a long transaction, from before ours.
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    ) as other:
        other.execute("LOCK TABLE scoring_telemetryevent IN ACCESS SHARE MODE")
        # The oldest partition the migration made ends at the horizon a month from now.
        partition = partition_for(month(-13))
        TelemetryEventFactory(
            member=member, timestamp=month(-13), status=TelemetryEvent.Status.PROCESSED
        )
        later = month(1) + timedelta(days=1)

        assert partitions_retire(now=later, directory=tmp_path) == []
        assert partition.name in {p.name for p in partitions_list()}
        other.rollback()

    retired = partitions_retire(now=later, directory=tmp_path)
    assert [(r.name, r.rows) for r in retired] == [(partition.name, 1)]
