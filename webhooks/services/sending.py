"""Sending deliveries: a stream of batches per endpoint (the worker's path) or one delivery.

``endpoint_deliver`` is what ``webhooks.endpoint_deliver`` runs. It claims the endpoint's
claimable deliveries in batches (``WEBHOOK_BATCH_SIZE``, one statement, ``SKIP LOCKED`` on
PostgreSQL) and sends them with ``WEBHOOK_ENDPOINT_CONCURRENCY`` threads over the
endpoint's keep-alive connections. While one batch is on the wire the next is claimed and
the previous one's outcomes are written (one statement per batch), so the database work
overlaps the HTTP work. A run ends when nothing is claimable, when the endpoint is in
trouble (see ``webhooks.services.attempts``), or after ``WEBHOOK_RUN_BUDGET_S``; the endpoint
is then queued again if work is claimable (behind other endpoints' work), else at its
earliest retry. On PostgreSQL one run per endpoint at a time (a session advisory lock,
released if the worker dies), so the thread count bounds the endpoint's concurrency.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import claims
from webhooks.services.attempts import Batch, RunState
from webhooks.services.queueing import endpoints_enqueue_on_commit

State = WebhookDelivery.State
LOCK_NAMESPACE = 14_140  # pg_try_advisory_lock(namespace, endpoint id)


@contextmanager
def _endpoint_lock(endpoint_id: int) -> Iterator[bool]:
    """Hold the endpoint's sender lock (PostgreSQL); yields False when another run has it."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = [LOCK_NAMESPACE, endpoint_id]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", key)
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", key)


def _queue_follow_up(endpoint_id: int, *, sent: bool) -> None:
    """After a run: queue the endpoint again if something is claimable now (it became so
    while the run held the lock, when another sender's message found the lock taken, or the
    run used its budget); else, after a run that sent, at the earliest retry."""
    now = timezone.now()
    if claims.claimable_exists(endpoint_id=endpoint_id, now=now):
        endpoints_enqueue_on_commit([endpoint_id])
        return
    if not sent:
        return
    earliest = (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, state=State.PENDING, next_attempt_at__gt=now
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if earliest is not None:
        countdown = max((earliest - now).total_seconds(), 0.0) + 0.05
        endpoints_enqueue_on_commit([endpoint_id], countdown=countdown)


def _load(ids: list[int]) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(id__in_ids=ids).select_related("event").order_by("id")
    )


def _claim_and_start(
    endpoint_id: int, *, run: RunState, pool: ThreadPoolExecutor, threads: int
) -> Batch | None:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
    if endpoint is None:
        return None
    ids = claims.claim_batch(
        endpoint_id=endpoint_id, now=timezone.now(), limit=settings.WEBHOOK_BATCH_SIZE
    )
    if not ids:
        return None
    return Batch(endpoint, _load(ids), run=run, pool=pool, threads=threads)


def endpoint_deliver(*, endpoint_id: int) -> int:
    """Send an endpoint's claimable deliveries in batches; returns how many were attempted.

    See the module docstring: batches of ``WEBHOOK_BATCH_SIZE`` claimed while the previous
    one is sent, ``WEBHOOK_ENDPOINT_CONCURRENCY`` threads, one run per endpoint at a time
    on PostgreSQL, at most ``WEBHOOK_RUN_BUDGET_S`` per run.
    """
    attempted = 0
    with _endpoint_lock(endpoint_id) as held:
        if not held:
            return 0  # the running sender looks again before it lets go
        deadline = time.monotonic() + settings.WEBHOOK_RUN_BUDGET_S
        threads = max(1, settings.WEBHOOK_ENDPOINT_CONCURRENCY)
        run = RunState()
        in_flight: Batch | None = None
        with ThreadPoolExecutor(threads, thread_name_prefix=f"webhook-{endpoint_id}") as pool:
            while True:
                batch = None
                if not run.trouble.is_set() and time.monotonic() < deadline:
                    batch = _claim_and_start(endpoint_id, run=run, pool=pool, threads=threads)
                if in_flight is not None:
                    outcomes = in_flight.outcomes()
                    claims.outcomes_record(outcomes)
                    attempted += sum(not o.unsent for o in outcomes)
                elif batch is None:
                    break
                in_flight = batch
    _queue_follow_up(endpoint_id, sent=attempted > 0)
    return attempted


def _not_claimed_because(delivery_id: int, now: datetime) -> str:
    """Why a delivery could not be claimed (read after the claim found nothing to do)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.state in (State.DELIVERED, State.DEAD):
        return "done"
    if delivery.state == State.SENDING:
        return "busy"
    if delivery.next_attempt_at > now:
        return "not-due"
    if not delivery.endpoint.active:
        return "paused"
    earlier_open = WebhookDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        member_id=delivery.member_id,
        event_id__lt=delivery.event_id,
        state__in=WebhookDelivery.OPEN_STATES,
    )
    blocked = delivery.event_id is not None and delivery.member_id is not None
    return "blocked" if blocked and earlier_open.exists() else "busy"


def delivery_send(*, delivery_id: int) -> str:
    """Make one attempt at one delivery, if it is due and first in its member's line.

    Returns what happened: ``delivered``, ``retry``, ``dead``, or why nothing was sent
    (``done``, ``busy``, ``not-due``, ``paused``, ``blocked``). Afterwards the endpoint's
    sender is queued (at once for the next in line, or at the retry's time).
    """
    now = timezone.now()
    if claims.claim_one(delivery_id=delivery_id, now=now) is None:
        return _not_claimed_because(delivery_id, now)
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return "busy"
    (outcome,) = Batch(delivery.endpoint, [delivery], run=RunState()).outcomes()
    if not claims.outcomes_record([outcome]):
        return "busy"
    retry_at = outcome.next_attempt_at  # set on every pending outcome
    if outcome.state == State.PENDING and retry_at is not None:
        delay = max((retry_at - timezone.now()).total_seconds(), 0.0)
        endpoints_enqueue_on_commit([delivery.endpoint_id], countdown=delay)
        return "retry"
    endpoints_enqueue_on_commit([delivery.endpoint_id])
    return "delivered" if outcome.state == State.DELIVERED else "dead"
