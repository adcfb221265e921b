"""The StatsConsumer (SPEC §5): drains pending telemetry events into metrics and snapshots.

One durable transaction per batch: take pending events off the queue (``PendingEvent``,
``FOR UPDATE SKIP LOCKED``), hand each event type's events to its registered handler,
record the rejected ones' reasons, enqueue one ``MetricsSnapshot`` per touched member. A
crash anywhere rolls the whole batch back (the events are queued again); a committed batch
is never claimed again (its queue rows are gone), so redelivered tasks and re-runs fold
nothing twice.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from scoring.metrics import CLI_INVOCATION, ClaimedInvocation
from scoring.models import MemberMetrics, MetricsSnapshot, PendingEvent, TelemetryEvent
from scoring.pipeline import RunKind, pipeline_run_record
from scoring.registry import EventType, HandleResult, event_type_get
from scoring.wakeups import score_batch_wake
from swampclub.dialect import ids_in, queue_take, queue_vacuum

logger = logging.getLogger("swampclub.consumer")

# What handlers may read from a claimed event (``id`` first); ``error`` is the consumer's.
_EVENT_FIELDS = (
    "id",
    "insert_id",
    "event",
    "distinct_id",
    "api_key_id",
    "member_id",
    "timestamp",
    "received_at",
    "properties",
)
MAX_ERROR_LENGTH = 1000
# A run that drained at least this many events vacuums the queue table itself: the claims'
# dead queue rows are gone before the next (idle) run walks past them, whatever autovacuum
# does (docs/performance.md, "Consume: the pending queue").
QUEUE_VACUUM_AFTER = 20_000


def _handle_isolated(
    event_type: EventType, events: Sequence[TelemetryEvent | ClaimedInvocation]
) -> HandleResult:
    """Run a handler in a savepoint; when it raises, bisect to find the poison events.

    A handler that raises for the whole batch would otherwise roll the batch back and be
    claimed again forever. Splitting in halves re-runs the good events (each half in its own
    savepoint, so a failed half leaves nothing behind) and narrows the failure down to the
    single events that raise, which are rejected with the exception text: k poison events
    in n cost O(k log n) handler calls, and a clean batch costs one.

    Connection-level errors (``OperationalError``, ``InterfaceError``: a deadlock, a lost
    connection, a statement timeout) are not the events' fault; they abort the whole batch,
    which stays pending and is retried by the next run.
    """
    try:
        with transaction.atomic():
            # Only the cli_invocation fold is handed ClaimedInvocation records (PostgreSQL claim).
            return event_type.handle(events)  # type: ignore[arg-type]
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        if len(events) == 1:
            logger.warning(
                "rejecting event %s: %s handler failed",
                events[0].pk,
                event_type.name,
                exc_info=True,
            )
            reason = f"{event_type.name} handler failed: {type(exc).__name__}: {exc}"
            return HandleResult(rejected={events[0].pk: reason[:MAX_ERROR_LENGTH]})
    middle = len(events) // 2
    result = HandleResult()
    for half in (events[:middle], events[middle:]):
        part = _handle_isolated(event_type, half)
        result.rejected.update(part.rejected)
        result.touched_member_ids |= part.touched_member_ids
        result.late |= part.late
    return result


def _dispatch(events: Sequence[TelemetryEvent | ClaimedInvocation]) -> HandleResult:
    """Hand each event type's events to its handler; unknown types are rejected."""
    by_type: dict[str, list[TelemetryEvent | ClaimedInvocation]] = defaultdict(list)
    for event in events:
        by_type[event.event].append(event)
    claimed_ids = {event.pk for event in events}
    result = HandleResult()
    for name, typed in by_type.items():
        event_type = event_type_get(name)
        if event_type is None:
            reason = f"unknown event type: {name}"[:MAX_ERROR_LENGTH]
            result.rejected.update(dict.fromkeys((e.pk for e in typed), reason))
            continue
        part = _handle_isolated(event_type, typed)
        result.rejected.update(
            {
                pk: str(reason)[:MAX_ERROR_LENGTH]
                for pk, reason in part.rejected.items()
                if pk in claimed_ids
            }
        )
        result.touched_member_ids |= part.touched_member_ids
        result.late |= part.late & claimed_ids
    return result


# What a claim returns besides ``_EVENT_FIELDS[:-1]``: (SQL expression on PostgreSQL, field
# read elsewhere). A cli_invocation's fold needs two values of its properties, so PostgreSQL
# extracts just those (JSON strings, else NULL) instead of shipping the whole document:
# decoding it and building a model instance per event was most of the consumer's Python
# time. Other event types (and every event elsewhere) get their full properties.
_CLAIM_EXTRA = (
    ("CASE WHEN event <> %s THEN properties END", "properties"),
    (
        "CASE WHEN jsonb_typeof(properties #> '{invocation,command}') = 'string' "
        "THEN properties #>> '{invocation,command}' END",
        None,
    ),
    (
        "CASE WHEN jsonb_typeof(properties -> 'startedAt') = 'string' "
        "THEN properties ->> 'startedAt' END",
        None,
    ),
)


