"""Webhook writes: endpoints, fan-out of outbox events, delivery attempts, replays.

Delivery guarantees (docs/webhooks.md):

- **At least once.** Every outbox event gets one ``WebhookDelivery`` per subscribed
  endpoint (UNIQUE (event, endpoint)), created by ``events_dispatch`` after the event
  commits. PostgreSQL, not the broker, holds the work: a lost task message, a worker killed
  mid-request or a broker outage only delays it (``deliveries_sweep`` re-queues anything
  left behind). A retry, a redelivery and a replay reuse the event's id (``webhook-id``),
  so a receiver can drop duplicates.
- **One sender at a time.** A worker claims a delivery under a row lock, marks it
  ``sending`` with a lease (``locked_until``) and commits before the HTTP request, so no
  transaction stays open while a receiver thinks; if the worker dies, the lease runs out
  and the sweep sends again.
- **Per-member order.** A member's events are delivered to an endpoint in outbox order: a
  delivery waits while an earlier one of the same member and endpoint is still open
  (pending or sending); when a delivery ends (delivered or dead) the next one is queued.
- **Isolation.** Each delivery is its own task on the ``webhooks`` queue with 5 s timeouts,
  so a slow or dead endpoint occupies one worker slot at a time and never the pipeline's
  queue, a grant, or another endpoint's deliveries.
- **Retries.** Exponential backoff with jitter; a 429's ``Retry-After`` is honoured; after
  ``WEBHOOK_MAX_ATTEMPTS`` attempts the delivery is ``dead`` (shown on the staff dashboard)
  until staff redeliver it.
"""

import json
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from scoring.models import OutboxEvent
from scoring.outbox import event_id_new
from webhooks.formats import discord_body, discord_text, event_body
from webhooks.http import SendResult, post_json
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookFanout
from webhooks.signing import endpoint_signing_secrets, secret_new, signature_header
from webhooks.urlsafety import UnsafeUrl, url_check_at_save

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("swampclub.webhooks")

TEST_EVENT_TYPE = "webhook.test"
State = WebhookDelivery.State


# --- endpoints --------------------------------------------------------------------------------


def endpoint_errors(
    *, url: Any, event_types: Any, format: Any, private_awards: Any = "points"
) -> dict[str, list[str]]:
    """The problems with an endpoint's settings, by field; empty when valid.

    The URL must pass ``webhooks.urlsafety`` (scheme, no private or local address unless
    allowed); event types must be a non-empty subset of the known ones.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(url, str) or not url.strip():
        errors["url"] = ["Enter the URL to deliver to."]
    elif len(url) > 2000:
        errors["url"] = ["The URL must be at most 2,000 characters."]
    else:
        try:
            url_check_at_save(url.strip())
        except UnsafeUrl as exc:
            errors["url"] = [str(exc.message)]
    known = WebhookEndpoint.EVENT_TYPES
    if (
        not isinstance(event_types, (list, tuple))
        or not event_types
        or any(t not in known for t in event_types)
    ):
        errors["event_types"] = [f"Choose one or more of: {', '.join(known)}."]
    if format not in WebhookEndpoint.Format.values:
        errors["format"] = [f"Format must be one of {', '.join(WebhookEndpoint.Format.values)}."]
    if private_awards not in WebhookEndpoint.PrivateAwards.values:
        errors["private_awards"] = ["Choose how private awards are announced."]
    return errors


@transaction.atomic
def endpoint_create(
    *,
    url: str,
    event_types: Sequence[str],
    format: str = WebhookEndpoint.Format.JSON,
    description: str = "",
    private_awards: str = WebhookEndpoint.PrivateAwards.POINTS,
    created_by: "User | None" = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an active endpoint; returns it and its new signing secret (``whsec_…``).

    Raises ``ValidationError`` keyed by field (``url``, ``event_types``, ``format``,
    ``private_awards``). The secret is returned so the caller can show it once.
    """
    if errors := endpoint_errors(
        url=url, event_types=list(event_types), format=format, private_awards=private_awards
    ):
        raise ValidationError(errors)
    secret = secret_new()
    endpoint = WebhookEndpoint.objects.create(
        url=url.strip(),
        description=description.strip()[:200],
        event_types=sorted(set(event_types)),
        format=format,
        private_awards=private_awards,
        secret=secret,
        created_by=created_by,
    )
    return endpoint, secret


