"""Telemetry, API keys, metrics, snapshots, scores and tiers (SPEC §3)."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiKey(models.Model):
    """An API key for ``/ingest``: only a SHA-256 of the secret is stored."""

    SCOPE_INGEST = "ingest"
    SCOPE_AWARD = "award"
    SCOPES = (SCOPE_INGEST, SCOPE_AWARD)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # A list of scope names, e.g. ["ingest", "award"].
    scopes = models.JSONField(default=list)
    # "swamp_" + the first 8 hex characters of the key: public, used to find the row.
    prefix = models.CharField(max_length=20, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.owner_id})"

    def has_scope(self, scope: str) -> bool:
        """True when the key carries ``scope``."""
        return scope in self.scopes


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


class UserScore(models.Model):
    """A member's current score and tier; its row is the lock that serializes refreshes."""

    member = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="score",
    )
    # Denormalized so the leaderboard order (-total_score, username) is one index scan.
    username = models.CharField(max_length=150)
    activity_score = models.BigIntegerField(default=0)
    award_points = models.BigIntegerField(default=0)
    total_score = models.BigIntegerField(default=0)
    tier = models.PositiveSmallIntegerField(default=1)
    streak_days = models.PositiveIntegerField(default=0)
    active_days = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()
    # What the activity score was computed from, so it can be explained exactly as it was
    # computed (never recomputed with today's date): the rules version, the day "as of",
    # and the formula's inputs (``scoring.explain`` documents the document's keys).
    rules_version = models.PositiveIntegerField(default=1, db_default=1)
    as_of = models.DateField(null=True, blank=True)
    breakdown = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["-total_score", "username"], name="scoring_score_board_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.total_score}"


class ScoreHistory(models.Model):
    """One row each time a member's total changes."""

    # No index of its own: (member, recorded_at) below serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="score_history",
        db_index=False,
    )
    recorded_at = models.DateTimeField()
    activity_score = models.BigIntegerField()
    award_points = models.BigIntegerField()
    total_score = models.BigIntegerField()
    tier = models.PositiveSmallIntegerField()
    rules_version = models.PositiveIntegerField(default=1, db_default=1)

    class Meta:
        verbose_name_plural = "score history"
        indexes = [
            models.Index(fields=["member", "recorded_at"], name="scoring_history_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.total_score} @ {self.recorded_at:%Y-%m-%d}"


class TierBadgeClaim(models.Model):
    """A tier badge a member has reached; permanent, one per member and tier."""

    # No index of its own: the unique (member, tier) serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tier_claims",
        db_index=False,
    )
    tier = models.PositiveSmallIntegerField()
    claimed_at = models.DateTimeField()
    total_at_claim = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "tier"], name="scoring_claim_unique_tier"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} tier {self.tier}"


class TierChange(models.Model):
    """One row per refresh that moved a member's tier."""

    class Cause(models.TextChoices):
        ACTIVITY = "activity"
        AWARD = "award"
        REVOCATION = "revocation"
        RULES = "rules"

    # No index of its own: (member, changed_at) below serves every lookup by member.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tier_changes",
        db_index=False,
    )
    from_tier = models.PositiveSmallIntegerField()
    to_tier = models.PositiveSmallIntegerField()
    cause = models.CharField(max_length=12, choices=Cause)
    total_score = models.BigIntegerField()
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["member", "changed_at"], name="scoring_tierchange_member_idx"),
            models.Index(fields=["-changed_at"], name="scoring_tierchange_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.from_tier}→{self.to_tier} ({self.cause})"


class PipelineRun(models.Model):
    """The latest run of each pipeline stage (and the worker heartbeat), for staff health."""

    kind = models.CharField(max_length=32, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_count = models.BigIntegerField(default=0)
    runs = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.kind


class ScoringRules(models.Model):
    """One version of the activity formula's constants (SPEC §6); immutable once saved.

    Version 1 holds the SPEC §6 values (a data migration). The version in force is the one
    activated last (``activated_at``); ``manage.py rescore --rules N`` activates a version
    and rescores every member with it. ``settings.SCORING`` still overrides any constant on
    top of the version in force (docs/scoring.md).
    """

    version = models.PositiveIntegerField(primary_key=True)
    base_points = models.DecimalField(max_digits=12, decimal_places=4, default=10)
    group_cap = models.DecimalField(max_digits=12, decimal_places=4, default=1000)
    # {lower-cased group: cap} overriding ``group_cap`` for those groups.
    group_caps = models.JSONField(default=dict, blank=True)
    diversity_bonus = models.DecimalField(max_digits=12, decimal_places=4, default=50)
    streak_step = models.DecimalField(max_digits=8, decimal_places=6, default="0.02")
    streak_max = models.DecimalField(max_digits=8, decimal_places=6, default="1.5")
    rolling_bonus = models.DecimalField(max_digits=8, decimal_places=6, default="0.5")
    rolling_days = models.PositiveIntegerField(default=30)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "scoring rules"
        ordering = ["version"]
        constraints = [
            models.CheckConstraint(
                condition=Q(version__gte=1)
                & Q(base_points__gte=0)
                & Q(group_cap__gte=0)
                & Q(diversity_bonus__gte=0)
                & Q(streak_step__gte=0)
                & Q(streak_max__gte=1)
                & Q(rolling_bonus__gte=0)
                & Q(rolling_days__gte=1),
                name="scoring_rules_sane_constants",
            ),
        ]

    def __str__(self) -> str:
        return f"rules v{self.version}"


class RescoreJob(models.Model):
    """A rescore of every member under a rules version: a dry run or an apply, run by a
    Celery worker with its progress here (the staff page polls it)."""

    class Kind(models.TextChoices):
        DRY_RUN = "dry_run", "dry run"
        APPLY = "apply"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    rules = models.ForeignKey(ScoringRules, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=8, choices=Kind)
    state = models.CharField(max_length=8, choices=State, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    members_total = models.PositiveIntegerField(default=0)
    members_done = models.PositiveIntegerField(default=0)
    # The report: summary counts, biggest movers and tier moves (``scoring.rescore``).
    report = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} v{self.rules_id} ({self.state})"


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
