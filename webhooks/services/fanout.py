"""Fan-out: one delivery per outbox event and subscribed endpoint, created set-based.

``events_dispatch`` marks recent outbox events with a ``WebhookFanout`` row
(``INSERT ... ON CONFLICT DO NOTHING RETURNING``, so two dispatchers never fan out one
event twice) and creates their deliveries: for a JSON endpoint one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per endpoint over the whole batch of
events; a Discord endpoint gets a delivery only for the events it announces (decided in
Python, then one bulk insert). UNIQUE (event, endpoint) makes every path idempotent.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from scoring.models import OutboxEvent
from swampclub.dialect import ids_in
from webhooks.formats import discord_text
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookFanout
from webhooks.services.queueing import endpoints_enqueue_on_commit

ANALYZE_AFTER = 1000  # deliveries created by one fan-out batch


def _json_deliveries_create(
    event_ids: Sequence[int], endpoint: WebhookEndpoint, *, now: datetime
) -> int:
    qn = connection.ops.quote_name
    deliveries = qn(WebhookDelivery._meta.db_table)
    outbox = qn(OutboxEvent._meta.db_table)
    types = [t for t in endpoint.event_types if t in WebhookEndpoint.EVENT_TYPES]
    if not types:
        return 0
    in_ids, id_params = ids_in("o.id", event_ids)
    at = connection.ops.adapt_datetimefield_value(now)
    # Identifiers from model metadata; every value is a parameter.
    sql = (
        f"INSERT INTO {deliveries} (endpoint_id, event_id, member_id, message_id, "  # noqa: S608
        f"event_type, state, attempts, next_attempt_at, last_error, response_excerpt, "
        f"created_at) SELECT %s, o.id, o.member_id, o.event_id, o.event_type, 'pending', 0, "
        f"%s, '', '', %s FROM {outbox} o WHERE {in_ids} "
        f"AND o.event_type IN ({', '.join(['%s'] * len(types))}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [endpoint.pk, at, at, *id_params, *types])
        return cursor.rowcount


def _discord_deliveries_create(
    event_ids: Sequence[int], endpoints: Sequence[WebhookEndpoint], *, now: datetime
) -> dict[int, int]:
    events = OutboxEvent.objects.filter(id__in_ids=list(event_ids)).values(
        "id", "event_id", "event_type", "member_id", "payload", "context"
    )
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
        if event["event_type"] in endpoint.event_types
        and discord_text(
            event_type=event["event_type"],
            payload=event["payload"],
            context=event["context"],
            endpoint=endpoint,
        )
        is not None
    ]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    created: dict[int, int] = {}
    for row in rows:
        created[row.endpoint_id] = created.get(row.endpoint_id, 0) + 1
    return created


def deliveries_create(
    event_ids: Sequence[int], endpoints: Sequence[WebhookEndpoint], *, now: datetime
) -> dict[int, int]:
    """Create the missing deliveries of these outbox events to these endpoints (only the
    event types each subscribes to; on Discord only what it announces). Returns, per
    endpoint that may have got new deliveries, about how many (Discord: at most)."""
    if not event_ids:
        return {}
    created: dict[int, int] = {}
    discord = [e for e in endpoints if e.format == WebhookEndpoint.Format.DISCORD]
    for endpoint in [e for e in endpoints if e.format != WebhookEndpoint.Format.DISCORD]:
        if count := _json_deliveries_create(event_ids, endpoint, now=now):
            created[endpoint.pk] = count
    if discord:
        created.update(_discord_deliveries_create(event_ids, discord, now=now))
    return created


def _analyze() -> None:
    """Refresh the planner's statistics of the deliveries table (in the fan-out's
    transaction, so they are there when its senders start): right after a burst of
    thousands of rows into a table it had seen (nearly) empty, the claim's anti-join was
    planned as a scan per row and took seconds instead of milliseconds."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(WebhookDelivery._meta.db_table)}")


def _mark_fanned_out(*, now: datetime, limit: int) -> list[int]:
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
            [
                connection.ops.adapt_datetimefield_value(now),
                connection.ops.adapt_datetimefield_value(since),
                limit,
            ],
        )
        return sorted(row[0] for row in cursor.fetchall())


def events_dispatch(*, limit: int | None = None) -> int:
    """Create the deliveries of recent outbox events not fanned out yet; returns how many
    events were fanned out.

    Events of the last ``WEBHOOK_DISPATCH_WINDOW_S`` without a ``WebhookFanout`` row are
    marked with one and get a delivery for every endpoint subscribed to their type, active
    or paused (a paused endpoint receives them once resumed), in batches of ``limit``
    (``WEBHOOK_DISPATCH_BATCH``), one transaction each. After each commit the sender of
    every active endpoint that got deliveries is queued.
    """
    limit = limit or settings.WEBHOOK_DISPATCH_BATCH
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            ids = _mark_fanned_out(now=now, limit=limit)
            if not ids:
                return total
            endpoints = list(WebhookEndpoint.objects.all())
            created = deliveries_create(ids, endpoints, now=now) if endpoints else {}
            if sum(created.values()) >= ANALYZE_AFTER and connection.vendor == "postgresql":
                _analyze()
            active = {e.pk for e in endpoints if e.active}
            endpoints_enqueue_on_commit(set(created) & active)
        total += len(ids)
        if len(ids) < limit:
            return total
