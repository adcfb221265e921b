"""Thin Celery tasks: each takes JSON primitives, calls one service and returns a count."""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable

from celery import shared_task
from django.db import transaction

from swampclub.outages import Dependency

logger = logging.getLogger("swampclub.tasks")

# The broker as the wake-ups see it; an outage is logged once, not per publish.
broker = Dependency(
    "broker",
    logger,
    consequence="wake-ups are skipped and beat picks the work up",
    unit="wake-up",
)


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


@shared_task(name="scoring.telemetry_partitions", acks_late=True)
def telemetry_partitions_task() -> int:
    """Create the events table's partitions ahead and retire old ones (``scoring.partitions``,
    ``scoring.retention``); return how many partitions were created or retired."""
    from scoring.partitions import partitions_create_ahead
    from scoring.retention import partitions_retire

    return len(partitions_create_ahead()) + len(partitions_retire())


# A wake-up only says "look at PostgreSQL": the consumer and the score batch each loop until
# nothing is pending, and beat runs them anyway (every 5 s and 30 s). So one publish per
# task per process and interval is enough; publishing on every request cost about a
# millisecond of CPU per ingest request (and, with the broker down, a connect timeout each).
#
# The debounce fires on both edges: the first wake of a quiet spell publishes at once
# (leading edge), and any wake suppressed inside the interval schedules exactly one more
# publish at the interval's end (trailing edge), from a timer thread. Without the trailing
# publish, the last events of a burst waited for beat's next tick (up to 30 s for the score
# batch); with it they are picked up at most WAKE_INTERVAL_S after the last wake.
WAKE_INTERVAL_S = 1.0
_clock = time.monotonic
_last_wake: dict[str, float] = {}
_trailing: dict[str, threading.Timer] = {}
_wake_lock = threading.Lock()


def _start_timer(delay: float, function: Callable[[], None]) -> threading.Timer:
    """Run ``function`` after ``delay`` seconds in a daemon thread (a test replaces this)."""
    timer = threading.Timer(delay, function)
    timer.daemon = True  # a wake pending at exit is only a delay: beat covers it
    timer.start()
    return timer


def wake_debounce_reset() -> None:
    """Forget when each task was last woken and cancel the scheduled trailing wakes, so the
    next wake publishes at once."""
    with _wake_lock:
        for timer in _trailing.values():
            timer.cancel()
        _trailing.clear()
        _last_wake.clear()


def _after_fork_in_child() -> None:
    # A forked child (a gunicorn or Celery pool worker) inherits the parent's bookkeeping but
    # not its timer threads: forget both, or a pending entry would block trailing wakes.
    global _wake_lock
    _wake_lock = threading.Lock()
    _trailing.clear()
    _last_wake.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _publish(task, options: dict) -> None:
    # A broker outage must never fail the request that committed the work: PostgreSQL holds
    # the pending rows and beat picks them up once the broker is back.
    try:
        task.apply_async(**options)
    except Exception as exc:  # any broker error is only a delay
        broker.failed(exc, what=f"could not wake {task.name}")
        return
    broker.succeeded()


def _send_trailing(task, options: dict) -> None:
    """The trailing edge: publish once for every wake suppressed in the last interval."""
    with _wake_lock:
        _trailing.pop(task.name, None)
        _last_wake[task.name] = _clock()
    _publish(task, options)


def _send(task, **options) -> None:
    # At most one publish per task per WAKE_INTERVAL_S in this process (monotonic clock,
    # so a wall-clock step never silences wakes), plus one trailing publish when wakes were
    # suppressed. The slot is taken even when the publish fails: a broker outage then costs
    # one request per interval a timeout, not every one (trailing publishes run in the
    # timer thread, never in a request).
    now = _clock()
    with _wake_lock:
        last = _last_wake.get(task.name)
        if last is not None and now - last < WAKE_INTERVAL_S:
            if task.name not in _trailing:
                delay = max(last + WAKE_INTERVAL_S - now, 0.0)
                _trailing[task.name] = _start_timer(
                    delay, functools.partial(_send_trailing, task, options)
                )
            return
        _last_wake[task.name] = now
    _publish(task, options)


def consumer_wake() -> None:
    """After the current transaction commits, ask a worker to drain events now.

    Debounced per process: the first wake publishes at once, later ones inside
    ``WAKE_INTERVAL_S`` are folded into one publish at the interval's end, so the last
    events of a burst are drained within about a second, never left to beat.
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
