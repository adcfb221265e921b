"""Telemetry events as ingested, and the consumer's queue of those not yet processed
(SPEC §3).

An event's status is not a column of its row: it is *pending* while a ``PendingEvent`` row
names it, *rejected* when its ``error`` is set, *processed* otherwise. Processing an event
therefore writes nothing to its (wide) row: the claim deletes its narrow queue row
(docs/pipeline.md "The claim", docs/performance.md "Consume: the pending queue").
"""

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When

from scoring.models.keys import ApiKey


class EventStatus(models.TextChoices):
    """What the consumer did with an event (derived; see the module docstring)."""

    PENDING = "pending"
    PROCESSED = "processed"
    REJECTED = "rejected"


class TelemetryEventQuerySet(models.QuerySet):
    """Events by status: queue membership and ``error`` decide it."""

    def pending(self) -> "TelemetryEventQuerySet":
        """Events still in the consumer's queue."""
        return self.filter(queued__isnull=False)

    def processed(self) -> "TelemetryEventQuerySet":
        """Events the consumer folded: out of the queue, not rejected."""
        return self.filter(queued__isnull=True, error="")

    def rejected(self) -> "TelemetryEventQuerySet":
        """Events the consumer rejected (their ``error`` says why)."""
        return self.exclude(error="")

    def with_status(self) -> "TelemetryEventQuerySet":
        """Annotate each event's ``status`` (an ``EventStatus`` value)."""
        return self.annotate(
            status=Case(
                When(queued__isnull=False, then=Value(EventStatus.PENDING)),
                When(~Q(error=""), then=Value(EventStatus.REJECTED)),
                default=Value(EventStatus.PROCESSED),
                output_field=models.CharField(),
            )
        )


class TelemetryEvent(models.Model):
    """Every accepted telemetry event, kept as it arrived (only ``error`` and ``late`` are
    ever set afterwards, on the rare events they concern)."""

    Status = EventStatus

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
    # Why the consumer rejected the event; empty for every other event (a database default
    # too, like ``late`` below: loaders that do not name it store an event to process).
    error = models.TextField(blank=True, default="", db_default="")
    # Processed but not counted: older than TELEMETRY_MAX_AGE_DAYS when it arrived.
    # Database defaults as well: rows written by raw SQL or COPY (bench data, other loaders)
    # that do not name these columns get them.
    late = models.BooleanField(default=False, db_default=False)
    # From ``User-Agent: swamp-cli/<version>``; empty for any other client.
    cli_version = models.CharField(max_length=100, blank=True, default="", db_default="")
    # The known properties whose type differs from the client's wire format (dotted paths),
    # or null: counted per client version on the staff dashboard (docs/ingest.md "Drift").
    drift = models.JSONField(null=True, blank=True)

    objects = TelemetryEventQuerySet.as_manager()

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
            # Rejected events (staff health and lineage): a partial index of the rare rows.
            models.Index(fields=["id"], name="scoring_event_rejected_idx", condition=~Q(error="")),
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

        triggers = [
            # Every writer enqueues what it inserted, set-based: the ingest INSERT ... ON
            # CONFLICT (its transition table holds only the rows really inserted), COPY, raw
            # loaders. One statement-level trigger on the partitioned parent sees the rows
            # routed to every partition. SQLite: a row-level trigger (migration 0008).
            pgtrigger.Trigger(
                name="event_enqueue",
                level=pgtrigger.Statement,
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                referencing=pgtrigger.Referencing(new="new_rows"),
                func=(
                    'INSERT INTO "scoring_pendingevent" ("event_id", "timestamp") '
                    'SELECT "id", "timestamp" FROM new_rows; RETURN NULL;'
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.insert_id}"

    @property
    def status(self) -> str:
        """This event's ``EventStatus``: annotated by ``with_status()``, else one query."""
        annotated = self.__dict__.get("_status")
        if annotated is not None:
            return annotated
        queued = PendingEvent.objects.filter(event_id=self.pk).exists()
        if queued:
            return EventStatus.PENDING
        return EventStatus.REJECTED if self.error else EventStatus.PROCESSED

    @status.setter
    def status(self, value: str) -> None:
        self.__dict__["_status"] = value


class PendingEvent(models.Model):
    """The consumer's queue: one narrow row per event not yet processed.

    Filled by the events table's trigger; a claim deletes its rows (``DELETE ... RETURNING``
    under ``FOR UPDATE SKIP LOCKED``), so the queue holds exactly the pending events and a
    rolled-back batch leaves them queued. ``timestamp`` is the event's partition key: the
    claim reads the claimed events by (id, timestamp) from their partitions only.
    """

    # No database foreign key: a partitioned table's key is (id, timestamp), and a check per
    # enqueued row would cost on every insert. The relation is for the ORM's joins. Deleting
    # events leaves their queue rows (DO_NOTHING keeps a member's deletion one set-based
    # DELETE of their events, not a fetch of each): a claim takes such a row and finds no
    # event for it, which costs nothing.
    event = models.OneToOneField(
        TelemetryEvent,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="queued",
    )
    timestamp = models.DateTimeField()

    def __str__(self) -> str:
        return f"pending event {self.pk}"
