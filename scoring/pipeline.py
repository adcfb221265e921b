"""Bookkeeping shared by the pipeline stages: the ``PipelineRun`` health rows."""

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from scoring.models import PipelineRun


class RunKind:
    """The ``PipelineRun.kind`` of each stage."""

    CONSUME = "consume"
    SCORE_BATCH = "score_batch"
    WORKER = "worker"


def pipeline_run_record(*, kind: str, started_at: datetime, count: int) -> None:
    """Record one finished run of ``kind``: start/finish time, its count, one more run.

    Safe under concurrency: the row is created with ``ON CONFLICT DO NOTHING`` and then
    incremented with ``runs = runs + 1`` in one UPDATE, so two workers finishing at once
    both count and neither fails on the unique ``kind``.
    """
    PipelineRun.objects.bulk_create([PipelineRun(kind=kind, runs=0)], ignore_conflicts=True)
    PipelineRun.objects.filter(kind=kind).update(
        last_started_at=started_at,
        last_finished_at=timezone.now(),
        last_count=count,
        runs=F("runs") + 1,
    )
