"""The consumer's queue (``PendingEvent``): every stored event is queued once by the events
table's trigger, a claim takes queue rows and never rewrites the event rows, and what the
queue and ``error`` hold is each event's status."""

import json

import pytest
from django.db import connection, transaction

from scoring.consumer import events_consume
from scoring.models import EventStatus, PendingEvent, TelemetryEvent
from tests.factories import TelemetryEventFactory
from tests.scoring.test_ingest import cli_event

pytestmark = pytest.mark.django_db

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (statement trigger, COPY, xmin)"
)


def _post(client, raw: str, events: list[dict]) -> dict:
    response = client.post(
        "/ingest",
        data=json.dumps({"events": events}),
        content_type="application/json",
        headers={"x-api-key": raw},
    )
    assert response.status_code == 202, response.content
    return response.json()


def _queued() -> list[int]:
    return sorted(PendingEvent.objects.values_list("event_id", flat=True))


def test_ingest_queues_each_new_event_once_and_never_a_duplicate(client, ingest_key):
    _, raw = ingest_key
    assert _post(client, raw, [cli_event(n) for n in range(3)])["accepted"] == 3
    # A resend of two of them beside one new event: only the new one is stored and queued.
    answer = _post(client, raw, [cli_event(1), cli_event(2), cli_event(3)])

    assert (answer["accepted"], answer["duplicates"]) == (1, 2)
    ids = sorted(TelemetryEvent.objects.values_list("id", flat=True))
    assert _queued() == ids
    assert {e.timestamp for e in TelemetryEvent.objects.all()} == set(
        PendingEvent.objects.values_list("timestamp", flat=True)
    )


def test_a_claim_empties_the_queue_and_statuses_follow(member):
    good = TelemetryEventFactory.create_batch(3, member=member)
    bad = TelemetryEventFactory(member=member, event="mystery")

    assert events_consume() == 4

    assert _queued() == []
    statuses = dict(TelemetryEvent.objects.with_status().values_list("id", "status"))
    assert statuses == {**{e.pk: "processed" for e in good}, bad.pk: "rejected"}
    assert list(TelemetryEvent.objects.rejected()) == [bad]
    assert TelemetryEvent.objects.processed().count() == 3
    bad.refresh_from_db()
    assert bad.status == EventStatus.REJECTED  # one query when not annotated
    # Nothing left to take: the next run handles nothing.
    assert events_consume() == 0


def test_a_rolled_back_claim_leaves_the_events_queued(member, monkeypatch):
    events = TelemetryEventFactory.create_batch(3, member=member)

    def crash(**kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr("scoring.consumer.snapshots_enqueue", crash)
    with pytest.raises(RuntimeError):
        events_consume()

    assert _queued() == sorted(e.pk for e in events)
    assert TelemetryEvent.objects.pending().count() == 3


@needs_postgres
def test_processing_never_rewrites_an_event_row(member):
    events = TelemetryEventFactory.create_batch(5, member=member)
    table = TelemetryEvent._meta.db_table

    def versions() -> dict[int, str]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, ctid::text FROM {table}")  # noqa: S608 - model table
            return dict(cursor.fetchall())

    before = versions()
    assert events_consume() == 5
    # Same physical row versions: the claim deleted queue rows and wrote no event row.
    assert versions() == before
    assert set(before) == {e.pk for e in events}


@needs_postgres
def test_copy_into_the_partitioned_table_queues_every_row(member):
    table = TelemetryEvent._meta.db_table
    columns = "insert_id, event, distinct_id, member_id, timestamp, received_at, properties"
    rows = [
        (f"copy-{n}", "cli_invocation", "d", member.pk, stamp, stamp, json.dumps({}))
        for n, stamp in enumerate(["2026-01-05T10:00:00+00", "2019-03-01T00:00:00+00"])
    ]
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)

    # Both routed through the parent (a monthly and the DEFAULT partition), both queued.
    assert _queued() == sorted(TelemetryEvent.objects.values_list("id", flat=True))
    assert len(_queued()) == 2


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_queue_rows_held_by_another_consumer_are_skipped_not_waited_on(member):
    import psycopg

    events = TelemetryEventFactory.create_batch(4, member=member)
    held = sorted(e.pk for e in events)[:2]
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    ) as other:
        # Another consumer's claim, not yet committed, holds the two oldest.
        other.execute(
            f"SELECT event_id FROM {PendingEvent._meta.db_table} "  # noqa: S608 - model table
            "WHERE event_id = ANY(%s) FOR UPDATE",
            [held],
        )

        assert events_consume() == 2
        assert _queued() == held
        other.rollback()

    # Its batch rolled back: they are still queued, and the next run takes them.
    assert events_consume() == 2
    assert _queued() == []


def test_the_admin_lists_and_filters_events_by_status(admin_client, member):
    TelemetryEventFactory(member=member, insert_id="still-queued")
    TelemetryEventFactory(member=member, insert_id="folded", status="processed")
    TelemetryEventFactory(member=member, insert_id="refused", status="rejected", error="bad")

    page = admin_client.get("/admin/scoring/telemetryevent/").content.decode()
    assert all(name in page for name in ("still-queued", "folded", "refused"))
    for status, shown in [
        ("pending", "still-queued"),
        ("processed", "folded"),
        ("rejected", "refused"),
    ]:
        page = admin_client.get(f"/admin/scoring/telemetryevent/?status={status}").content.decode()
        listed = {n for n in ("still-queued", "folded", "refused") if f">{n}<" in page}
        assert listed == {shown}, status
        assert f'<td class="field-status">{status}</td>' in page


def test_queue_rows_of_deleted_events_are_taken_and_skipped(member):
    from tests.factories import UserFactory

    leaving = UserFactory()
    TelemetryEventFactory.create_batch(2, member=leaving)
    staying = TelemetryEventFactory.create_batch(3, member=member)
    leaving.delete()  # its events go with it; their queue rows are left behind

    assert len(_queued()) == 5
    assert events_consume() == 3
    assert _queued() == []
    assert TelemetryEvent.objects.processed().count() == len(staying)


def test_a_large_drain_vacuums_the_queue_and_a_small_one_does_not(member, monkeypatch):
    vacuumed = []
    monkeypatch.setattr("scoring.consumer.QUEUE_VACUUM_AFTER", 3)
    monkeypatch.setattr("scoring.consumer.queue_vacuum", vacuumed.append)
    TelemetryEventFactory.create_batch(2, member=member)
    assert events_consume() == 2
    assert vacuumed == []

    TelemetryEventFactory.create_batch(3, member=member)
    assert events_consume() == 3
    assert vacuumed == [PendingEvent]


@pytest.mark.django_db(transaction=True)
def test_the_queue_vacuum_runs_only_outside_a_transaction_on_postgresql():
    from swampclub.dialect import queue_vacuum

    assert queue_vacuum(PendingEvent) is (connection.vendor == "postgresql")
    with transaction.atomic():
        assert queue_vacuum(PendingEvent) is False
