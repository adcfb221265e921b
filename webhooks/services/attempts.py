"""Attempts: what a delivery's POST carries, what its answer means, and a batch of them
sent on a thread pool.

A batch's attempts run on the sender's threads; the first attempt that gets no answer
(timeout, refused) or a ``429`` marks the run as in trouble, and attempts of the run not
started yet are then not made: those deliveries go back unsent (no attempt counted) to wait
as long as the earliest retry. Past the first round (one attempt per thread) an attempt
starts only if it can end within its delivery's lease.
"""

import itertools
import json
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.utils import timezone

from webhooks.formats import TEST_EVENT_TYPE, discord_body, discord_text, event_body
from webhooks.http import EndpointClient, SendResult, Target, client_for
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.claims import Outcome, lease_s
from webhooks.signing import endpoint_signing_secrets, signature_header
from webhooks.urlsafety import UnsafeUrl

State = WebhookDelivery.State
NOTHING = SendResult(status=None, latency_ms=0, error="nothing to announce")


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
    event = delivery.event  # None for a test delivery (no query then)
    if event is None:
        if discord:
            text = discord_text(
                event_type=TEST_EVENT_TYPE, payload={"username": ""}, context={}, endpoint=endpoint
            )
            return discord_body(text or "")
        return delivery.test_payload or {}
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
    outcome = Outcome(
        delivery_id=delivery.pk,
        attempts=delivery.attempts,
        state=State.PENDING,
        status=result.status,
        latency_ms=result.latency_ms,
        error=result.error,
        excerpt=result.excerpt,
    )
    if result.ok or result is NOTHING:
        return replace(outcome, state=State.DELIVERED, delivered_at=finished)
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        return replace(outcome, state=State.DEAD)
    delay = None
    if result.status == 429:
        delay = _retry_after_s(result.retry_after, now=finished)
        if delay is not None:
            delay = min(delay, settings.WEBHOOK_RETRY_AFTER_MAX_S)
    if delay is None:
        delay = backoff_s(delivery.attempts)
    return replace(outcome, next_attempt_at=finished + timedelta(seconds=delay))


class RunState:
    """What the batches of one sender run share: trouble, and the earliest retry."""

    def __init__(self) -> None:
        self.trouble = threading.Event()
        self.retry_at: datetime | None = None


class Batch:
    """Claimed deliveries of one endpoint, being attempted (on ``pool``, else at once)."""

    def __init__(
        self,
        endpoint: WebhookEndpoint,
        deliveries: list[WebhookDelivery],
        *,
        run: RunState,
        pool: ThreadPoolExecutor | None = None,
        threads: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.deliveries = deliveries
        self.run = run
        self.client: EndpointClient = client_for(endpoint.pk, endpoint.url)
        now = timezone.now()
        try:
            self.target: Target | None = self.client.resolve()
            self.refused = ""
        except UnsafeUrl as exc:
            self.target, self.refused = None, str(exc.message)
        self.secrets = endpoint_signing_secrets(endpoint, now=now)
        self.last_start = time.monotonic() + lease_s() - 2 * settings.WEBHOOK_TIMEOUT_S
        self.first_round = threads if pool is not None else 1
        self.started = itertools.count()
        if pool is not None:
            self.futures: list[Future] = [pool.submit(self._attempt, d) for d in deliveries]
        else:
            self.futures = []
            for delivery in deliveries:
                future: Future = Future()
                future.set_result(self._attempt(delivery))
                self.futures.append(future)

    def _attempt(self, delivery: WebhookDelivery) -> tuple[SendResult | None, datetime]:
        body = _body(delivery, self.endpoint)
        if body is None:
            return NOTHING, timezone.now()
        if self.target is None:
            return SendResult(status=None, latency_ms=0, error=self.refused), timezone.now()
        late = next(self.started) >= self.first_round and time.monotonic() > self.last_start
        if self.run.trouble.is_set() or late:
            return None, timezone.now()
        result = _post(self.client, self.target, delivery, body, self.secrets)
        if result.status is None or result.status == 429:
            self.run.trouble.set()
        return result, timezone.now()

    def outcomes(self) -> list[Outcome]:
        """Wait for the attempts; their outcomes, unsent deliveries included."""
        done = [(d, *f.result()) for d, f in zip(self.deliveries, self.futures, strict=True)]
        outcomes = [_outcome(d, result, at) for d, result, at in done if result is not None]
        retries = [o.next_attempt_at for o in outcomes if o.next_attempt_at is not None]
        if retries:
            self.run.retry_at = min([*retries, self.run.retry_at or max(retries)])
        outcomes += [
            Outcome(
                delivery_id=d.pk,
                attempts=d.attempts,
                state=State.PENDING,
                next_attempt_at=max(self.run.retry_at or at, at),
                unsent=True,
            )
            for d, result, at in done
            if result is None
        ]
        return outcomes
