"""Webhook endpoints and their deliveries (the outbox itself is ``scoring.OutboxEvent``)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from scoring.models import OutboxEvent


class WebhookEndpoint(models.Model):
    """A URL that receives signed POSTs for the event types it subscribes to."""

    class Format(models.TextChoices):
        JSON = "json", "JSON (Standard Webhooks)"
        DISCORD = "discord", "Discord webhook"

    class PrivateAwards(models.TextChoices):
        POINTS = "points", "Announce points only"
        NONE = "none", "Do not announce"

    EVENT_TYPES = tuple(OutboxEvent.Type.values)

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # A list of event type names, e.g. ["award.granted", "tier.changed"].
    event_types = models.JSONField(default=list)
    format = models.CharField(max_length=10, choices=Format, default=Format.JSON)
    # How a Discord endpoint announces a private award (JSON endpoints always get the event,
    # with a null reason).
    private_awards = models.CharField(
        max_length=10, choices=PrivateAwards, default=PrivateAwards.POINTS
    )
    active = models.BooleanField(default=True)
    # The signing secret must be readable to sign (HMAC is symmetric), so it is stored as
    # is; it is shown to staff once, at creation or rotation.
    secret = models.CharField(max_length=100)
    # After a rotation the previous secret also signs until this time (receivers switch).
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class WebhookFanout(models.Model):
    """Marks an outbox event whose deliveries were created (the dispatcher's to-do list is
    every recent outbox event without one)."""

    event = models.OneToOneField(
        OutboxEvent, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    fanned_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"fanout {self.event_id}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: its state, attempts and the last answer.

    ``pending`` (waiting for ``next_attempt_at``), ``sending`` (a worker holds it until
    ``locked_until``; after that it is pending again), ``delivered`` or ``dead``. A test
    event has no outbox event and carries its own ``test_payload``.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        DEAD = "dead"

    OPEN_STATES = (State.PENDING, State.SENDING)

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        OutboxEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Copied from the event: the per-member order is checked without a join.
    member_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.CharField(max_length=40)
    event_type = models.CharField(max_length=20)
    test_payload = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One delivery per (event, endpoint): fan-out and replays never duplicate it.
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhooks_delivery_unique_event_endpoint"
            ),
        ]
        indexes = [
            models.Index(
                fields=["state", "next_attempt_at"],
                name="webhooks_delivery_due_idx",
                condition=Q(state__in=["pending", "sending"]),
            ),
            models.Index(
                fields=["endpoint", "member_id", "event"], name="webhooks_delivery_order_idx"
            ),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} → {self.endpoint_id}"