@transaction.atomic
def endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Pause or resume an endpoint. While paused its deliveries are kept, not sent; on
    resume they go out in order."""
    endpoint.active = active
    endpoint.save(update_fields=["active", "updated_at"])
    if active:
        heads = list(
            WebhookDelivery.objects.filter(endpoint=endpoint, state=State.PENDING).values_list(
                "pk", flat=True
            )[:5000]
        )
        _enqueue_on_commit(heads)
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, grace: timedelta | None = None
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the old one keeps signing for ``grace`` (default
    ``WEBHOOK_SECRET_GRACE_S``) so receivers can switch without a gap. Returns the new
    secret (shown once)."""
    if grace is None:
        grace = timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_S)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = secret_new()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + grace
    locked.secret = secret
    locked.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return locked, secret


@transaction.atomic
def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to ``endpoint`` (signed like any other delivery)."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=event_id_new(),
        event_type=TEST_EVENT_TYPE,
        test_payload={
            "type": TEST_EVENT_TYPE,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": {"endpoint_id": endpoint.pk, "message": "Test event from Swamp Club"},
        },
        next_attempt_at=now,
        created_at=now,
    )
    _enqueue_on_commit([delivery.pk])
    return delivery


# --- fan-out ----------------------------------------------------------------------------------


def _wants(endpoint: WebhookEndpoint, event_type: str, payload: dict, context: dict) -> bool:
    if event_type not in endpoint.event_types:
        return False
    if endpoint.format == WebhookEndpoint.Format.DISCORD:
        return (
            discord_text(event_type=event_type, payload=payload, context=context, endpoint=endpoint)
            is not None
        )
    return True


def _deliveries_create(
    events: Iterable[Mapping[str, Any]], endpoints: Sequence[WebhookEndpoint], *, now: datetime
) -> None:
    """Create the missing deliveries of ``events`` (dicts of outbox fields) in one insert."""
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            event_id=event["id"],
            member_id=event["member_id"],
            message_id=event["event_id"],
            event_type=event["event_type"],
            next_attempt_at=now,
            created_at=now,
        )
        for event in events
        for endpoint in endpoints
        if _wants(endpoint, event["event_type"], event["payload"], event["context"])
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)


def _heads(event_ids: Sequence[int]) -> list[int]:
    """The first open delivery per (endpoint, member) among these events' deliveries."""
    seen: set[tuple[int, int | None]] = set()
    heads = []
    for pk, endpoint_id, member_id in (
        WebhookDelivery.objects.filter(event_id__in_ids=event_ids, state=State.PENDING)
        .order_by("event_id")
        .values_list("pk", "endpoint_id", "member_id")
    ):
        if (endpoint_id, member_id) not in seen:
            seen.add((endpoint_id, member_id))
            heads.append(pk)
    return heads