def _events_claim(*, batch_size: int) -> list[TelemetryEvent | ClaimedInvocation]:
    """Take up to ``batch_size`` pending events off the queue, oldest first.

    ``swampclub.dialect.queue_take``: their ``PendingEvent`` rows are deleted under SKIP
    LOCKED, so two consumers never take the same event and never block each other, and the
    events are read by (id, timestamp) from their partitions only. Nothing is written to
    the event rows: an event out of the queue with no ``error`` is processed. The deletions
    only become visible if the whole batch commits (a rollback leaves the events queued).
    On PostgreSQL ``cli_invocation`` events come back as light ``ClaimedInvocation``
    records carrying only what their fold reads.
    """
    rows = queue_take(
        PendingEvent,
        target=TelemetryEvent,
        fields=_EVENT_FIELDS[:-1],
        batch_size=batch_size,
        extra=_CLAIM_EXTRA,
        extra_params=[CLI_INVOCATION],
        range_field="timestamp",
    )
    width = len(_EVENT_FIELDS) - 1
    events: list[TelemetryEvent | ClaimedInvocation] = []
    for row in rows:
        properties, command, started_at = row[width:]
        if properties is None and row[2] == CLI_INVOCATION:
            # id, member_id, timestamp; the properties reduced to what the fold reads.
            light: dict = {"invocation": {"command": command}} if command is not None else {}
            if started_at is not None:
                light["startedAt"] = started_at
            events.append(ClaimedInvocation(row[0], row[5], row[6], light, row[7]))
            continue
        values = dict(zip(_EVENT_FIELDS[:-1], row[:width], strict=True))
        values["properties"] = properties
        events.append(TelemetryEvent(**values, error=""))
    return events


def _events_reject(rejected: dict[int, str]) -> None:
    """Record each rejected event's reason in its ``error`` (one UPDATE of just those rows:
    a non-empty ``error`` is what marks an event rejected)."""
    if not rejected:
        return
    by_reason: dict[str, list[int]] = defaultdict(list)
    for pk, reason in rejected.items():
        by_reason[reason or "rejected"].append(pk)
    TelemetryEvent.objects.filter(id__in=list(rejected)).update(
        # One branch per distinct reason, not per event: rejections share few reasons.
        error=Case(
            *[When(id__in=pks, then=Value(reason)) for reason, pks in by_reason.items()],
            default=Value("rejected"),
        ),
    )


def snapshots_enqueue(*, member_ids: set[int]) -> int:
    """Queue one ``MetricsSnapshot`` per member, copying their current metrics.

    One ``INSERT ... SELECT`` in the database: the metrics never travel through Python. A
    member without a metrics row gets a snapshot of zeros. Returns the number queued.
    """
    if not member_ids:
        return 0
    quote = connection.ops.quote_name
    snapshots = quote(MetricsSnapshot._meta.db_table)
    metrics = quote(MemberMetrics._meta.db_table)
    users = quote(get_user_model()._meta.db_table)
    where, params = ids_in("u.id", sorted(member_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {snapshots}
                (member_id, event_counts, active_dates, total_events, award_points, enqueued_at)
            SELECT u.id, COALESCE(m.event_counts, '{{}}'), COALESCE(m.active_dates, '[]'),
                   COALESCE(m.total_events, 0), COALESCE(m.award_points, 0), %s
            FROM {users} u LEFT JOIN {metrics} m ON m.member_id = u.id
            WHERE {where}
            ORDER BY u.id
            """,  # noqa: S608 - identifiers from model metadata; values are parameters
            [connection.ops.adapt_datetimefield_value(timezone.now()), *params],
        )
        return cursor.rowcount


def _consume_once(*, batch_size: int) -> int:
    """Claim and apply one batch; returns the number of events claimed (0: none pending)."""
    with transaction.atomic(durable=True):
        events = _events_claim(batch_size=batch_size)
        if not events:
            return 0
        result = _dispatch(events)
        _events_reject(result.rejected)
        if result.late:
            # Processed, never counted; staff see how many (docs/ingest.md "Time").
            TelemetryEvent.objects.filter(id__in=sorted(result.late)).update(late=True)
        if snapshots_enqueue(member_ids=result.touched_member_ids):
            score_batch_wake()  # on commit: a rolled-back batch wakes nobody
    return len(events)


def events_consume(*, batch_size: int | None = None) -> int:
    """Drain pending telemetry events; returns how many were processed or rejected.

    Claims up to ``batch_size`` (default ``settings.CONSUMER_BATCH_SIZE``) pending events at
    a time, oldest first, and applies each batch in its own durable transaction (see the
    module docstring); repeats until a batch comes back short, i.e. nothing more was pending
    (or everything else is claimed by another consumer). Records a ``consume`` PipelineRun
    when it handled anything.

    Guarantees: all-or-nothing per batch; an event is folded at most once (only queued
    events are claimed, under SKIP LOCKED, and a committed claim removes them); an unknown
    event type or a poison event is rejected with its reason and never blocks the queue;
    after each committed batch that touched a member, the score batch is woken. A run that
    drained ``QUEUE_VACUUM_AFTER`` events or more then vacuums the queue table (PostgreSQL,
    outside a transaction), so an idle consumer never walks a drained backlog's dead rows.
    """
    size = batch_size or settings.CONSUMER_BATCH_SIZE
    started_at = timezone.now()
    handled = 0
    while True:
        claimed = _consume_once(batch_size=size)
        handled += claimed
        if claimed < size:
            break
    if handled >= QUEUE_VACUUM_AFTER:
        queue_vacuum(PendingEvent)
    if handled:
        pipeline_run_record(kind=RunKind.CONSUME, started_at=started_at, count=handled)
    return handled
