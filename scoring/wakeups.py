"""Wake-ups: "look at PostgreSQL now" messages for the consumer and the score batch.

A wake-up is only a hint: the consumer and the score batch each loop until nothing is
pending, and beat runs them anyway (every 5 s and 30 s). The messages are published by task
name (``app.send_task``), so the services that wake a stage never import the task modules
that call them (no import cycle between ``scoring.consumer`` and ``scoring.tasks``).

Debounced per process and task: the first wake of a quiet spell publishes at once (leading
edge), and any wake suppressed inside ``WAKE_INTERVAL_S`` schedules exactly one more publish
at the interval's end (trailing edge), from a timer thread. Without the trailing publish the
last events of a burst waited for beat's next tick (up to 30 s for the score batch); with it
they are picked up at most ``WAKE_INTERVAL_S`` after the last wake. Publishing on every
request cost about a millisecond of CPU per ingest request (and, with the broker down, a
connect timeout each).
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction

from swampclub.celery import app
from swampclub.outages import Dependency

# The task names (pinned: a renamed task strands every message and beat entry).
CONSUME_TASK = "scoring.events_consume"
SCORE_BATCH_TASK = "scoring.scores_process_batch"
RESCORE_JOB_TASK = "scoring.rescore_job_run"

# The logger keeps the tasks' name: operators grep for it.
logger = logging.getLogger("swampclub.tasks")

# The broker as the wake-ups see it; an outage is logged once, not per publish.
broker = Dependency(
    "broker",
    logger,
    consequence="wake-ups are skipped and beat picks the work up",
    unit="wake-up",
)

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


def _publish(name: str, options: dict) -> None:
    # A broker outage must never fail the request that committed the work: PostgreSQL holds
    # the pending rows and beat picks them up once the broker is back.
    try:
        app.send_task(name, **options)
    except Exception as exc:  # any broker error is only a delay
        broker.failed(exc, what=f"could not wake {name}")
        return
    broker.succeeded()


def _send_trailing(name: str, options: dict) -> None:
    """The trailing edge: publish once for every wake suppressed in the last interval."""
    with _wake_lock:
        _trailing.pop(name, None)
        _last_wake[name] = _clock()
    _publish(name, options)


def _send(name: str, **options: Any) -> None:
    # At most one publish per task per WAKE_INTERVAL_S in this process (monotonic clock,
    # so a wall-clock step never silences wakes), plus one trailing publish when wakes were
    # suppressed. The slot is taken even when the publish fails: a broker outage then costs
    # one request per interval a timeout, not every one (trailing publishes run in the
    # timer thread, never in a request).
    now = _clock()
    with _wake_lock:
        last = _last_wake.get(name)
        if last is not None and now - last < WAKE_INTERVAL_S:
            if name not in _trailing:
                delay = max(last + WAKE_INTERVAL_S - now, 0.0)
                _trailing[name] = _start_timer(
                    delay, functools.partial(_send_trailing, name, options)
                )
            return
        _last_wake[name] = now
    _publish(name, options)


def consumer_wake() -> None:
    """After the current transaction commits, ask a worker to drain events now.

    Debounced per process: the first wake publishes at once, later ones inside
    ``WAKE_INTERVAL_S`` are folded into one publish at the interval's end, so the last
    events of a burst are drained within about a second, never left to beat.
    """
    transaction.on_commit(lambda: _send(CONSUME_TASK, expires=60))


def score_batch_wake() -> None:
    """After the current transaction commits, ask a worker to run the score batch now.

    Debounced like ``consumer_wake``.
    """
    transaction.on_commit(lambda: _send(SCORE_BATCH_TASK, expires=120))


def rescore_job_queue(job_id: int) -> None:
    """After the current transaction commits, queue ``scoring.rescore_job_run`` for the job
    (by name: ``scoring.rescore`` never imports ``scoring.tasks``, which imports it).

    Not debounced and not guarded: each job is queued once, and a broker error reaches the
    caller as it did when the task was queued directly.
    """
    transaction.on_commit(lambda: app.send_task(RESCORE_JOB_TASK, args=(job_id,)))