def events_dispatch(*, limit: int | None = None) -> int:
    """Create the deliveries of recent outbox events not fanned out yet; returns how many
    events were fanned out.

    Events of the last ``WEBHOOK_DISPATCH_WINDOW_S`` without a ``WebhookFanout`` row are
    marked with one (``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so two dispatchers
    never fan out the same event) and get a delivery for every endpoint subscribed to their
    type, active or paused (a paused endpoint receives them once resumed). After commit the
    first delivery of each (endpoint, member) is queued; the rest follow in order.
    """
    limit = limit or settings.WEBHOOK_DISPATCH_BATCH
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            qn = connection.ops.quote_name
            fan = qn(WebhookFanout._meta.db_table)
            out = qn(OutboxEvent._meta.db_table)
            since = now - timedelta(seconds=settings.WEBHOOK_DISPATCH_WINDOW_S)
            with connection.cursor() as cursor:
                cursor.execute(
                    # Identifiers from model metadata; values are parameters.
                    f"INSERT INTO {fan} (event_id, fanned_at) "  # noqa: S608
                    f"SELECT o.id, %s FROM {out} o WHERE o.occurred_at >= %s "
                    f"AND NOT EXISTS (SELECT 1 FROM {fan} f WHERE f.event_id = o.id) "
                    f"ORDER BY o.id LIMIT %s ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                    [now, since, limit],
                )
                ids = sorted(row[0] for row in cursor.fetchall())
            if not ids:
                return total
            endpoints = list(WebhookEndpoint.objects.all())
            if endpoints:
                events = OutboxEvent.objects.filter(id__in_ids=ids).values(
                    "id", "event_id", "event_type", "member_id", "payload", "context"
                )
                _deliveries_create(events, endpoints, now=now)
                _enqueue_on_commit(_heads(ids))
        total += len(ids)
        if len(ids) < limit:
            return total


# --- sending ----------------------------------------------------------------------------------


def _body(delivery: WebhookDelivery) -> dict | None:
    """The body to POST, or None when a Discord endpoint has nothing to announce."""
    endpoint = delivery.endpoint
    event = delivery.event  # None for a test delivery (no query then)
    if event is None:
        payload = delivery.test_payload or {}
        if endpoint.format == WebhookEndpoint.Format.DISCORD:
            text = discord_text(
                event_type=TEST_EVENT_TYPE, payload={"username": ""}, context={}, endpoint=endpoint
            )
            return discord_body(text or "")
        return payload
    if endpoint.format == WebhookEndpoint.Format.DISCORD:
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


def backoff_s(attempts: int) -> float:
    """The wait before retry number ``attempts`` (1 = after the first failure): exponential
    from ``WEBHOOK_BACKOFF_BASE_S`` up to ``WEBHOOK_BACKOFF_MAX_S``, with "equal jitter"
    (between half and all of it), so endpoints that failed together do not retry together."""
    delay = min(
        settings.WEBHOOK_BACKOFF_MAX_S, settings.WEBHOOK_BACKOFF_BASE_S * 2 ** (attempts - 1)
    )
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security


def _blocked(delivery: WebhookDelivery) -> bool:
    """True when an earlier delivery of the same member to the same endpoint is open."""
    if delivery.event_id is None or delivery.member_id is None:
        return False
    return (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            member_id=delivery.member_id,
            event_id__lt=delivery.event_id,
            state__in=WebhookDelivery.OPEN_STATES,
        )
        .exclude(pk=delivery.pk)
        .exists()
    )


def _claim_sql() -> str:
    qn = connection.ops.quote_name
    table = qn(WebhookDelivery._meta.db_table)
    endpoints = qn(WebhookEndpoint._meta.db_table)
    # Identifiers from model metadata; every value is a parameter.
    return (
        f"UPDATE {table} SET state = 'sending', attempts = {table}.attempts + 1, "  # noqa: S608
        f"last_attempt_at = %s, locked_until = %s "
        f"WHERE {table}.id = %s "
        f"AND (({table}.state = 'pending' AND {table}.next_attempt_at <= %s) "
        f"OR ({table}.state = 'sending' AND {table}.locked_until < %s)) "
        f"AND EXISTS (SELECT 1 FROM {endpoints} e WHERE e.id = {table}.endpoint_id AND e.active) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} p WHERE p.endpoint_id = {table}.endpoint_id "
        f"AND p.member_id = {table}.member_id AND p.event_id < {table}.event_id "
        f"AND p.state IN ('pending', 'sending')) "
        f"RETURNING {table}.attempts"
    )


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
    return "blocked" if _blocked(delivery) else "busy"


