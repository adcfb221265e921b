"""Per-member running metrics and the snapshots the score batch reads (SPEC §3)."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class MemberMetrics(models.Model):
    """Per-member running totals folded from telemetry (the seed's ``username_metrics``)."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="metrics",
    )
    # {command group: count}
    event_counts = models.JSONField(default=dict)
    # Sorted list of ISO dates ("2026-11-24"), UTC.
    active_dates = models.JSONField(default=list)
    total_events = models.BigIntegerField(default=0)
    award_points = models.BigIntegerField(default=0)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "member metrics"

    def __str__(self) -> str:
        return f"metrics for {self.member_id}"


class MetricsSnapshot(models.Model):
    """A queued copy of a member's metrics, waiting for the score batch."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="metrics_snapshots"
    )
    event_counts = models.JSONField(default=dict)
    active_dates = models.JSONField(default=list)
    total_events = models.BigIntegerField(default=0)
    award_points = models.BigIntegerField(default=0)
    enqueued_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                name="scoring_snapshot_pending_idx",
                condition=Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.pk} for {self.member_id}"
