"""Webhook reads for the staff pages."""

from django.db.models import Count, Q, QuerySet

from webhooks.models import WebhookDelivery, WebhookEndpoint

LOG_LIMIT = 100


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    """Every endpoint with its open, dead and delivered counts (one query)."""
    state = "deliveries__state"
    return WebhookEndpoint.objects.annotate(
        open_count=Count("deliveries", filter=Q(**{f"{state}__in": ["pending", "sending"]})),
        dead_count=Count("deliveries", filter=Q(**{state: "dead"})),
        delivered_count=Count("deliveries", filter=Q(**{state: "delivered"})),
    ).order_by("id")


def delivery_log_for_endpoint(
    endpoint: WebhookEndpoint, *, limit: int = LOG_LIMIT
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first (one query)."""
    return list(endpoint.deliveries.order_by("-created_at", "-id")[:limit])


def deliveries_dead_count() -> int:
    """How many deliveries gave up (state ``dead``), over every endpoint."""
    return WebhookDelivery.objects.filter(state=WebhookDelivery.State.DEAD).count()
