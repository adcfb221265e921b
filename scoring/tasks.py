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
