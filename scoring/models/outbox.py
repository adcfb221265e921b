"""The outbox: events for listeners such as webhooks, written with the change."""

from django.conf import settings
from django.db import models


class OutboxEvent(models.Model):
    """A fact to announce (award granted/revoked, tier changed), written in the transaction
    that made it true: a rollback announces nothing, a commit always announces.

    It lives in ``scoring`` (the bottom of the dependency chain) so that ``scoring`` itself
    (tier changes) and ``awards`` (grants, revocations) can both write it through
    ``scoring.outbox``; the ``webhooks`` app reads it and delivers (docs/webhooks.md).
    ``payload`` is the event's public ``data`` exactly as delivered; ``context`` holds
    facts only the formatters use (never sent as JSON, never a staff note).
    """

    class Type(models.TextChoices):
        AWARD_GRANTED = "award.granted"
        AWARD_REVOKED = "award.revoked"
        TIER_CHANGED = "tier.changed"

    # The stable id receivers dedupe on (the ``webhook-id`` header).
    event_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=20, choices=Type)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outbox_events"
    )
    # The Award (award.*) or TierChange (tier.changed) row the event announces.
    source_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # One event per source object and type: a retried grant announces once.
            models.UniqueConstraint(
                fields=["event_type", "source_id"], name="scoring_outboxevent_unique_source"
            ),
        ]
        indexes = [
            models.Index(fields=["occurred_at"], name="scoring_outbox_time_idx"),
            models.Index(fields=["member", "id"], name="scoring_outbox_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
