"""Telemetry events as ingested, with their processing status (SPEC §3)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from scoring.models.keys import ApiKey


class TelemetryEvent(models.Model):
    """Every accepted telemetry event, kept; the consumer's queue is its pending rows."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        REJECTED = "rejected"

    # Unique through Meta.constraints, not ``unique=True``: on PostgreSQL a unique varchar
    # field also gets a ``varchar_pattern_ops`` copy of its index for LIKE, which no query
    # uses and which costs as much on every insert as the unique index itself.
    insert_id = models.CharField(max_length=100)
    event = models.CharField(max_length=200)
    distinct_id = models.CharField(max_length=200)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    # No index of its own: (member, timestamp) below serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="telemetry_events",
        db_index=False,
    )
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Processed but not counted: older than TELEMETRY_MAX_AGE_DAYS when it arrived.
    # Database defaults as well: rows written by raw SQL or COPY (bench data, other loaders)
    # that do not name these columns get them.
    late = models.BooleanField(default=False, db_default=False)
    # From ``User-Agent: swamp-cli/<version>``; empty for any other client.
    cli_version = models.CharField(max_length=100, blank=True, default="", db_default="")
    # The known properties whose type differs from the client's wire format (dotted paths),
    # or null: counted per client version on the staff dashboard (docs/ingest.md "Drift").
    drift = models.JSONField(null=True, blank=True)

    class Meta:
        # On PostgreSQL the table is partitioned by month of ``timestamp`` (the event's own
        # time, so a resend lands in the same partition): its primary key there is
        # (id, timestamp), and every unique key must include the partition key
        # (``scoring.partitions``, docs/scaling.md). ``id`` stays Django's primary key: the
        # identity sequence keeps it unique on its own. SQLite keeps one plain table.
        constraints = [
            # Dedup of resends (``INSERT ... ON CONFLICT (insert_id, timestamp) DO NOTHING``).
            models.UniqueConstraint(
                fields=["insert_id", "timestamp"], name="scoring_event_dedup_key"
            ),
        ]
        indexes = [
            # The consumer's queue: a partial index holding only pending rows, in id order.
            models.Index(
                fields=["id"], name="scoring_event_pending_idx", condition=Q(status="pending")
            ),
            models.Index(
                fields=["status"],
                name="scoring_event_rejected_idx",
                condition=Q(status="rejected"),
            ),
            models.Index(fields=["member", "timestamp"], name="scoring_event_member_ts_idx"),
            # The staff dashboard's "last 7 days per client version" counts.
            models.Index(fields=["received_at", "cli_version"], name="scoring_event_version_idx"),
            models.Index(
                fields=["received_at"],
                name="scoring_event_drift_idx",
                condition=Q(drift__isnull=False),
            ),
            models.Index(
                fields=["received_at"], name="scoring_event_late_idx", condition=Q(late=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.insert_id} ({self.status})"
