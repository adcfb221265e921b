"""Sending deliveries: a batch per endpoint (the worker's path) or one (tests, staff).

``endpoint_deliver`` is what ``webhooks.endpoint_deliver`` runs. It claims the endpoint's
claimable deliveries in batches (``WEBHOOK_BATCH_SIZE``, one ``UPDATE ... RETURNING``,
``SKIP LOCKED`` on PostgreSQL), sends each batch with up to
``WEBHOOK_ENDPOINT_CONCURRENCY`` threads over the endpoint's keep-alive connections, and
writes all outcomes in one statement; then claims again, until nothing is claimable or the
run has used ``WEBHOOK_RUN_BUDGET_S`` (it then queues itself again, behind other
endpoints' work). On PostgreSQL one run per endpoint at a time (a session advisory lock,
released if the worker dies), so the thread count bounds the endpoint's concurrency.

A batch stops early when an attempt gets no answer (timeout, refused) or a ``429``: the
endpoint is in trouble, so its deliveries not attempted yet go back unsent (no attempt
counted) and wait as long as the earliest retry. A hanging endpoint therefore holds one
worker slot for about one timeout per retry, never another endpoint's deliveries.
"""

import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from webhooks.formats import TEST_EVENT_TYPE, discord_body, discord_text, event_body
from webhooks.http import EndpointClient, SendResult, Target, client_for
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import claims
from webhooks.services.claims import Outcome
from webhooks.services.queueing import endpoints_enqueue_on_commit
from webhooks.signing import endpoint_signing_secrets, signature_header
from webhooks.urlsafety import UnsafeUrl

State = WebhookDelivery.State
LOCK_NAMESPACE = 14_140  # pg_try_advisory_lock(namespace, endpoint id)
_NOTHING = SendResult(status=None, latency_ms=0, error="nothing to announce")


def backoff_s(attempts: int) -> float:
    """The wait before retry number ``attempts`` (1 = after the first failure): exponential
    from ``WEBHOOK_BACKOFF_BASE_S`` up to ``WEBHOOK_BACKOFF_MAX_S``, with "equal jitter"
    (between half and all of it), so endpoints that failed together do not retry together."""
    delay = min(
        settings.WEBHOOK_BACKOFF_MAX_S, settings.WEBHOOK_BACKOFF_BASE_S * 2 ** (attempts - 1)
    )
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


