"""Thin Celery tasks: each takes JSON primitives, calls one service and returns a count."""

import logging

from celery import shared_task
from django.db import transaction

logger = logging.getLogger("swampclub.tasks")


@shared_task(name="scoring.events_consume", acks_late=True)
def events_consume_task() -> int:
    """Drain pending telemetry events (see ``scoring.consumer.events_consume``)."""
    from scoring.consumer import events_consume

    return events_consume()


@shared_task(name="scoring.scores_process_batch", acks_late=True)
def scores_process_batch_task() -> int:
    """Score every member with a pending snapshot (see ``scoring.scores``)."""
    from scoring.scores import scores_process_batch

    return scores_process_batch()


@shared_task(name="scoring.heartbeat", acks_late=True)
def heartbeat_task() -> int:
    """Record that a worker is alive and consuming (PipelineRun ``worker``), for staff health.

    Beat sends it every 30 s with a short ``expires``: a heartbeat no worker picked up in
    time is dropped, so a stale ``worker`` row means no worker is running.
    """
    from django.utils import timezone

    from scoring.pipeline import RunKind, pipeline_run_record

    pipeline_run_record(kind=RunKind.WORKER, started_at=timezone.now(), count=0)
    return 1


def _send(task, **options) -> None:
    # A broker outage must never fail the request that committed the work: PostgreSQL holds
    # the pending rows and beat picks them up once the broker is back.
    try:
        task.apply_async(**options)
    except Exception:  # any broker error is only a delay
        logger.warning("could not wake %s; beat will pick the work up", task.name, exc_info=True)


def consumer_wake() -> None:
    """After the current transaction commits, ask a worker to drain events now."""
    transaction.on_commit(lambda: _send(events_consume_task, expires=60))


def score_batch_wake() -> None:
    """After the current transaction commits, ask a worker to run the score batch now."""
    transaction.on_commit(lambda: _send(scores_process_batch_task, expires=120))