def _claim(delivery_id: int, now: datetime) -> tuple[WebhookDelivery | None, str]:
    """Take the delivery for one attempt (state ``sending``, a lease); or say why not.

    One conditional ``UPDATE ... RETURNING`` (autocommit, no transaction held): it claims
    only a delivery that is due (or whose lease ran out), of an active endpoint, with no
    earlier open delivery of the same member to the same endpoint. Two workers racing for
    one delivery serialize on its row; the second finds it no longer due.
    """
    lease = now + timedelta(seconds=max(settings.WEBHOOK_LEASE_S, settings.WEBHOOK_TIMEOUT_S * 2))
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [now, lease, delivery_id, now, now])
        row = cursor.fetchone()
    if row is None:
        return None, _not_claimed_because(delivery_id, now)
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.attempts != row[0]:
        return None, "busy"
    return delivery, "claimed"


def _send(delivery: WebhookDelivery, body: dict) -> SendResult:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    sent_at = timezone.now()
    headers = {
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(
            secrets_in_use=endpoint_signing_secrets(delivery.endpoint, now=sent_at),
            message_id=delivery.message_id,
            timestamp=sent_at,
            body=data,
        ),
    }
    return post_json(url=delivery.endpoint.url, body=data.encode(), headers=headers)


def delivery_send(*, delivery_id: int) -> str:
    """Make one attempt at a delivery, if it is due and first in its member's line.

    Returns what happened: ``delivered``, ``retry``, ``dead``, or why nothing was sent
    (``done``, ``busy``, ``not-due``, ``paused``, ``blocked``). On success or death the next
    delivery of the same member and endpoint is queued; on a failure the retry is queued
    with its delay (the sweep covers a lost message).
    """
    now = timezone.now()
    delivery, outcome = _claim(delivery_id, now)
    if delivery is None:
        return outcome
    body = _body(delivery)
    if body is None:
        result = SendResult(status=None, latency_ms=0, error="nothing to announce")
        state: State | None = State.DELIVERED
    else:
        result = _send(delivery, body)
        state = State.DELIVERED if result.ok else None
    finished = timezone.now()
    changes: dict[str, Any] = {
        "last_status": result.status,
        "last_latency_ms": result.latency_ms,
        "last_error": result.error[:300],
        "response_excerpt": result.excerpt[:500],
        "locked_until": None,
    }
    delay = None
    if state == State.DELIVERED:
        changes.update(state=State.DELIVERED, delivered_at=finished)
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        state = State.DEAD
        changes.update(state=State.DEAD)
    else:
        delay = None
        if result.status == 429:
            delay = _retry_after_s(result.retry_after, now=finished)
            if delay is not None:
                delay = min(delay, settings.WEBHOOK_RETRY_AFTER_MAX_S)
        if delay is None:
            delay = backoff_s(delivery.attempts)
        state = State.PENDING
        changes.update(state=State.PENDING, next_attempt_at=finished + timedelta(seconds=delay))
    # Only if this attempt still owns the delivery (its lease did not run out and hand it
    # to another worker meanwhile). One statement: no transaction needed.
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk, state=State.SENDING, attempts=delivery.attempts
    ).update(**changes)
    if not updated:
        return "busy"
    if state == State.PENDING:
        _enqueue_on_commit([delivery.pk], countdown=delay)
        return "retry"
    _enqueue_on_commit(_next_in_line(delivery))
    return "delivered" if state == State.DELIVERED else "dead"


def _next_in_line(delivery: WebhookDelivery) -> list[int]:
    if delivery.event_id is None or delivery.member_id is None:
        return []
    following = (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            member_id=delivery.member_id,
            event_id__gt=delivery.event_id,
            state=State.PENDING,
        )
        .order_by("event_id")
        .values_list("pk", flat=True)
        .first()
    )
    return [following] if following else []