def _retry_after_s(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def _body(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> dict | None:
    """The body to POST, or None when a Discord endpoint has nothing to announce."""
    discord = endpoint.format == WebhookEndpoint.Format.DISCORD
    if delivery.event_id is None:
        if discord:
            text = discord_text(
                event_type=TEST_EVENT_TYPE, payload={"username": ""}, context={}, endpoint=endpoint
            )
            return discord_body(text or "")
        return delivery.test_payload or {}
    event = delivery.event
    if discord:
        text = discord_text(
            event_type=event.event_type,
            payload=event.payload,
            context=event.context,
            endpoint=endpoint,
        )
        return discord_body(text) if text else None
    return event_body(
        event_type=event.event_type, occurred_at=event.occurred_at, payload=event.payload
    )


def _post(
    client: EndpointClient, target: Target, delivery: WebhookDelivery, body: dict, secrets: list
) -> SendResult:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    sent_at = timezone.now()
    headers = {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(
            secrets_in_use=secrets, message_id=delivery.message_id, timestamp=sent_at, body=data
        ),
    }
    return client.post(target, body=data.encode(), headers=headers)


def _outcome(delivery: WebhookDelivery, result: SendResult, finished: datetime) -> Outcome:
    """The delivery's state after ``result``: delivered, a retry at its backoff (or the
    429's ``Retry-After``), or dead after ``WEBHOOK_MAX_ATTEMPTS`` attempts."""
    fields = {
        "delivery_id": delivery.pk,
        "attempts": delivery.attempts,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "excerpt": result.excerpt,
    }
    if result.ok or result is _NOTHING:
        return Outcome(state=State.DELIVERED, delivered_at=finished, **fields)
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        return Outcome(state=State.DEAD, **fields)
    delay = None
    if result.status == 429:
        delay = _retry_after_s(result.retry_after, now=finished)
        if delay is not None:
            delay = min(delay, settings.WEBHOOK_RETRY_AFTER_MAX_S)
    if delay is None:
        delay = backoff_s(delivery.attempts)
    return Outcome(
        state=State.PENDING, next_attempt_at=finished + timedelta(seconds=delay), **fields
    )


def _load(ids: list[int]) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(id__in_ids=ids).select_related("event").order_by("id")
    )


def _attempts(
    endpoint: WebhookEndpoint,
    deliveries: list[WebhookDelivery],
    *,
    pool: ThreadPoolExecutor | None,
    threads: int = 1,
) -> list[Outcome]:
    """Attempt ``deliveries`` of ``endpoint`` (claimed just now), on ``pool``'s threads or
    in this one; returns their outcomes (unsent ones included)."""
    client = client_for(endpoint.pk, endpoint.url)
    now = timezone.now()
    try:
        target: Target | None = client.resolve()
        refused = ""
    except UnsafeUrl as exc:
        target, refused = None, str(exc.message)
    secrets = endpoint_signing_secrets(endpoint, now=now)
    # Past the first round (one attempt per thread), an attempt starts only if it can end
    # within the lease (connect and read timeouts included).
    last_start = time.monotonic() + claims.lease_s() - 2 * settings.WEBHOOK_TIMEOUT_S
    first_round = threads if pool is not None else 1
    started = itertools.count()
    trouble = threading.Event()

    def attempt(delivery: WebhookDelivery) -> tuple[SendResult | None, datetime]:
        body = _body(delivery, endpoint)
        if body is None:
            return _NOTHING, timezone.now()
        if target is None:
            return SendResult(status=None, latency_ms=0, error=refused), timezone.now()
        late = next(started) >= first_round and time.monotonic() > last_start
        if trouble.is_set() or late:
            return None, timezone.now()
        result = _post(client, target, delivery, body, secrets)
        if result.status is None or result.status == 429:
            trouble.set()
        return result, timezone.now()

    runs = pool.map(attempt, deliveries) if pool is not None else map(attempt, deliveries)
    done = list(zip(deliveries, runs, strict=True))
    outcomes = [_outcome(d, result, at) for d, (result, at) in done if result is not None]
    retry_at = min((o.next_attempt_at for o in outcomes if o.next_attempt_at), default=now)
    outcomes += [
        Outcome(
            delivery_id=d.pk,
            attempts=d.attempts,
            state=State.PENDING,
            next_attempt_at=max(retry_at, at),
            unsent=True,
        )
        for d, (result, at) in done
        if result is None
    ]
    return outcomes


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


def _queue_follow_up(endpoint_id: int) -> None:
    """After a run: queue the endpoint again if something is claimable now (it became so
    while the run held the lock), else at its earliest retry."""
    now = timezone.now()
    if claims.claimable_exists(endpoint_id=endpoint_id, now=now):
        endpoints_enqueue_on_commit([endpoint_id])
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


def endpoint_deliver(*, endpoint_id: int) -> int:
    """Send an endpoint's claimable deliveries in batches; returns how many were attempted.

    See the module docstring: batches of ``WEBHOOK_BATCH_SIZE``, ``WEBHOOK_ENDPOINT_
    CONCURRENCY`` threads, one run per endpoint at a time on PostgreSQL, at most
    ``WEBHOOK_RUN_BUDGET_S`` per run; afterwards the endpoint is queued again if work is
    claimable, or at its earliest retry.
    """
    attempted = 0
    with _endpoint_lock(endpoint_id) as held:
        if not held:
            return 0  # the running sender looks again before it lets go
        deadline = time.monotonic() + settings.WEBHOOK_RUN_BUDGET_S
        threads = max(1, settings.WEBHOOK_ENDPOINT_CONCURRENCY)
        with ThreadPoolExecutor(threads, thread_name_prefix=f"webhook-{endpoint_id}") as pool:
            while time.monotonic() < deadline:
                endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, active=True).first()
                if endpoint is None:
                    break
                ids = claims.claim_batch(
                    endpoint_id=endpoint_id, now=timezone.now(), limit=settings.WEBHOOK_BATCH_SIZE
                )
                if not ids:
                    break
                outcomes = _attempts(endpoint, _load(ids), pool=pool, threads=threads)
                claims.outcomes_record(outcomes)
                attempted += sum(not o.unsent for o in outcomes)
                if any(o.unsent for o in outcomes):
                    break
    if attempted:
        _queue_follow_up(endpoint_id)
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
    (outcome,) = _attempts(delivery.endpoint, [delivery], pool=None)
    if not claims.outcomes_record([outcome]):
        return "busy"
    if outcome.state == State.PENDING:
        delay = max((outcome.next_attempt_at - timezone.now()).total_seconds(), 0.0)
        endpoints_enqueue_on_commit([delivery.endpoint_id], countdown=delay)
        return "retry"
    endpoints_enqueue_on_commit([delivery.endpoint_id])
    return "delivered" if outcome.state == State.DELIVERED else "dead"
