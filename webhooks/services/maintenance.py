"""Beat's housekeeping: the sweep for left-behind work and the pruning of old rows."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from scoring.outbox import outbox_prune
from webhooks.models import WebhookDelivery
from webhooks.services.fanout import events_dispatch
from webhooks.services.queueing import endpoints_enqueue

State = WebhookDelivery.State
PRUNE_BATCH = 5000


def deliveries_sweep() -> int:
    """Fan out anything not fanned out, then re-queue the senders of deliveries left
    behind: pending and due for a while, or ``sending`` with an expired lease (a worker
    died). Returns how many such deliveries were found (first in their member's line)."""
    events_dispatch()
    now = timezone.now()
    grace = now - timedelta(seconds=settings.WEBHOOK_SWEEP_GRACE_S)
    # Only deliveries first in their member's line: one waiting behind an earlier open
    # delivery goes out after that one, and counting it here would only find it blocked
    # again, every sweep, while an endpoint is down.
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
        .values_list("pk", "endpoint_id")[: settings.WEBHOOK_DISPATCH_BATCH]
    )
    if due:
        # An expired lease means the attempt's outcome is unknown: send again (same id).
        WebhookDelivery.objects.filter(
            pk__in=[pk for pk, _ in due], state=State.SENDING, locked_until__lt=now
        ).update(state=State.PENDING, next_attempt_at=now, locked_until=None)
        endpoints_enqueue({endpoint_id for _, endpoint_id in due})
    return len(due)


def webhooks_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what is done and older than ``WEBHOOK_RETENTION_DAYS``; returns the counts.

    First delivered deliveries delivered before the cutoff, then outbox events that
    occurred before it and have no delivery left (their fan-out markers go with them).
    Open and dead deliveries are kept, and so are their events: a dead delivery stays
    until staff redeliver it. The cutoff is never more recent than the dispatch window, so
    nothing is pruned before it could be fanned out.
    """
    now = now or timezone.now()
    keep_s = max(settings.WEBHOOK_RETENTION_DAYS * 86400, settings.WEBHOOK_DISPATCH_WINDOW_S)
    cutoff = now - timedelta(seconds=keep_s)
    delivered = WebhookDelivery.objects.filter(state=State.DELIVERED, delivered_at__lt=cutoff)
    deliveries = 0
    while ids := list(delivered.order_by("id").values_list("id", flat=True)[:PRUNE_BATCH]):
        deleted, _ = WebhookDelivery.objects.filter(id__in_ids=ids).delete()
        deliveries += deleted
        if len(ids) < PRUNE_BATCH:
            break
    events = outbox_prune(
        before=cutoff,
        keep=Q(Exists(WebhookDelivery.objects.filter(event_id=OuterRef("pk")))),
        batch=PRUNE_BATCH,
    )
    return {"deliveries": deliveries, "events": events}
