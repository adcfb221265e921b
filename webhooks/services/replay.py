"""Sending again: staff's redeliver of one delivery and ``webhooks_replay`` of a range."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from scoring.models import OutboxEvent
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.fanout import deliveries_create
from webhooks.services.queueing import endpoints_enqueue_on_commit

State = WebhookDelivery.State
REPLAY_CHUNK = 5000


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
    endpoints_enqueue_on_commit([locked.endpoint_id])
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
    from their first attempt. Deliveries being sent right now are left alone. Events older
    than ``WEBHOOK_RETENTION_DAYS`` may have been pruned already.
    """
    events = OutboxEvent.objects.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lte=until)
    endpoints = [endpoint] if endpoint is not None else list(WebhookEndpoint.objects.all())
    now = timezone.now()
    count = 0
    after = 0
    while endpoints:  # chunks of events, by id
        ids = list(
            events.filter(id__gt=after).order_by("id").values_list("id", flat=True)[:REPLAY_CHUNK]
        )
        if not ids:
            break
        deliveries_create(ids, endpoints, now=now)
        count += (
            WebhookDelivery.objects.filter(event_id__in_ids=ids, endpoint__in=endpoints)
            .exclude(state=State.SENDING)
            .update(state=State.PENDING, attempts=0, next_attempt_at=now, locked_until=None)
        )
        after = ids[-1]
    endpoints_enqueue_on_commit(e.pk for e in endpoints if e.active)
    return count
