"""Folding ``cli_invocation`` events into ``MemberMetrics`` (the consumer's own handler)."""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.utils import timezone

from scoring.models import MemberMetrics, TelemetryEvent
from scoring.registry import HandleResult
from swampclub.dialect import rows_merge

CLI_INVOCATION = "cli_invocation"

_INSERT_COLUMNS = [
    "member_id",
    "event_counts",
    "active_dates",
    "total_events",
    "award_points",
    "first_event_at",
    "last_event_at",
    "updated_at",
]
_FOLD_FIELDS = [
    "event_counts",
    "active_dates",
    "total_events",
    "first_event_at",
    "last_event_at",
    "updated_at",
]


class ClaimedInvocation(NamedTuple):
    """A claimed ``cli_invocation`` as the consumer hands it to the fold on PostgreSQL.

    Only what the fold reads: ``properties`` holds just ``invocation.command`` and
    ``startedAt`` (when they are strings), extracted by the claim statement. Building a
    ``TelemetryEvent`` and decoding the whole document per event cost more than the fold.
    """

    pk: int
    member_id: int
    timestamp: datetime
    properties: dict[str, Any]
    received_at: datetime | None = None
    event: str = CLI_INVOCATION


@dataclass
class _Fold:
    """What one batch adds to one member's metrics."""

    counts: Counter[str] = field(default_factory=Counter)
    dates: set[str] = field(default_factory=set)
    total: int = 0
    first: datetime | None = None
    last: datetime | None = None


def command_group(properties: Any) -> str | None:
    """The command group of a ``cli_invocation``: ``invocation.command`` lower-cased.

    None when the event has no usable command (ingest refuses those; the consumer rejects
    any that got stored anyway, e.g. by an older ingest).
    """
    if not isinstance(properties, Mapping):
        return None
    invocation = properties.get("invocation")
    if not isinstance(invocation, Mapping):
        return None
    command = invocation.get("command")
    if not isinstance(command, str) or not command.strip():
        return None
    return command.lower()


def event_time(properties: Any, timestamp: datetime) -> datetime:
    """When the invocation happened, in UTC: ``startedAt`` if it is a valid ISO-8601
    date-time (naive means UTC), else the event's ``timestamp``."""
    started = properties.get("startedAt") if isinstance(properties, Mapping) else None
    if isinstance(started, str):
        try:
            parsed = datetime.fromisoformat(started)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    return timestamp.astimezone(UTC)


def metrics_fold_cli_invocations(
    events: Sequence[TelemetryEvent | ClaimedInvocation],
) -> HandleResult:
    """Fold claimed ``cli_invocation`` events into their members' ``MemberMetrics``.

    Per member: +1 in ``event_counts`` for each event's command group, the UTC date of each
    event (``startedAt``, else ``timestamp``) added to ``active_dates`` (a sorted set),
    ``total_events`` += events, and first/last event time widened. An event without a usable
    ``invocation.command`` is rejected with the reason; an event that was older than
    ``TELEMETRY_MAX_AGE_DAYS`` when it arrived is *late*: processed, never counted (an
    offline CLI spools for days, not months; a backfilled streak is not activity). The
    others apply.

    Set-based, whatever the batch size: the batch is aggregated per member in Python, then
    merged into the stored rows by one ``INSERT ... ON CONFLICT DO UPDATE`` on PostgreSQL
    (the merge of counts and dates runs in SQL against the locked current row) or, elsewhere,
    by insert-missing / lock / upsert. Either way the row lock makes a concurrent consumer
    (or award grant) touching the same member wait, so no increment is lost; rows are
    written in member id order, so two consumers cannot deadlock on them. ``award_points``
    is never written here. Runs inside the consumer's batch transaction.
    """
    result = HandleResult()
    folds: dict[int, _Fold] = {}
    max_age = timedelta(days=settings.TELEMETRY_MAX_AGE_DAYS)
    now = timezone.now()
    for event in events:
        group = command_group(event.properties)
        if group is None:
            result.rejected[event.pk] = "properties.invocation.command: must be a non-empty string"
            continue
        at = event_time(event.properties, event.timestamp)
        if at < (event.received_at or now) - max_age:
            result.late.add(event.pk)
            continue
        fold = folds.setdefault(event.member_id, _Fold())
        fold.counts[group] += 1
        fold.dates.add(at.date().isoformat())
        fold.total += 1
        fold.first = at if fold.first is None else min(fold.first, at)
        fold.last = at if fold.last is None else max(fold.last, at)
    if not folds:
        return result

    ids = sorted(folds)
    _fold_write(folds, ids)
    result.touched_member_ids.update(ids)
    return result


