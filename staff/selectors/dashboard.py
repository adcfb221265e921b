"""Reads for the staff dashboard: pipeline health, the latest awards and tier changes.

Each function issues a fixed number of queries whatever the number of rows, so the
dashboard stays fast on a large ledger and during a backlog.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from awards.models import Award
from scoring.drift import ClientsSummary, clients_summary
from scoring.models import MetricsSnapshot, PendingEvent, PipelineRun, TelemetryEvent, TierChange

# A worker that wrote its heartbeat within this many seconds counts as answering.
WORKER_ALIVE_S = 90


@dataclass(frozen=True)
class StageStatus:
    """One pipeline stage's last run, judged against how often it should run."""

    kind: str
    label: str
    run: PipelineRun | None
    state: str  # "ok", "late" or "never"
    last_seen: datetime | None


@dataclass(frozen=True)
class PipelineHealth:
    """What the staff dashboard's health panel shows."""

    # Capped at COUNT_CAP + 1 (shown as "10,000+").
    pending_events: int
    rejected_events: int
    pending_snapshots: int
    oldest_pending_at: datetime | None
    stages: list[StageStatus]
    worker_alive: bool
    worker_last_seen: datetime | None
    recent_rejections: list[TelemetryEvent]
    checked_at: datetime


def _last_seen(run: PipelineRun | None) -> datetime | None:
    if run is None:
        return None
    moments = [m for m in (run.last_started_at, run.last_finished_at) if m is not None]
    return max(moments) if moments else None


# Queue counts above this are shown as "10,000+".
COUNT_CAP = 10_000


def _capped_count(queryset: QuerySet) -> int:
    """``min(count, COUNT_CAP + 1)`` in one query that reads at most COUNT_CAP + 1 rows."""
    return queryset.values("pk")[: COUNT_CAP + 1].count()


def pipeline_health(*, now: datetime | None = None) -> PipelineHealth:
    """Queue sizes, the last run of each stage and whether a worker answered recently.

    A stage is "late" when it has not run for three of its beat intervals (at least a
    minute), "never" when it has no run recorded; the worker is alive when its heartbeat is
    younger than ``WORKER_ALIVE_S`` seconds.
    """
    now = now or timezone.now()
    # Counts stop at COUNT_CAP: a backlog is exactly when this page is needed, and counting
    # every pending row would make it slower the longer the backlog grows. Each count reads
    # its own narrow table or partial index (queued / rejected rows only), never the
    # processed bulk.
    pending_count = _capped_count(PendingEvent.objects.all())
    rejected = _capped_count(TelemetryEvent.objects.rejected())
    pending_snapshots = _capped_count(MetricsSnapshot.objects.filter(processed_at__isnull=True))
    # The oldest pending event is the queue's first (lowest id); read by (id, timestamp),
    # from its partition only.
    first = PendingEvent.objects.order_by("event_id").values_list("event_id", "timestamp").first()
    oldest = None
    if first is not None:
        oldest = (
            TelemetryEvent.objects.filter(id=first[0], timestamp=first[1])
            .values_list("received_at", flat=True)
            .first()
        )
    runs = {run.kind: run for run in PipelineRun.objects.filter(kind__in=STAGES)}
    stages = []
    for kind, (label, interval) in STAGES.items():
        run = runs.get(kind)
        seen = _last_seen(run)
        allowed = timedelta(seconds=max(3 * interval(), 60))
        if seen is None:
            state = "never"
        elif now - seen > allowed:
            state = "late"
        else:
            state = "ok"
        stages.append(StageStatus(kind, label, run, state, seen))
    worker_seen = _last_seen(runs.get("worker"))
    rejections = list(
        TelemetryEvent.objects.rejected()
        .select_related("member")
        .only("id", "event", "insert_id", "error", "received_at", "member__username")
        .order_by("-id")[:5]
    )
    return PipelineHealth(
        pending_events=pending_count,
        rejected_events=rejected,
        pending_snapshots=pending_snapshots,
        oldest_pending_at=oldest,
        stages=stages,
        worker_alive=worker_seen is not None
        and now - worker_seen < timedelta(seconds=WORKER_ALIVE_S),
        worker_last_seen=worker_seen,
        recent_rejections=rejections,
        checked_at=now,
    )


STAGES = {
    "consume": ("Event consumer", lambda: settings.CONSUME_INTERVAL_S),
    "score_batch": ("Score batch", lambda: settings.SCORE_BATCH_INTERVAL_S),
    "worker": ("Worker heartbeat", lambda: WORKER_ALIVE_S // 3),
}


def awards_recent(*, limit: int = 10) -> list[Award]:
    """The latest awards with recipient, granter and any revocation, newest first."""
    return list(
        Award.objects.select_related("recipient", "granted_by", "revocation").order_by(
            "-granted_at", "-id"
        )[:limit]
    )


def tier_changes_recent(*, limit: int = 10) -> list[TierChange]:
    """The latest tier changes of any member, newest first."""
    return list(TierChange.objects.select_related("member").order_by("-changed_at", "-id")[:limit])


# The clients panel aggregates every event received in the last week (tens of thousands of
# rows at the live rate): computed at most once per CLIENTS_CACHE_S, it refreshes itself on
# an interval anyway.
CLIENTS_CACHE_S = 30
CLIENTS_CACHE_KEY = "staff:clients-summary:v1"


def clients_summary_cached() -> ClientsSummary:
    """``scoring.drift.clients_summary()``, cached for ``CLIENTS_CACHE_S`` seconds."""
    summary = cache.get(CLIENTS_CACHE_KEY)
    if not isinstance(summary, ClientsSummary):
        summary = clients_summary()
        cache.set(CLIENTS_CACHE_KEY, summary, CLIENTS_CACHE_S)
    return summary
