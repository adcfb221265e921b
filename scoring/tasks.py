"""Thin Celery tasks: each takes JSON primitives, calls one service and returns a count."""

import logging
import threading
import time

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


# A wake-up only says "look at PostgreSQL": the consumer and the score batch each loop until
# nothing is pending, and beat runs them anyway (every 5 s and 30 s). So one publish per
# task per process and interval is enough; publishing on every request cost about a
# millisecond of CPU per ingest request (and, with the broker down, a connect timeout each).
WAKE_INTERVAL_S = 1.0
_clock = time.monotonic
_last_wake: dict[str, float] = {}
_wake_lock = threading.Lock()


def wake_debounce_reset() -> None:
    """Forget when each task was last woken, so the next wake publishes at once."""
    with _wake_lock:
        _last_wake.clear()


def _send(task, **options) -> None:
    # At most one publish per task per WAKE_INTERVAL_S in this process (monotonic clock,
    # so a wall-clock step never silences wakes). The slot is taken even when the publish
    # fails: a broker outage then costs one request per interval a timeout, not every one.
    now = _clock()
    with _wake_lock:
        last = _last_wake.get(task.name)
        if last is not None and now - last < WAKE_INTERVAL_S:
            return
        _last_wake[task.name] = now
    # A broker outage must never fail the request that committed the work: PostgreSQL holds
    # the pending rows and beat picks them up once the broker is back.
    try:
        task.apply_async(**options)
    except Exception:  # any broker error is only a delay
        logger.warning("could not wake %s; beat will pick the work up", task.name, exc_info=True)


def consumer_wake() -> None:
    """After the current transaction commits, ask a worker to drain events now.

    Debounced: at most one message per ``WAKE_INTERVAL_S`` per process; the worker drains
    everything pending, and beat covers events committed just after it finished.
    """
    transaction.on_commit(lambda: _send(events_consume_task, expires=60))


def score_batch_wake() -> None:
    """After the current transaction commits, ask a worker to run the score batch now.

    Debounced like ``consumer_wake``.
    """
    transaction.on_commit(lambda: _send(scores_process_batch_task, expires=120))


@shared_task(name="scoring.rescore_job_run", acks_late=True)
def rescore_job_run_task(job_id: int) -> int:
    """Run a queued rescore job (see ``scoring.rescore.rescore_job_run``)."""
    from scoring.rescore import rescore_job_run

    return rescore_job_run(job_id=job_id)
