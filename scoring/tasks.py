"""Thin Celery tasks: each takes JSON primitives, calls one service and returns a count.

The wake-ups that publish the pipeline tasks live in ``scoring.wakeups`` (by task name), so
the services import nothing from here.
"""

from celery import shared_task
from django.utils import timezone

from scoring.consumer import events_consume
from scoring.partitions import partitions_create_ahead
from scoring.pipeline import RunKind, pipeline_run_record
from scoring.rescore import rescore_job_run
from scoring.retention import partitions_retire
from scoring.scores import scores_process_batch
from scoring.wakeups import CONSUME_TASK, SCORE_BATCH_TASK


@shared_task(name=CONSUME_TASK, acks_late=True)
def events_consume_task() -> int:
    """Drain pending telemetry events (see ``scoring.consumer.events_consume``)."""
    return events_consume()


@shared_task(name=SCORE_BATCH_TASK, acks_late=True)
def scores_process_batch_task() -> int:
    """Score every member with a pending snapshot (see ``scoring.scores``)."""
    return scores_process_batch()


@shared_task(name="scoring.heartbeat", acks_late=True)
def heartbeat_task() -> int:
    """Record that a worker is alive and consuming (PipelineRun ``worker``), for staff health.

    Beat sends it every 30 s with a short ``expires``: a heartbeat no worker picked up in
    time is dropped, so a stale ``worker`` row means no worker is running.
    """
    pipeline_run_record(kind=RunKind.WORKER, started_at=timezone.now(), count=0)
    return 1


@shared_task(name="scoring.telemetry_partitions", acks_late=True)
def telemetry_partitions_task() -> int:
    """Create the events table's partitions ahead and retire old ones (``scoring.partitions``,
    ``scoring.retention``); return how many partitions were created or retired."""
    return len(partitions_create_ahead()) + len(partitions_retire())


@shared_task(name="scoring.rescore_job_run", acks_late=True)
def rescore_job_run_task(job_id: int) -> int:
    """Run a queued rescore job (see ``scoring.rescore.rescore_job_run``)."""
    return rescore_job_run(job_id=job_id)
