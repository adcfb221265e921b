"""The StatsConsumer: exact folding, redelivery, poison events, rollback, concurrency."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from scoring import consumer
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, MetricsSnapshot, PipelineRun, TelemetryEvent
from scoring.registry import EventType, HandleResult, event_type_register, event_types
from tests.factories import TelemetryEventFactory, UserFactory
from tests.scoring.helpers import members_batch

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks (SKIP LOCKED)"
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def cli_event(member, command: str, at: str, *, started_at: str | None = "same", **kwargs):
    """A pending cli_invocation for ``member`` at ``at``; ``startedAt`` defaults to ``at``."""
    event = TelemetryEventFactory(member=member, timestamp=_at(at), **kwargs)
    props = dict(event.properties)
    props["invocation"] = {**props["invocation"], "command": command}
    if started_at is None:
        props.pop("startedAt")
    else:
        props["startedAt"] = at if started_at == "same" else started_at
    event.properties = props
    event.save(update_fields=["properties"])
    return event


@pytest.fixture
def registry_restore():
    """Lets a test register event types; the registry is put back afterwards."""
    from scoring import registry

    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def test_cli_invocation_is_registered_with_the_ingest_scope():
    event_type = event_types()["cli_invocation"]
    assert event_type.scope == "ingest"
    assert event_type.handle is not None
    assert event_type.validate is not None


def test_mixed_batch_folds_exactly(member):
    other = UserFactory()
    MemberMetrics.objects.create(
        member=member,
        event_counts={"model": 4, "vault": 1},
        active_dates=["2026-11-01", "2026-11-20"],
        total_events=5,
        award_points=700,
        first_event_at=_at("2026-11-01T08:00:00+00:00"),
        last_event_at=_at("2026-11-20T09:00:00+00:00"),
    )
    cli_event(member, "model", "2026-11-22T10:00:00+00:00")
    cli_event(member, "Model", "2026-11-22T11:00:00+00:00")  # groups are lower-cased
    # startedAt wins over timestamp, and its UTC date is the one that counts.
    cli_event(
        member,
        "workflow",
        "2026-11-25T12:00:00+00:00",
        started_at="2026-11-23T23:30:00-02:00",  # = 2026-11-24 01:30 UTC
    )
    # No startedAt: the event timestamp gives the date.
    cli_event(member, "data", "2026-10-30T06:00:00+00:00", started_at=None)
    cli_event(other, "auth", "2026-11-24T00:00:01+00:00")
    unknown = TelemetryEventFactory(member=member, event="mystery")
    broken = TelemetryEventFactory(member=other, properties={"invocation": {"args": []}})

    assert events_consume() == 7

    metrics = MemberMetrics.objects.get(member=member)
    assert metrics.event_counts == {"model": 6, "vault": 1, "workflow": 1, "data": 1}
    assert metrics.active_dates == [
        "2026-10-30",
        "2026-11-01",
        "2026-11-20",
        "2026-11-22",
        "2026-11-24",
    ]
    assert metrics.total_events == 9
    assert metrics.award_points == 700  # the fold never touches award points
    assert metrics.first_event_at == _at("2026-10-30T06:00:00+00:00")
    assert metrics.last_event_at == _at("2026-11-24T01:30:00+00:00")
    theirs = MemberMetrics.objects.get(member=other)
    assert (theirs.event_counts, theirs.active_dates, theirs.total_events) == (
        {"auth": 1},
        ["2026-11-24"],
        1,
    )

    assert TelemetryEvent.objects.processed().count() == 5
    unknown.refresh_from_db()
    assert (unknown.status, unknown.error) == ("rejected", "unknown event type: mystery")
    broken.refresh_from_db()
    assert broken.status == "rejected"
    assert "properties.invocation.command" in broken.error
    assert not TelemetryEvent.objects.pending().exists()

    snapshots = {s.member_id: s for s in MetricsSnapshot.objects.all()}
    assert set(snapshots) == {member.pk, other.pk}
    mine = snapshots[member.pk]
    assert (mine.event_counts, mine.total_events, mine.award_points) == (
        metrics.event_counts,
        9,
        700,
    )
    assert mine.active_dates == metrics.active_dates
    assert mine.processed_at is None
    run = PipelineRun.objects.get(kind="consume")
    assert (run.runs, run.last_count) == (1, 7)


def test_redelivery_changes_nothing(member):
    for day in (1, 2, 3):
        cli_event(member, "model", f"2026-11-0{day}T10:00:00+00:00")
    assert events_consume() == 3
    before = MemberMetrics.objects.get(member=member)
    # A redelivered task, and an event that was processed already and is seen again.
    assert events_consume() == 0
    assert events_consume(batch_size=1) == 0
    after = MemberMetrics.objects.get(member=member)
    assert (after.event_counts, after.total_events, after.active_dates) == (
        before.event_counts,
        before.total_events,
        before.active_dates,
    )
    assert MetricsSnapshot.objects.count() == 1
    assert PipelineRun.objects.get(kind="consume").runs == 1


def test_small_batches_loop_until_nothing_is_pending(member):
    for minute in range(7):
        cli_event(member, "data", f"2026-11-05T10:{minute:02d}:00+00:00")
    assert events_consume(batch_size=2) == 7
    assert MemberMetrics.objects.get(member=member).total_events == 7
    # One snapshot per member per batch: four batches touched the member.
    assert MetricsSnapshot.objects.filter(member=member).count() == 4
    assert not TelemetryEvent.objects.pending().exists()


def test_poison_event_is_rejected_and_the_rest_apply(member, registry_restore):
    calls = []

    def handle(events):
        calls.append(len(events))
        # Writes first, then fails: the savepoint must undo the write of a failed call.
        MemberMetrics.objects.filter(member__in=[e.member_id for e in events]).update(
            award_points=F("award_points") + len(events)
        )
        if any(e.properties.get("poison") for e in events):
            raise ValueError("cannot digest this")
        return HandleResult(touched_member_ids={e.member_id for e in events})

    event_type_register(EventType(name="snack", scope="ingest", handle=handle))
    MemberMetrics.objects.create(member=member)
    snacks = [
        TelemetryEventFactory(member=member, event="snack", properties={"poison": i in (2, 5)})
        for i in range(8)
    ]
    cli_event(member, "model", "2026-11-05T10:00:00+00:00")

    assert events_consume() == 9

    statuses = {e.pk: (e.status, e.error) for e in TelemetryEvent.objects.filter(event="snack")}
    for i, snack in enumerate(snacks):
        status, error = statuses[snack.pk]
        if i in (2, 5):
            assert status == "rejected"
            assert error == "snack handler failed: ValueError: cannot digest this"
        else:
            assert (status, error) == ("processed", "")
    metrics = MemberMetrics.objects.get(member=member)
    assert metrics.award_points == 6  # only the six good snacks' writes survived
    assert metrics.total_events == 1
    assert calls[0] == 8  # the whole batch was tried first


def test_crash_mid_batch_leaves_everything_pending(member, monkeypatch):
    MemberMetrics.objects.create(member=member, event_counts={"model": 1}, total_events=1)
    for minute in range(3):
        cli_event(member, "model", f"2026-11-05T10:{minute:02d}:00+00:00")

    def crash(**kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(consumer, "snapshots_enqueue", crash)
    with pytest.raises(RuntimeError):
        events_consume()
    assert TelemetryEvent.objects.pending().count() == 3
    metrics = MemberMetrics.objects.get(member=member)
    assert (metrics.event_counts, metrics.total_events) == ({"model": 1}, 1)
    assert not MetricsSnapshot.objects.exists()
    assert not PipelineRun.objects.exists()

    monkeypatch.undo()
    assert events_consume() == 3
    assert MemberMetrics.objects.get(member=member).event_counts == {"model": 4}


def _consume_queries(members: int, per_member: int) -> int:
    for m in members_batch(members):
        for i in range(per_member):
            cli_event(m, ("model", "vault", "data")[i % 3], f"2026-11-{i % 9 + 1:02d}T10:00:00Z")
    with CaptureQueriesContext(connection) as queries:
        assert events_consume() == members * per_member
    return len(queries.captured_queries)


def test_query_count_does_not_grow_with_events_or_members():
    small = _consume_queries(2, 3)
    large = _consume_queries(60, 5)
    assert large == small


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_consumers_never_take_the_same_event(registry_restore):
    members = members_batch(3)
    barrier = threading.Barrier(2, timeout=30)
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def handle(events):
        name = threading.current_thread().name
        if not claimed[name]:
            # Both consumers are now inside a batch transaction holding their claims: the
            # second could only get here by skipping the first one's locked rows.
            barrier.wait()
        claimed[name].extend(e.pk for e in events)
        return HandleResult()

    event_type_register(EventType(name="probe", scope="ingest", handle=handle))
    probes = [TelemetryEventFactory(member=members[i % 3], event="probe") for i in range(40)]
    clis = [
        cli_event(members[i % 3], "model", f"2026-11-{i % 20 + 1:02d}T10:00:00Z") for i in range(60)
    ]
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def run(name):
        try:
            results[name] = events_consume(batch_size=10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert claimed["a"]
    assert claimed["b"]
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == sorted(p.pk for p in probes)
    assert results["a"] + results["b"] == 100
    assert not TelemetryEvent.objects.with_status().exclude(status="processed").exists()
    # No lost update on the shared members' metrics: every cli event counted exactly once.
    assert sum(MemberMetrics.objects.values_list("total_events", flat=True)) == len(clis)
    for m in MemberMetrics.objects.all():
        assert m.event_counts == {"model": m.total_events}
