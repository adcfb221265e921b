"""Queueing the senders: one ``webhooks.endpoint_deliver`` message per endpoint.

Messages are sent by task name (routed to the ``webhooks`` queue by
``CELERY_TASK_ROUTES``), so the services never import the task module. A broker error is
logged, never raised: PostgreSQL holds every delivery and beat's sweep queues whatever a
lost message left behind.
"""

import logging
from collections.abc import Iterable

from django.db import transaction

from swampclub.celery import app

logger = logging.getLogger("swampclub.webhooks")

ENDPOINT_DELIVER_TASK = "webhooks.endpoint_deliver"


def endpoints_enqueue(endpoint_ids: Iterable[int], *, countdown: float | None = None) -> None:
    """Queue one sender per endpoint (``countdown``: seconds until it runs)."""
    ids = sorted(set(endpoint_ids))
    if not ids:
        return
    try:
        with app.producer_or_acquire() as producer:
            for endpoint_id in ids:
                app.send_task(
                    ENDPOINT_DELIVER_TASK, (endpoint_id,), countdown=countdown, producer=producer
                )
    except Exception:  # any broker error is only a delay
        logger.warning("could not queue webhook senders; the sweep will", exc_info=True)


def endpoints_enqueue_on_commit(
    endpoint_ids: Iterable[int], *, countdown: float | None = None
) -> None:
    """``endpoints_enqueue`` once the current transaction commits (at once in autocommit)."""
    ids = sorted(set(endpoint_ids))
    if ids:
        transaction.on_commit(lambda: endpoints_enqueue(ids, countdown=countdown))