# The batch's deltas arrive as EXCLUDED; t0 is the stored row, locked by the upsert and read
# at its latest committed version (a concurrent writer is waited for, never overwritten).
_FOLD_MERGE = """
ON CONFLICT (member_id) DO UPDATE SET
    event_counts = (
        SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb) FROM (
            SELECT k, sum(n)::bigint AS n FROM (
                SELECT key AS k, value::bigint AS n FROM jsonb_each_text(t0.event_counts)
                UNION ALL
                SELECT key, value::bigint FROM jsonb_each_text(EXCLUDED.event_counts)
            ) AS parts GROUP BY k
        ) AS summed
    ),
    active_dates = (
        SELECT coalesce(jsonb_agg(d ORDER BY d), '[]'::jsonb) FROM (
            SELECT value AS d FROM jsonb_array_elements_text(t0.active_dates)
            UNION
            SELECT value FROM jsonb_array_elements_text(EXCLUDED.active_dates)
        ) AS dates
    ),
    total_events = t0.total_events + EXCLUDED.total_events,
    first_event_at = LEAST(t0.first_event_at, EXCLUDED.first_event_at),
    last_event_at = GREATEST(t0.last_event_at, EXCLUDED.last_event_at),
    updated_at = EXCLUDED.updated_at
"""


def _fold_write(folds: dict[int, _Fold], ids: list[int]) -> None:
    """On PostgreSQL one statement: insert new members' rows, merge the deltas into existing
    ones (``_FOLD_MERGE``); elsewhere ``_fold_write_portable``."""
    now = timezone.now()
    rows = [
        (
            i,
            dict(folds[i].counts),
            sorted(folds[i].dates),
            folds[i].total,
            0,
            folds[i].first,
            folds[i].last,
            now,
        )
        for i in ids
    ]
    rows_merge(
        MemberMetrics,
        _INSERT_COLUMNS,
        rows,
        on_conflict=_FOLD_MERGE,
        portable=lambda: _fold_write_portable(folds, ids),
    )


def _fold_write_portable(folds: dict[int, _Fold], ids: list[int]) -> None:
    """Three statements: insert missing rows, lock them all, upsert the merged rows."""
    # Create the rows first so there is always a row to lock: two consumers folding the
    # first events of one member would otherwise both "insert" and the second would
    # overwrite the first's counts.
    MemberMetrics.objects.bulk_create(
        [MemberMetrics(member_id=i) for i in ids], ignore_conflicts=True
    )
    current = {
        m.member_id: m
        for m in MemberMetrics.objects.select_for_update()
        .filter(member_id__in=ids)
        .order_by("member_id")
    }
    # Full rows, not .only(): the upsert below writes every column in its INSERT part, and a
    # deferred column would cost one query per row to load.
    rows = []
    for member_id in ids:
        fold, row = folds[member_id], current[member_id]
        counts = Counter(row.event_counts)
        counts.update(fold.counts)
        row.event_counts = dict(sorted(counts.items()))
        row.active_dates = sorted(set(row.active_dates) | fold.dates)
        row.total_events += fold.total
        if row.first_event_at is None or (fold.first and fold.first < row.first_event_at):
            row.first_event_at = fold.first
        if row.last_event_at is None or (fold.last and fold.last > row.last_event_at):
            row.last_event_at = fold.last
        rows.append(row)
    MemberMetrics.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["member"], update_fields=_FOLD_FIELDS
    )
