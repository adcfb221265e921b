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

    insert_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=200)
    distinct_id = models.CharField(max_length=200)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telemetry_events"
    )
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="score_history"
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
            models.Index(fields=["recorded_at"], name="scoring_history_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.total_score} @ {self.recorded_at:%Y-%m-%d}"


class TierBadgeClaim(models.Model):
    """A tier badge a member has reached; permanent, one per member and tier."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tier_claims"
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

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tier_changes"
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
