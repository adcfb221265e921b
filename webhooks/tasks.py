"""Thin Celery tasks of the webhooks app, all on the ``webhooks`` queue (CELERY_TASK_ROUTES),
so deliveries never wait behind the pipeline and the pipeline never waits behind them."""

import logging

from celery import shared_task

from swampclub.celery import app
from webhooks.services import (
    deliveries_sweep,
    delivery_send,
    endpoint_deliver,
    events_dispatch,
    webhooks_prune,
)

logger = logging.getLogger("swampclub.webhooks")


@shared_task(name="webhooks.events_dispatch", acks_late=True)
def events_dispatch_task() -> int:
    """Create deliveries for newly committed outbox events (see ``events_dispatch``)."""
    return events_dispatch()


@shared_task(name="webhooks.endpoint_deliver", acks_late=True)
def endpoint_deliver_task(endpoint_id: int) -> int:
    """Send one endpoint's claimable deliveries in batches (see ``endpoint_deliver``)."""
    return endpoint_deliver(endpoint_id=endpoint_id)


@shared_task(name="webhooks.delivery_send", acks_late=True)
def delivery_send_task(delivery_id: int) -> str:
    """One attempt at one delivery (see ``webhooks.services.delivery_send``)."""
    return delivery_send(delivery_id=delivery_id)


@shared_task(name="webhooks.deliveries_sweep", acks_late=True)
def deliveries_sweep_task() -> int:
    """Fan out and re-queue whatever was left behind (see ``deliveries_sweep``)."""
    return deliveries_sweep()


@shared_task(name="webhooks.prune", acks_late=True)
def prune_task() -> dict[str, int]:
    """Delete delivered rows past the retention (see ``webhooks_prune``)."""
    return webhooks_prune()


def outbox_committed() -> None:
    """The outbox listener: a commit wrote events, so fan them out now.

    A broker error is logged, never raised (the request already committed; the sweep
    dispatches the events within ``WEBHOOK_SWEEP_INTERVAL_S``).
    """
    try:
        events_dispatch_task.apply_async(expires=300)
    except Exception:  # any broker error is only a delay
        logger.warning("could not queue the webhook dispatch; the sweep will", exc_info=True)


def deliveries_enqueue(delivery_ids: list[int], *, countdown: float | None = None) -> None:
    """Queue one ``webhooks.delivery_send`` task per delivery (broker errors are logged:
    PostgreSQL holds the deliveries and the sweep re-queues them). The services queue
    per-endpoint senders instead; this sends single deliveries by hand."""
    try:
        with app.producer_or_acquire() as producer:
            for delivery_id in delivery_ids:
                delivery_send_task.apply_async(
                    (delivery_id,),
                    countdown=countdown,  # type: ignore[arg-type]  # None: no delay
                    producer=producer,
                )
    except Exception:
        logger.warning("could not queue webhook deliveries; the sweep will", exc_info=True)