def deliveries_sweep() -> int:
    """Fan out anything not fanned out, then re-queue deliveries left behind: pending and
    due for a while, or ``sending`` with an expired lease (a worker died). Returns how many
    were queued."""
    events_dispatch()
    now = timezone.now()
    grace = now - timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_S)
    # Only deliveries first in their member's line: one waiting behind an earlier open
    # delivery is queued by that delivery's end, and re-queueing it here would only find it
    # blocked again, every sweep, while an endpoint is down.
    earlier_open = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        member_id=OuterRef("member_id"),
        event_id__lt=OuterRef("event_id"),
        state__in=WebhookDelivery.OPEN_STATES,
    )
    due = list(
        WebhookDelivery.objects.filter(
            Q(state=State.PENDING, next_attempt_at__lte=grace)
            | Q(state=State.SENDING, locked_until__lt=now),
            ~Exists(earlier_open),
            endpoint__active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: settings.WEBHOOK_DISPATCH_BATCH]
    )
    if due:
        # An expired lease means the attempt's outcome is unknown: send again (same id).
        WebhookDelivery.objects.filter(
            pk__in=due, state=State.SENDING, locked_until__lt=now
        ).update(state=State.PENDING, next_attempt_at=now, locked_until=None)
        _enqueue(due)
    return len(due)


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a dead or failing delivery again from its first attempt (same ``webhook-id``).

    Raises ``ValidationError`` for a delivery that is delivered or being sent.
    """
    locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    failing = locked.state == State.PENDING and locked.attempts > 0
    if locked.state != State.DEAD and not failing:
        raise ValidationError("Only a failed or dead delivery can be redelivered.")
    now = timezone.now()
    locked.state = State.PENDING
    locked.attempts = 0
    locked.next_attempt_at = now
    locked.locked_until = None
    locked.save(update_fields=["state", "attempts", "next_attempt_at", "locked_until"])
    _enqueue_on_commit([locked.pk])
    return locked


@transaction.atomic
def webhooks_replay(
    *,
    since: datetime,
    until: datetime | None = None,
    endpoint: WebhookEndpoint | None = None,
) -> int:
    """Send the outbox events that occurred in [``since``, ``until``] again, with their
    original ids, to ``endpoint`` (or every subscribed endpoint); returns the number of
    deliveries queued.

    Missing deliveries are created; existing ones (delivered, dead or failing) start again
    from their first attempt. Deliveries being sent right now are left alone.
    """
    events = OutboxEvent.objects.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lte=until)
    endpoints = [endpoint] if endpoint is not None else list(WebhookEndpoint.objects.all())
    now = timezone.now()
    event_ids: list[int] = []
    after = 0
    while True:  # chunks of events, by id
        chunk = list(
            events.filter(id__gt=after)
            .order_by("id")
            .values("id", "event_id", "event_type", "member_id", "payload", "context")[:5000]
        )
        if not chunk:
            break
        _deliveries_create(chunk, endpoints, now=now)
        event_ids.extend(e["id"] for e in chunk)
        after = chunk[-1]["id"]
    if not event_ids:
        return 0
    replayed = WebhookDelivery.objects.filter(
        event_id__in_ids=event_ids, endpoint__in=endpoints
    ).exclude(state=State.SENDING)
    count = replayed.update(state=State.PENDING, attempts=0, next_attempt_at=now, locked_until=None)
    _enqueue_on_commit(_heads(event_ids))
    return count


# --- queueing ---------------------------------------------------------------------------------


def _enqueue(delivery_ids: Iterable[int], *, countdown: float | None = None) -> None:
    from webhooks.tasks import deliveries_enqueue

    deliveries_enqueue(list(delivery_ids), countdown=countdown)


def _enqueue_on_commit(delivery_ids: Iterable[int], *, countdown: float | None = None) -> None:
    ids = list(delivery_ids)
    if ids:
        transaction.on_commit(lambda: _enqueue(ids, countdown=countdown))
