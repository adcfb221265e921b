"""The StatsConsumer (SPEC §5): drains pending telemetry events into metrics and snapshots.

One durable transaction per batch: claim pending events (``FOR UPDATE SKIP LOCKED``), hand
each event type's events to its registered handler, mark every claimed event processed or
rejected, enqueue one ``MetricsSnapshot`` per touched member. A crash anywhere rolls the
whole batch back to pending; a committed batch is never claimed again (only pending rows
are claimed), so redelivered tasks and re-runs fold nothing twice.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from scoring.models import MemberMetrics, MetricsSnapshot, TelemetryEvent
from scoring.pipeline import RunKind, pipeline_run_record
from scoring.registry import EventType, HandleResult, event_type_get
from scoring.tasks import score_batch_wake

logger = logging.getLogger("swampclub.consumer")

# What handlers may read from a claimed event; ``status``, ``error`` and ``processed_at``
# are left out (the consumer writes them with one UPDATE at the end).
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


def _handle_isolated(event_type: EventType, events: Sequence[TelemetryEvent]) -> HandleResult:
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
            return event_type.handle(events)
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
    return result


def _dispatch(events: Sequence[TelemetryEvent]) -> HandleResult:
    """Hand each event type's events to its handler; unknown types are rejected."""
    by_type: dict[str, list[TelemetryEvent]] = defaultdict(list)
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
    return result


def _events_mark(events: Sequence[TelemetryEvent], rejected: dict[int, str]) -> None:
    """Mark every claimed event processed or rejected (with its reason) in one UPDATE."""
    ids = [event.pk for event in events]
    if not rejected:
        TelemetryEvent.objects.filter(id__in=ids).update(
            status=TelemetryEvent.Status.PROCESSED, error="", processed_at=timezone.now()
        )
        return
    by_reason: dict[str, list[int]] = defaultdict(list)
    for pk, reason in rejected.items():
        by_reason[reason].append(pk)
    TelemetryEvent.objects.filter(id__in=ids).update(
        status=Case(
            When(id__in=list(rejected), then=Value(TelemetryEvent.Status.REJECTED)),
            default=Value(TelemetryEvent.Status.PROCESSED),
        ),
        # One branch per distinct reason, not per event: rejections share few reasons.
        error=Case(
            *[When(id__in=pks, then=Value(reason)) for reason, pks in by_reason.items()],
            default=Value(""),
        ),
        processed_at=timezone.now(),
    )


def snapshots_enqueue(*, member_ids: set[int]) -> int:
    """Queue one ``MetricsSnapshot`` per member, copying their current metrics (two queries).

    A member without a metrics row gets a snapshot of zeros. Returns the number queued.
    """
    if not member_ids:
        return 0
    now = timezone.now()
    metrics = {
        m["member_id"]: m
        for m in MemberMetrics.objects.filter(member_id__in=member_ids).values(
            "member_id", "event_counts", "active_dates", "total_events", "award_points"
        )
    }
    snapshots = []
    for member_id in sorted(member_ids):
        m = metrics.get(member_id, {})
        snapshots.append(
            MetricsSnapshot(
                member_id=member_id,
                event_counts=m.get("event_counts", {}),
                active_dates=m.get("active_dates", []),
                total_events=m.get("total_events", 0),
                award_points=m.get("award_points", 0),
                enqueued_at=now,
            )
        )
    MetricsSnapshot.objects.bulk_create(snapshots)
    return len(snapshots)


def _consume_once(*, batch_size: int) -> int:
    """Claim and apply one batch; returns the number of events claimed (0: none pending)."""
    with transaction.atomic(durable=True):
        # SKIP LOCKED: rows another consumer has claimed are skipped, not waited on, so two
        # consumers never take the same event and never block each other. The partial index
        # on pending rows (scoring_event_pending_idx) keeps this an index scan.
        events = list(
            TelemetryEvent.objects.select_for_update(skip_locked=True)
            .filter(status=TelemetryEvent.Status.PENDING)
            .order_by("id")
            .only(*_EVENT_FIELDS)[:batch_size]
        )
        if not events:
            return 0
        result = _dispatch(events)
        _events_mark(events, result.rejected)
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

    Guarantees: all-or-nothing per batch; an event is folded at most once (only pending rows
    are claimed, under SKIP LOCKED); an unknown event type or a poison event is rejected
    with its reason and never blocks the queue; after each committed batch that touched a
    member, the score batch is woken.
    """
    size = batch_size or settings.CONSUMER_BATCH_SIZE
    started_at = timezone.now()
    handled = 0
    while True:
        claimed = _consume_once(batch_size=size)
        handled += claimed
        if claimed < size:
            break
    if handled:
        pipeline_run_record(kind=RunKind.CONSUME, started_at=started_at, count=handled)
    return handled
